with

buyer_months as (
    select * from {{ ref('int_buyer_months') }}
),

platform_months as (
    select
        purchase_month,
        count(*) as buyers,
        sum(orders) as orders,
        sum(gmv) as gmv,
        sum(case when orders >= 2 then 1 else 0 end) as repeat_buyers,
        -- Back on the platform: their first valid purchase anywhere was in an earlier month.
        sum(case when cohort_month < purchase_month then 1 else 0 end) as returning_buyers,
        sum(case when has_trust_card_purchase then 1 else 0 end) as trust_card_buyers
    from buyer_months
    group by purchase_month
),

final as (
    select
        -- `month` is the contract's column name (METRICS.md), keyword or not.
        purchase_month as month,
        cast(buyers as {{ dbt.type_bigint() }}) as buyers,
        cast(orders as {{ dbt.type_bigint() }}) as orders,
        cast(gmv as decimal(18, 2)) as gmv,
        cast(repeat_buyers as {{ dbt.type_bigint() }}) as repeat_buyers,
        cast(repeat_buyers as double) / buyers as repeat_purchase_rate,
        cast(returning_buyers as {{ dbt.type_bigint() }}) as returning_buyers,
        cast(returning_buyers as double) / buyers as returning_buyer_rate,
        cast(trust_card_buyers as {{ dbt.type_bigint() }}) as trust_card_buyers,
        cast(trust_card_buyers as double) / buyers as trust_card_coverage
    from platform_months
)

select * from final
