{#- A valid purchase (METRICS.md): an order with `paid_at` set and a status among
    var('valid_purchase_statuses'), with its purchase month and date. Applied to the current
    orders (int_valid_purchases), to the rows a build of them replaced
    (int_valid_purchase_changes) and to the refunded orders (store_refunds_monthly, which
    computes the month for those orders only), so all read alike. -#}
{% macro valid_purchases_of(orders) -%}
    select
        *,
        cast({{ dbt.date_trunc('month', 'paid_at') }} as date) as purchase_month,
        cast(paid_at as date) as purchase_date
    from {{ orders }}
    where
        paid_at is not null
        and order_status in (
            {%- for status in var('valid_purchase_statuses') %}
                '{{ status }}'{{ ',' if not loop.last }}
            {%- endfor %}
        )
{%- endmacro %}
