with

buyer_store_months as (
    select * from {{ ref('int_buyer_store_months') }}
),

store_months as (
    select
        store_id,
        purchase_month,
        count(*) as buyers,
        sum(orders) as orders,
        sum(gmv) as gmv,
        sum(case when orders >= 2 then 1 else 0 end) as repeat_buyers,
        -- Back at the store: their first valid purchase there was in an earlier month.
        sum(case when cohort_month < purchase_month then 1 else 0 end) as returning_buyers
    from buyer_store_months
    group by store_id, purchase_month
),

final as (
    select
        store_id,
        -- `month` is the contract's column name (METRICS.md), keyword or not.
        purchase_month as month,
        cast(buyers as {{ dbt.type_bigint() }}) as buyers,
        cast(orders as {{ dbt.type_bigint() }}) as orders,
        cast(gmv as decimal(18, 2)) as gmv,
        cast(repeat_buyers as {{ dbt.type_bigint() }}) as repeat_buyers,
        cast(repeat_buyers as double) / buyers as repeat_purchase_rate,
        cast(returning_buyers as {{ dbt.type_bigint() }}) as returning_buyers,
        cast(returning_buyers as double) / buyers as returning_buyer_rate
    from store_months
)

select * from final
