{#- Incremental by store and day (macros/incremental_by_load.sql): a build recomputes the
    snapshots of the store-days a new load exported. A store-day left with no snapshot gets a
    row of only its key, which replaces its old rows and is then deleted by the post-hook. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['store_id', 'snapshot_date'],
    pre_hook="{{ record_changed_keys(ref('stg_fans')) }}",
    post_hook=[
        "delete from {{ this }} where load_id is null",
        "{{ record_staged_loads(ref('stg_fans')) }}",
    ],
) }}

with

-- Read more than once: kept as changed_rows_kept() says (macros/incremental_by_load.sql).
fans as {{ changed_rows_kept() }} (
    select * from {{ ref('stg_fans') }}
    {{ where_changed() }}
),

-- A snapshot has no updated_at: when a store's snapshot of a day was exported twice, the later
-- export date wins, then the later file name, then the later row (EXPORTS.md tie rule). Only
-- store-days with a fan twice (exported again, or a load with a key twice that an operator
-- released) are ranked.
deduplicated as (
    {{ current_version(
        'fans', 'store_id, fan_id, snapshot_date', version_column='export_date',
        by='store_id, snapshot_date'
    ) }}
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
    {{ keys_without_rows('fans') }}
)

select * from final
