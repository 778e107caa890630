with

current_refunds as (
    select * from {{ ref('int_refunds_current') }}
),

current_orders as (
    select * from {{ ref('int_orders_current') }}
),

-- Refunds may land before their order (EXPORTS.md): these wait here until it arrives.
orphans as (
    select
        current_refunds.refund_id,
        current_refunds.order_id,
        current_refunds.store_id,
        current_refunds.buyer_id,
        current_refunds.refund_type,
        current_refunds.refund_status,
        current_refunds.is_counted,
        current_refunds.refund_amount,
        current_refunds.requested_at,
        current_refunds.updated_at,
        current_refunds.load_id,
        current_refunds.source_file_name,
        current_refunds.export_date
    from current_refunds
    left join current_orders
        on current_refunds.order_id = current_orders.order_id
    where current_orders.order_id is null
),

final as (
    select * from orphans
)

select * from final
