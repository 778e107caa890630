with

refunds as (
    select * from {{ ref('stg_refunds') }}
),

current_refunds as (
    {{ current_version('refunds', 'refund_id') }}
),

final as (
    select
        refund_id,
        order_id,
        store_id,
        buyer_id,
        refund_type,
        refund_reason,
        refund_amount,
        shipping_subsidy_amount,
        refund_status,
        requested_at,
        resolved_at,
        updated_at,
        load_id,
        source_file_name,
        export_date,
        source_row_number,
        loaded_at,
        refund_status in (
            {%- for status in var('counted_refund_statuses') %}
                '{{ status }}'{{ ',' if not loop.last }}
            {%- endfor %}
        ) as is_counted,
        -- Fractional hours; NULL while the request is open.
        cast(
            {{ dbt.datediff('requested_at', 'resolved_at', 'second') }}
            as double
        ) / 3600 as resolution_hours
    from current_refunds
)

select * from final
