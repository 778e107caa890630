{%- set window_days = var('refund_experience_window_days', 90) -%}

with

refund_windows as (
    select * from {{ ref('int_buyer_refund_windows') }}
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

-- Each buyer's first counted refund with their purchases around it (int_buyer_refund_windows).
buyer_windows as (
    select
        refund_windows.buyer_id,
        refund_windows.refund_type,
        refund_windows.purchases_before,
        refund_windows.purchases_after,
        -- Both windows lie inside the data: an after window cut off by the last data day
        -- would count too few purchases.
        (
            {{ dbt.dateadd('day', -window_days, 'refund_windows.requested_at') }}
            >= data_span.first_data_date
            and {{ dbt.dateadd('day', window_days, 'refund_windows.requested_at') }}
            < {{ dbt.dateadd('day', 1, 'data_span.last_data_date') }}
        ) as is_fully_observed
    from refund_windows
    cross join data_span
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
