{#- Incremental by load (macros/incremental_by_load.sql): each row is staged once. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ drop_unpublished_loads() }}",
) }}

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

refunds as (
    select * from {{ source('raw', 'refunds') }}
    where _load_id in (select loads_to_stage.load_id from loads_to_stage)
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
