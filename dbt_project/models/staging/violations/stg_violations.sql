with

published_loads as (
    select load_id from {{ source('quality', 'load_ledger') }}
    where status = 'published'
),

violations as (
    select * from {{ source('raw', 'violations') }}
    where _load_id in (select published_loads.load_id from published_loads)
),

renamed as (
    select
        violation_id,
        store_id,
        anchor_id,
        live_session_id,
        {{ enum_code('violation_type', 'violation_type') }} as violation_type,
        {{ enum_code('source', 'source') }} as violation_source,
        {{ enum_code('severity', 'severity') }} as severity,
        penalty_points,
        penalty_amount,
        {{ enum_code('violation_status', 'violation_status') }} as violation_status,
        detected_at,
        updated_at,
        _load_id as load_id,
        _file_name as source_file_name,
        _export_date as export_date,
        _row_number as source_row_number,
        _loaded_at as loaded_at
    from violations
)

select * from renamed
