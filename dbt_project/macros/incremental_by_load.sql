{#- Incremental builds by load (issue 6): a day of new exports costs about the day.

    Staging tables (stg_orders, stg_refunds) gain the rows of loads published since the last
    build and lose the rows of loads no longer published. The models over them recompute,
    with delete+insert by key, only the keys a new load changes (`changed_keys`): current
    versions of orders and refunds by id, fan snapshots by store and day, fan-club history
    by fan, a store's latest snapshot by store, buyer months by buyer and store; a
    `<model>__state` table keeps the loads each build saw. When the dbt
    project or the pseudonym key changes, `trustwh run` builds with --full-refresh (see
    defs/dbt/assets.py), so no table mixes two versions of the logic.
    tests/test_end_to_end.py: runs on a growing landing build what one run on all of it does. -#}

{% macro drop_unpublished_loads() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where load_id not in (
            select ledger.load_id from {{ source('quality', 'load_ledger') }} as ledger
            where ledger.status = 'published'
        )
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}


{% macro state_relation() -%}
    {{ return(this.incorporate(path={'identifier': this.identifier ~ '__state'})) }}
{%- endmacro %}


{% macro changed_keys(staged, key, by=none, traced=true) -%}
    {#- The keys (`key`: one column or several, comma-separated) a build recomputes: those of
        staged rows of a load this model has not seen, or, with `by`, of every staged row
        sharing a `by` value with such a row (a buyer's months change when a new version of
        one of their orders, even one now of another buyer, arrives); and those whose row here
        came from a load no longer staged. A model whose rows carry no load_id (traced=false)
        then recomputes every key. -#}
    {%- set state = state_relation() -%}
    {%- set new_rows = 'load_id not in (select state.load_id from ' ~ state ~ ' as state)' -%}
    {%- set staged_loads = 'select distinct staged.load_id from ' ~ staged ~ ' as staged' -%}
    {%- if adapter.get_relation(state.database, state.schema, state.identifier) is none %}
        -- No state: every key is recomputed.
        select {{ key }} from {{ staged }}
        union
        select {{ key }} from {{ this }}
    {%- else %}
        {%- if by %}
        select {{ key }} from {{ staged }}
        where ({{ by }}) in (select {{ by }} from {{ staged }} where {{ new_rows }})
        {%- else %}
        select {{ key }} from {{ staged }} where {{ new_rows }}
        {%- endif %}
        union
        {%- if traced %}
        select {{ key }} from {{ this }} where load_id not in ({{ staged_loads }})
        {%- else %}
        select {{ key }} from {{ staged }}
        where exists (
            select 1 from {{ state }} as state where state.load_id not in ({{ staged_loads }})
        )
        {%- endif %}
    {%- endif %}
{%- endmacro %}


{% macro keys_without_rows(key, rows) -%}
    {#- Recomputed keys with no row left in `rows`: a row of only the key replaces their old
        rows (delete+insert by key), and the model's post-hook then deletes it. -#}
    {%- if is_incremental() %}
    union all by name
    select {{ key }} from changed
    where ({{ key }}) not in (select {{ key }} from {{ rows }})
    {%- endif %}
{%- endmacro %}


{% macro record_staged_loads(staged) -%}
    create or replace table {{ state_relation() }} as
    select distinct load_id from {{ staged }}
{%- endmacro %}
