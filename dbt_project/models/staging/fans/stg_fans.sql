with

published_loads as (
    select load_id from {{ source('quality', 'load_ledger') }}
    where status = 'published'
),

fans as (
    select * from {{ source('raw', 'fans') }}
    where _load_id in (select published_loads.load_id from published_loads)
),

renamed as (
    select
        snapshot_date,
        store_id,
        fan_id,
        followed_at,
        is_following,
        fan_club_level,
        fan_club_joined_at,
        _load_id as load_id,
        _file_name as source_file_name,
        _export_date as export_date,
        _row_number as source_row_number,
        _loaded_at as loaded_at
    from fans
)

select * from renamed
