{#- Incremental by fan (macros/incremental_by_load.sql): a build recomputes the history of
    every fan a new load has a snapshot of (a snapshot is current per fan and day, so no
    other fan's history changes). Stretches carry no load, so when a load seen before is no
    longer published every fan is recomputed. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['store_id', 'fan_id'],
    pre_hook="{{ record_changed_keys(ref('stg_fans'), traced=false) }}",
    post_hook=[
        "delete from {{ this }} where valid_from is null",
        "{{ record_staged_loads(ref('stg_fans')) }}",
    ],
) }}

with

fan_snapshots as (
    select * from {{ ref('int_fan_snapshots') }}
    {{ where_changed() }}
),

-- NULLs get keys of their own, so a change to or from an unknown value starts a stretch too.
with_keys as (
    select
        store_id,
        fan_id,
        snapshot_date,
        fan_club_level,
        is_following,
        coalesce(fan_club_level, -1) as level_key,
        case when is_following then 1 when not is_following then 0 else -1 end as following_key
    from fan_snapshots
),

-- One pass in snapshot order: the day before's level, following and date; the snapshot's
-- number; and the fan's last date and count of snapshots (same order, so one sort).
with_previous as (
    select
        *,
        lag(level_key) over by_date as previous_level_key,
        lag(following_key) over by_date as previous_following_key,
        lag(snapshot_date) over by_date as previous_snapshot_date,
        row_number() over by_date as snapshot_number,
        last_value(snapshot_date) over whole_history as last_snapshot_date,
        count(*) over whole_history as fan_snapshots
    from with_keys
    window
        by_date as (partition by store_id, fan_id order by snapshot_date),
        whole_history as (
            partition by store_id, fan_id
            order by snapshot_date
            rows between unbounded preceding and unbounded following
        )
),

-- A stretch starts on the fan's first snapshot and whenever level or following changes.
stretch_starts as (
    select * from with_previous
    where
        previous_level_key is null
        or previous_level_key != level_key
        or previous_following_key != following_key
),

-- A stretch lasts until the next one starts: its last snapshot is the one before that start.
stretches as (
    select
        store_id,
        fan_id,
        fan_club_level,
        is_following,
        snapshot_date as valid_from,
        lead(snapshot_date) over next_start as valid_to,
        coalesce(lead(previous_snapshot_date) over next_start, last_snapshot_date)
            as last_seen_date,
        cast(
            coalesce(lead(snapshot_number) over next_start, fan_snapshots + 1) - snapshot_number
            as {{ dbt.type_bigint() }}
        ) as snapshots
    from stretch_starts
    window next_start as (partition by store_id, fan_id order by snapshot_date)
),

final as (
    select * from stretches
    {{ keys_without_rows('fan_snapshots') }}
)

select * from final
