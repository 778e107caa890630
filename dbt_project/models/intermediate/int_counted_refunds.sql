with

current_refunds as (
    select * from {{ ref('int_refunds_current') }}
    where is_counted
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
        resolution_hours
    from current_refunds
)

select * from final
