{#- Recomputed whole on every build (91 rows at 10M orders), from tables that make it cheap: the
    orders of a store and month are store_monthly_repurchase's (the same sum over the buyer
    months, which each build of this mart added up again: 8.5M rows at 10M orders), and the
    refunds are joined to the current orders before the validity of the order and its month
    are computed, for the ~1M refunded orders only, not for the 10M purchases of
    int_valid_purchases. -#}
with

store_months as (
    select * from {{ ref('store_monthly_repurchase') }}
),

counted_refunds as (
    select * from {{ ref('int_counted_refunds') }}
),

current_orders as (
    select * from {{ ref('int_orders_current') }}
),

orders_by_month as (
    select
        store_id,
        month as purchase_month,
        orders
    from store_months
),

-- A refund belongs to the store and month of the order it refunds, whenever it was requested.
refunded_orders as (
    select
        current_orders.store_id,
        current_orders.order_status,
        current_orders.paid_at,
        counted_refunds.order_id,
        counted_refunds.refund_type,
        counted_refunds.refund_amount,
        counted_refunds.shipping_subsidy_amount,
        counted_refunds.resolution_hours
    from counted_refunds
    inner join current_orders
        on counted_refunds.order_id = current_orders.order_id
),

refunds_of_purchases as (
    {{ valid_purchases_of('refunded_orders') }}
),

refunds_by_month as (
    select
        store_id,
        purchase_month,
        count(distinct order_id) as refunded_orders,
        count(distinct case when refund_type = 'refund_without_return' then order_id end)
            as refund_without_return_orders,
        count(distinct case when refund_type = 'return_and_refund' then order_id end)
            as return_and_refund_orders,
        count(distinct case when refund_type = 'refund_only' then order_id end)
            as refund_only_orders,
        count(distinct case when refund_type = 'exchange' then order_id end)
            as exchange_orders,
        sum(refund_amount) as refund_amount,
        sum(shipping_subsidy_amount) as shipping_subsidy_amount,
        -- Open requests have no resolution_hours and are ignored; NULL when none is resolved.
        percentile_cont(0.5) within group (order by resolution_hours) as median_resolution_hours
    from refunds_of_purchases
    group by store_id, purchase_month
),

joined as (
    select
        orders_by_month.store_id,
        orders_by_month.purchase_month,
        orders_by_month.orders,
        coalesce(refunds_by_month.refunded_orders, 0) as refunded_orders,
        coalesce(refunds_by_month.refund_without_return_orders, 0)
            as refund_without_return_orders,
        coalesce(refunds_by_month.return_and_refund_orders, 0) as return_and_refund_orders,
        coalesce(refunds_by_month.refund_only_orders, 0) as refund_only_orders,
        coalesce(refunds_by_month.exchange_orders, 0) as exchange_orders,
        coalesce(refunds_by_month.refund_amount, 0) as refund_amount,
        coalesce(refunds_by_month.shipping_subsidy_amount, 0) as shipping_subsidy_amount,
        refunds_by_month.median_resolution_hours
    from orders_by_month
    left join refunds_by_month
        on
            orders_by_month.store_id = refunds_by_month.store_id
            and orders_by_month.purchase_month = refunds_by_month.purchase_month
),

final as (
    select
        store_id,
        purchase_month as month,
        cast(orders as {{ dbt.type_bigint() }}) as orders,
        cast(refunded_orders as {{ dbt.type_bigint() }}) as refunded_orders,
        cast(refunded_orders as double) / orders as refund_rate,
        cast(refund_without_return_orders as {{ dbt.type_bigint() }})
            as refund_without_return_orders,
        cast(return_and_refund_orders as {{ dbt.type_bigint() }}) as return_and_refund_orders,
        cast(refund_only_orders as {{ dbt.type_bigint() }}) as refund_only_orders,
        cast(refund_amount as decimal(18, 2)) as refund_amount,
        cast(shipping_subsidy_amount as decimal(18, 2)) as shipping_subsidy_amount,
        cast(median_resolution_hours as double) as median_resolution_hours,
        cast(exchange_orders as {{ dbt.type_bigint() }}) as exchange_orders
    from joined
)

select * from final
