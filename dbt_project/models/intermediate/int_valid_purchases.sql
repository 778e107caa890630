with

current_orders as (
    select * from {{ ref('int_orders_current') }}
    where
        paid_at is not null
        and order_status in (
            {%- for status in var('valid_purchase_statuses') %}
                '{{ status }}'{{ ',' if not loop.last }}
            {%- endfor %}
        )
),

final as (
    select
        *,
        cast({{ dbt.date_trunc('month', 'paid_at') }} as date) as purchase_month,
        cast(paid_at as date) as purchase_date
    from current_orders
)

select * from final
