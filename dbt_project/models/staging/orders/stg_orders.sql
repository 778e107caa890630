{#- Receiver phone and address leave the raw layer only as keyed pseudonyms: HMAC-SHA256
    (RFC 2104) under TRUSTWH_PII_KEY, which `trustwh run` supplies and nothing commits. DuckDB
    has no hmac(), so the two pads are built here; unkeyed sha256 of an 11-digit phone would
    be reversible by brute force. -#}
{#- Incremental by load (macros/incremental_by_load.sql): each row is staged once. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ drop_unpublished_loads() }}",
) }}

{%- set pii_key = env_var('TRUSTWH_PII_KEY', '') | replace("'", "''") -%}
{%- if execute and not pii_key and env_var('TRUSTWH_ENV', '') == 'production' -%}
    {{ exceptions.raise_compiler_error('TRUSTWH_PII_KEY must be set in production') }}
{%- elif pii_key | length > 64 -%}
    {{ exceptions.raise_compiler_error('TRUSTWH_PII_KEY must be at most 64 characters') }}
{%- endif -%}

with

-- Published loads not staged yet (all of them on a full build).
loads_to_stage as (
    select load_id from {{ source('quality', 'load_ledger') }}
    where status = 'published'
    {%- if is_incremental() %}
    except
    select staged.load_id from {{ this }} as staged
    {%- endif %}
),

orders as (
    select * from {{ source('raw', 'orders') }}
    where _load_id in (select loads_to_stage.load_id from loads_to_stage)
),

pii_key as (
    -- HMAC's pads: the key zero-padded to a 64-byte block, xor-ed with 0x36 and 0x5c bytes.
    select
        xor(padded.key_block::bit, unhex(repeat('36', 64))::bit)::blob as inner_pad,
        xor(padded.key_block::bit, unhex(repeat('5c', 64))::bit)::blob as outer_pad
    from (
        select
            configured.secret
            || unhex(repeat('00', 64 - octet_length(configured.secret))) as key_block
        from (select encode('{{ pii_key }}') as secret) as configured
    ) as padded
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
                (select pii_key.outer_pad from pii_key)
                || unhex(sha256((select pii_key.inner_pad from pii_key) || encode({{ personal }})))
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
