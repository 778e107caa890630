{%- set window_days = var('refund_experience_window_days', 90) -%}

with

counted_refunds as (
    select * from {{ ref('int_counted_refunds') }}
),

valid_purchases as (
    select * from {{ ref('int_valid_purchases') }}
),

data_span as (
    select
        cast(min(paid_at) as date) as first_data_date,
        cast(max(paid_at) as date) as last_data_date
    from valid_purchases
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
        ranked_refunds.buyer_id,
        ranked_refunds.refund_id,
        ranked_refunds.order_id,
        ranked_refunds.refund_type,
        ranked_refunds.requested_at,
        {{ dbt.dateadd('day', -window_days, 'ranked_refunds.requested_at') }} as before_start_at,
        {{ dbt.dateadd('day', window_days, 'ranked_refunds.requested_at') }} as after_end_at,
        -- Both windows lie inside the data: an after window cut off by the last data day
        -- would count too few purchases.
        (
            {{ dbt.dateadd('day', -window_days, 'ranked_refunds.requested_at') }}
            >= data_span.first_data_date
            and {{ dbt.dateadd('day', window_days, 'ranked_refunds.requested_at') }}
            < {{ dbt.dateadd('day', 1, 'data_span.last_data_date') }}
        ) as is_fully_observed
    from ranked_refunds
    cross join data_span
    where ranked_refunds.refund_number = 1
),

-- Purchases of the buyer at any store; the refunded order itself is left out (it always
-- precedes the request and would inflate the before window).
buyer_windows as (
    select
        first_refunds.buyer_id,
        first_refunds.refund_type,
        first_refunds.is_fully_observed,
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
    group by first_refunds.buyer_id, first_refunds.refund_type, first_refunds.is_fully_observed
),

by_refund_type as (
    select
        refund_type,
        count(case when is_fully_observed then 1 end) as buyers,
        count(case when not is_fully_observed then 1 end) as buyers_not_fully_observed,
        sum(case when is_fully_observed then purchases_before else 0 end) as purchases_before,
        sum(case when is_fully_observed then purchases_after else 0 end) as purchases_after,
        count(case when is_fully_observed and purchases_before > 0 then 1 end)
            as buyers_purchasing_before,
        count(case when is_fully_observed and purchases_after > 0 then 1 end)
            as buyers_purchasing_after
    from buyer_windows
    group by refund_type
),

final as (
    select
        refund_type,
        cast(buyers as {{ dbt.type_bigint() }}) as buyers,
        cast(purchases_before as {{ dbt.type_bigint() }}) as purchases_before,
        cast(purchases_after as {{ dbt.type_bigint() }}) as purchases_after,
        cast(purchases_before as double) / nullif(buyers, 0) as purchases_per_buyer_before,
        cast(purchases_after as double) / nullif(buyers, 0) as purchases_per_buyer_after,
        cast(purchases_after as double) / nullif(purchases_before, 0) - 1
            as purchases_per_buyer_relative_change,
        cast(buyers_purchasing_before as double) / nullif(buyers, 0)
            as purchasing_before_rate,
        cast(buyers_purchasing_after as double) / nullif(buyers, 0) as purchasing_after_rate,
        cast(buyers_not_fully_observed as {{ dbt.type_bigint() }}) as buyers_not_fully_observed,
        cast({{ window_days }} as {{ dbt.type_int() }}) as window_days
    from by_refund_type
)

select * from final
