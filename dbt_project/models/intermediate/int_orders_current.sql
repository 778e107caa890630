with

orders as (
    select * from {{ ref('stg_orders') }}
),

current_orders as (
    {{ current_version('orders', 'order_id') }}
),

final as (
    select * exclude (version_rank) from current_orders
)

select * from final
