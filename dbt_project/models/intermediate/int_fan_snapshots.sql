with

fans as (
    select * from {{ ref('stg_fans') }}
),

-- A snapshot has no updated_at: when a store's snapshot of a day was exported twice, the later
-- export date wins, then the later file name, then the later row (EXPORTS.md tie rule).
deduplicated as (
    {{ current_version('fans', 'store_id, fan_id, snapshot_date', version_column='export_date') }}
),

final as (
    select
        snapshot_date,
        store_id,
        fan_id,
        followed_at,
        is_following,
        fan_club_level,
        fan_club_joined_at,
        load_id,
        source_file_name,
        export_date,
        source_row_number,
        loaded_at
    from deduplicated
)

select * from final
