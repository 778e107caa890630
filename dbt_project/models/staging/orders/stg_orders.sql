{#- A view, as every staging model: the current versions (int_orders_current) read it by
    key, so no second copy of every order is written. Receiver phone and address pass through
    it from the raw layer, and int_orders_current, the first table, keeps only their
    pseudonyms. -#}

with

published_loads as (
    select load_id from {{ source('quality', 'load_ledger') }}
    where status = 'published'
),

orders as (
    select * from {{ source('raw', 'orders') }}
    where _load_id in (select published_loads.load_id from published_loads)
),

renamed as (
    select
        order_id,
        store_id,
        store_name,
        anchor_id,
        buyer_id,
        item_id,
        item_name,
        category,
        quantity,
        unit_price,
        paid_amount,
        {{ enum_code('order_status', 'order_status') }} as order_status,
        {{ enum_code('channel', 'channel') }} as channel,
        live_session_id,
        trust_card as is_trust_card,
        fan_club_level,
        receiver_phone,
        receiver_address,
        created_at,
        paid_at,
        updated_at,
        _load_id as load_id,
        _file_name as source_file_name,
        _export_date as export_date,
        _row_number as source_row_number,
        _loaded_at as loaded_at
    from orders
)

select * from renamed
