{#- Receiver phone and address leave the raw layer only as keyed pseudonyms: HMAC-SHA256
    (RFC 2104) under TRUSTWH_PII_KEY, which `trustwh run` supplies and nothing commits. DuckDB
    has no hmac(), so the two pads are built here; unkeyed sha256 of an 11-digit phone would
    be reversible by brute force.
    A view, like the other staging models: the pads are constant expressions (DuckDB folds
    them once per query), so a reader that does not select the pseudonyms does not compute
    them. Pads read from a CTE made every reader compute both HMACs of every order (40 s at
    10M for `select distinct load_id`). -#}

{%- set pii_key = env_var('TRUSTWH_PII_KEY', '') | replace("'", "''") -%}
{%- if execute and not pii_key and env_var('TRUSTWH_ENV', '') == 'production' -%}
    {{ exceptions.raise_compiler_error('TRUSTWH_PII_KEY must be set in production') }}
{%- elif pii_key | length > 64 -%}
    {{ exceptions.raise_compiler_error('TRUSTWH_PII_KEY must be at most 64 characters') }}
{%- endif -%}

{#- HMAC's pads: the key zero-padded to a 64-byte block, xor-ed with 0x36 and 0x5c bytes. -#}
{%- set secret = "encode('" ~ pii_key ~ "')" -%}
{%- set key_block = "(" ~ secret ~ " || unhex(repeat('00', 64 - octet_length(" ~ secret ~ "))))" -%}
{%- set inner_pad = "xor(" ~ key_block ~ "::bit, unhex(repeat('36', 64))::bit)::blob" -%}
{%- set outer_pad = "xor(" ~ key_block ~ "::bit, unhex(repeat('5c', 64))::bit)::blob" -%}

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
        {%- for personal in ['receiver_phone', 'receiver_address'] %}
            sha256(
                {{ outer_pad }}
                || unhex(sha256({{ inner_pad }} || encode({{ personal }})))
            ) as {{ personal }}_hash,
        {%- endfor %}
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
