with

stores as (
    select * from {{ ref('stores') }}
    where trust_program_joined_date is not null
),

store_monthly_buyers as (
    select
        store_id,
        month as purchase_month,
        buyers,
        orders,
        gmv,
        repeat_buyers,
        returning_buyers
    from {{ ref('store_monthly_repurchase') }}
),

data_months as (
    select
        min(purchase_month) as first_data_month,
        max(purchase_month) as last_data_month
    from store_monthly_buyers
),

-- The joined month itself is left out: the store was in the program for only part of it.
windows as (
    select
        store_id,
        trust_program_joined_date,
        cast({{ dbt.date_trunc('month', 'trust_program_joined_date') }} as date) as joined_month
    from stores
),

windows_bounded as (
    select
        *,
        cast({{ dbt.dateadd('month', -3, 'joined_month') }} as date) as before_start_month,
        cast({{ dbt.dateadd('month', 1, 'joined_month') }} as date) as after_start_month,
        cast({{ dbt.dateadd('month', 3, 'joined_month') }} as date) as after_end_month
    from windows
),

window_months as (
    select
        windows_bounded.store_id,
        case
            when store_monthly_buyers.purchase_month < windows_bounded.joined_month then 'before'
            else 'after'
        end as period,
        store_monthly_buyers.buyers,
        store_monthly_buyers.repeat_buyers,
        store_monthly_buyers.returning_buyers
    from windows_bounded
    inner join store_monthly_buyers
        on
            windows_bounded.store_id = store_monthly_buyers.store_id
            and windows_bounded.before_start_month <= store_monthly_buyers.purchase_month
            and windows_bounded.after_end_month >= store_monthly_buyers.purchase_month
            and windows_bounded.joined_month != store_monthly_buyers.purchase_month
),

-- Pooled over the window's months: buyer-months, i.e. each month's buyers summed.
pooled as (
    select
        store_id,
        sum(case when period = 'before' then buyers else 0 end) as buyer_months_before,
        sum(case when period = 'before' then returning_buyers else 0 end)
            as returning_buyer_months_before,
        sum(case when period = 'before' then repeat_buyers else 0 end)
            as repeat_buyer_months_before,
        sum(case when period = 'after' then buyers else 0 end) as buyer_months_after,
        sum(case when period = 'after' then returning_buyers else 0 end)
            as returning_buyer_months_after,
        sum(case when period = 'after' then repeat_buyers else 0 end)
            as repeat_buyer_months_after
    from window_months
    group by store_id
),

rates as (
    select
        windows_bounded.store_id,
        windows_bounded.trust_program_joined_date,
        windows_bounded.joined_month,
        windows_bounded.before_start_month,
        windows_bounded.after_end_month,
        -- No data yet: no window is complete.
        coalesce(windows_bounded.before_start_month >= data_months.first_data_month, false)
            as is_before_window_complete,
        coalesce(windows_bounded.after_end_month <= data_months.last_data_month, false)
            as is_after_window_complete,
        coalesce(pooled.buyer_months_before, 0) as buyer_months_before,
        coalesce(pooled.returning_buyer_months_before, 0) as returning_buyer_months_before,
        coalesce(pooled.repeat_buyer_months_before, 0) as repeat_buyer_months_before,
        coalesce(pooled.buyer_months_after, 0) as buyer_months_after,
        coalesce(pooled.returning_buyer_months_after, 0) as returning_buyer_months_after,
        coalesce(pooled.repeat_buyer_months_after, 0) as repeat_buyer_months_after,
        cast(pooled.returning_buyer_months_before as double)
        / nullif(pooled.buyer_months_before, 0) as returning_buyer_rate_before,
        cast(pooled.returning_buyer_months_after as double)
        / nullif(pooled.buyer_months_after, 0) as returning_buyer_rate_after,
        cast(pooled.repeat_buyer_months_before as double)
        / nullif(pooled.buyer_months_before, 0) as repeat_purchase_rate_before,
        cast(pooled.repeat_buyer_months_after as double)
        / nullif(pooled.buyer_months_after, 0) as repeat_purchase_rate_after
    from windows_bounded
    left join pooled
        on windows_bounded.store_id = pooled.store_id
    cross join data_months
),

final as (
    select
        store_id,
        trust_program_joined_date,
        joined_month,
        before_start_month,
        after_end_month,
        is_before_window_complete,
        is_after_window_complete,
        cast(buyer_months_before as {{ dbt.type_bigint() }}) as buyer_months_before,
        cast(returning_buyer_months_before as {{ dbt.type_bigint() }})
            as returning_buyer_months_before,
        cast(returning_buyer_rate_before as double) as returning_buyer_rate_before,
        cast(buyer_months_after as {{ dbt.type_bigint() }}) as buyer_months_after,
        cast(returning_buyer_months_after as {{ dbt.type_bigint() }})
            as returning_buyer_months_after,
        cast(returning_buyer_rate_after as double) as returning_buyer_rate_after,
        cast(returning_buyer_rate_after - returning_buyer_rate_before as double)
            as returning_buyer_rate_change,
        cast(returning_buyer_rate_after as double)
        / nullif(returning_buyer_rate_before, 0) - 1 as returning_buyer_rate_relative_change,
        cast(repeat_buyer_months_before as {{ dbt.type_bigint() }}) as repeat_buyer_months_before,
        cast(repeat_purchase_rate_before as double) as repeat_purchase_rate_before,
        cast(repeat_buyer_months_after as {{ dbt.type_bigint() }}) as repeat_buyer_months_after,
        cast(repeat_purchase_rate_after as double) as repeat_purchase_rate_after,
        cast(repeat_purchase_rate_after - repeat_purchase_rate_before as double)
            as repeat_purchase_rate_change
    from rates
)

select * from final
