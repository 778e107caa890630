{#- Incremental by store (macros/incremental_by_load.sql): a build recomputes the stores a
    new load exported snapshots of. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='store_id',
    pre_hook="{{ record_changed_keys(ref('stg_fans')) }}",
    post_hook=[
        "delete from {{ this }} where load_id is null",
        "{{ record_staged_loads(ref('stg_fans')) }}",
    ],
) }}

with

-- Read more than once: kept as changed_rows_kept() says (macros/incremental_by_load.sql).
fan_snapshots as {{ changed_rows_kept() }} (
    select * from {{ ref('int_fan_snapshots') }}
    {{ where_changed() }}
),

latest_snapshot_dates as (
    select
        store_id,
        max(snapshot_date) as snapshot_date
    from fan_snapshots
    group by store_id
),

final as (
    select
        fan_snapshots.snapshot_date,
        fan_snapshots.store_id,
        fan_snapshots.fan_id,
        fan_snapshots.followed_at,
        fan_snapshots.is_following,
        fan_snapshots.fan_club_level,
        fan_snapshots.fan_club_joined_at,
        fan_snapshots.load_id,
        fan_snapshots.source_file_name,
        fan_snapshots.export_date,
        fan_snapshots.source_row_number,
        fan_snapshots.loaded_at
    from fan_snapshots
    inner join latest_snapshot_dates
        on
            fan_snapshots.store_id = latest_snapshot_dates.store_id
            and fan_snapshots.snapshot_date = latest_snapshot_dates.snapshot_date
    {{ keys_without_rows('fan_snapshots') }}
)

select * from final
