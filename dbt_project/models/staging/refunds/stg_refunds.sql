with

published_loads as (
    select load_id from {{ source('quality', 'load_ledger') }}
    where status = 'published'
),

refunds as (
    select * from {{ source('raw', 'refunds') }}
    where _load_id in (select published_loads.load_id from published_loads)
),

renamed as (
    select
        refund_id,
        order_id,
        store_id,
        buyer_id,
        {{ enum_code('refund_type', 'refund_type') }} as refund_type,
        reason as refund_reason,
        refund_amount,
        shipping_subsidy as shipping_subsidy_amount,
        {{ enum_code('refund_status', 'refund_status') }} as refund_status,
        requested_at,
        resolved_at,
        updated_at,
        _load_id as load_id,
        _file_name as source_file_name,
        _export_date as export_date,
        _row_number as source_row_number,
        _loaded_at as loaded_at
    from refunds
)

select * from renamed
