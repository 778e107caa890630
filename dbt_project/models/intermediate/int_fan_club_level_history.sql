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

with_previous as (
    select
        *,
        lag(level_key) over (
            partition by store_id, fan_id order by snapshot_date
        ) as previous_level_key,
        lag(following_key) over (
            partition by store_id, fan_id order by snapshot_date
        ) as previous_following_key
    from with_keys
),

-- A new stretch starts on the fan's first snapshot and whenever level or following changes.
flagged as (
    select
        *,
        case
            when previous_level_key is null then 1
            when previous_level_key != level_key then 1
            when previous_following_key != following_key then 1
            else 0
        end as is_new_stretch
    from with_previous
),

numbered as (
    select
        *,
        sum(is_new_stretch) over (
            partition by store_id, fan_id
            order by snapshot_date
            rows between unbounded preceding and current row
        ) as stretch_number
    from flagged
),

-- Level and following are constant within a stretch.
stretches as (
    select
        store_id,
        fan_id,
        stretch_number,
        fan_club_level,
        is_following,
        min(snapshot_date) as valid_from,
        max(snapshot_date) as last_seen_date,
        count(*) as snapshots
    from numbered
    group by store_id, fan_id, stretch_number, fan_club_level, is_following
),

final as (
    select
        store_id,
        fan_id,
        fan_club_level,
        is_following,
        valid_from,
        lead(valid_from) over (
            partition by store_id, fan_id order by valid_from
        ) as valid_to,
        last_seen_date,
        cast(snapshots as {{ dbt.type_bigint() }}) as snapshots
    from stretches
    {{ keys_without_rows('fan_snapshots') }}
)

select * from final
