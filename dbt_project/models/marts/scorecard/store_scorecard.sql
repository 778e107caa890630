with

stores as (
    select * from {{ ref('stores') }}
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

store_refunds_monthly as (
    select * from {{ ref('store_refunds_monthly') }}
),

store_violations_monthly as (
    select * from {{ ref('store_violations_monthly') }}
),

-- Every month a store sold or had a current violation.
store_months as (
    select
        store_id,
        purchase_month as month
    from store_monthly_buyers
    union
    select
        store_id,
        month
    from store_violations_monthly
),

joined as (
    select
        store_months.store_id,
        store_months.month,
        stores.store_name,
        coalesce(store_monthly_buyers.gmv, 0) as gmv,
        coalesce(store_monthly_buyers.buyers, 0) as buyers,
        coalesce(store_monthly_buyers.orders, 0) as orders,
        coalesce(store_monthly_buyers.returning_buyers, 0) as returning_buyers,
        coalesce(store_monthly_buyers.repeat_buyers, 0) as repeat_buyers,
        coalesce(store_refunds_monthly.refunded_orders, 0) as refunded_orders,
        coalesce(store_refunds_monthly.refund_amount, 0) as refund_amount,
        coalesce(store_refunds_monthly.shipping_subsidy_amount, 0) as shipping_subsidy_amount,
        coalesce(store_violations_monthly.violations, 0) as violations,
        coalesce(store_violations_monthly.penalty_points, 0) as penalty_points,
        coalesce(store_violations_monthly.penalty_amount, 0) as penalty_amount
    from store_months
    left join stores
        on store_months.store_id = stores.store_id
    left join store_monthly_buyers
        on
            store_months.store_id = store_monthly_buyers.store_id
            and store_months.month = store_monthly_buyers.purchase_month
    left join store_refunds_monthly
        on
            store_months.store_id = store_refunds_monthly.store_id
            and store_months.month = store_refunds_monthly.month
    left join store_violations_monthly
        on
            store_months.store_id = store_violations_monthly.store_id
            and store_months.month = store_violations_monthly.month
),

final as (
    select
        store_id,
        month,
        cast(gmv as decimal(18, 2)) as gmv,
        cast(buyers as {{ dbt.type_bigint() }}) as buyers,
        cast(orders as {{ dbt.type_bigint() }}) as orders,
        cast(returning_buyers as double) / nullif(buyers, 0) as returning_buyer_rate,
        cast(repeat_buyers as double) / nullif(buyers, 0) as repeat_purchase_rate,
        cast(refunded_orders as double) / nullif(orders, 0) as refund_rate,
        cast(refund_amount as decimal(18, 2)) as refund_amount,
        cast(violations as {{ dbt.type_bigint() }}) as violations,
        cast(penalty_points as {{ dbt.type_bigint() }}) as penalty_points,
        store_name,
        cast(returning_buyers as {{ dbt.type_bigint() }}) as returning_buyers,
        cast(repeat_buyers as {{ dbt.type_bigint() }}) as repeat_buyers,
        cast(refunded_orders as {{ dbt.type_bigint() }}) as refunded_orders,
        cast(shipping_subsidy_amount as decimal(18, 2)) as shipping_subsidy_amount,
        cast(penalty_amount as decimal(18, 2)) as penalty_amount
    from joined
)

select * from final
