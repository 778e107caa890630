with

current_orders as (
    select * from {{ ref('int_orders_current') }}
),

final as (
    {{ valid_purchases_of('current_orders') }}
)

select * from final
