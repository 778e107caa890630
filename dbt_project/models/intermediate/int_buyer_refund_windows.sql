{#- Each buyer's first counted refund and their valid purchases in the windows around it, the
    rows refund_experience_effect adds up. A table incremental by buyer
    (macros/incremental_by_load.sql): a build recomputes only the buyers whose valid purchases
    or refunds it changed (refund_buyer_changes, macros/refund_changes.sql), where the mart
    read every purchase and refund of history. Whether a buyer's windows lie inside the data
    depends on the data's span, which every day moves: the mart decides it. -#}
{%- set window_days = var('refund_experience_window_days', 90) -%}

{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    unique_key='buyer_id',
    pre_hook="{{ recompute_changed_keys(
        ref('int_valid_purchase_changes'),
        ref('int_counted_refunds'),
        keys=refund_buyer_changes(ref('int_valid_purchase_changes')),
    ) }}",
) }}

with

counted_refunds as (
    select * from {{ ref('int_counted_refunds') }}
    {{ where_changed() }}
),

valid_purchases as (
    select * from {{ ref('int_valid_purchases') }}
    {{ where_changed() }}
),

-- Each buyer's first counted refund on the platform (ties: the smaller refund_id).
ranked_refunds as (
    select
        buyer_id,
        refund_id,
        order_id,
        refund_type,
        requested_at,
        row_number() over (
            partition by buyer_id order by requested_at, refund_id
        ) as refund_number
    from counted_refunds
),

first_refunds as (
    select
        * exclude (refund_number),
        {{ dbt.dateadd('day', -window_days, 'requested_at') }} as before_start_at,
        {{ dbt.dateadd('day', window_days, 'requested_at') }} as after_end_at
    from ranked_refunds
    where refund_number = 1
),

-- Purchases of the buyer at any store; the refunded order itself is left out (it always
-- precedes the request and would inflate the before window).
final as (
    select
        first_refunds.buyer_id,
        first_refunds.refund_type,
        first_refunds.requested_at,
        count(
            case when valid_purchases.paid_at < first_refunds.requested_at then 1 end
        ) as purchases_before,
        count(
            case when valid_purchases.paid_at > first_refunds.requested_at then 1 end
        ) as purchases_after
    from first_refunds
    left join valid_purchases
        on
            first_refunds.buyer_id = valid_purchases.buyer_id
            and first_refunds.before_start_at <= valid_purchases.paid_at
            and first_refunds.after_end_at >= valid_purchases.paid_at
            and first_refunds.order_id != valid_purchases.order_id
    group by first_refunds.buyer_id, first_refunds.refund_type, first_refunds.requested_at
)

select * from final
