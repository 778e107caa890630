{#- Incremental builds by load (issue 6): a day of new exports costs about the day.

    The staging views show the rows of published loads: a load published since the last build
    adds rows, a load no longer published takes its rows away. The models over them recompute,
    with delete+insert by key, only the keys a new load changes: current versions of orders
    and refunds by id, fan snapshots by store and day, fan-club history by fan, a store's
    latest snapshot by store, buyer months by buyer and store. A model's pre-hook
    (`record_changed_keys`) writes those keys to `<model>__changed`; the model reads only
    their rows (`where_changed`), and the tests of its grain check only them (the
    `__changed_keys__` filter, macros/get_where_subquery.sql): the other keys were checked
    when they were built. A `<model>__state` table keeps the loads each build saw. When the dbt
    project or the pseudonym key changes, `trustwh run` builds with --full-refresh (see
    defs/dbt/assets.py), so no table mixes two versions of the logic.
    tests/test_end_to_end.py: runs on a growing landing build what one run on all of it does. -#}

{% macro state_relation() -%}
    {{ return(this.incorporate(path={'identifier': this.identifier ~ '__state'})) }}
{%- endmacro %}


{% macro changed_relation(relation=this) -%}
    {{ return(relation.incorporate(path={'identifier': relation.identifier ~ '__changed'})) }}
{%- endmacro %}


{% macro model_key() -%}
    {#- The model's unique_key (one column or a list) as `a, b`: the key it is built by. -#}
    {%- set key = config.get('unique_key') -%}
    {{ return(key if key is string else key | join(', ')) }}
{%- endmacro %}


{% macro record_changed_keys(staged, by=none, traced=true) -%}
    {#- Pre-hook of an incremental model: the keys (its unique_key) this build recomputes, in
        `__changed`. A full build recomputes every key and drops the table. -#}
    {%- if is_incremental() %}
        create or replace table {{ changed_relation() }} as
        select distinct * from (
            {{ changed_keys(staged, model_key(), by, traced) }}
        ) as changed
    {%- else %}
        drop table if exists {{ changed_relation() }}
    {%- endif %}
{%- endmacro %}


{% macro changed_keys(staged, key, by=none, traced=true) -%}
    {#- The keys (`key`: one column or several, comma-separated) a build recomputes: those of
        staged rows of a load this model has not seen, or, with `by`, of every staged row
        sharing a `by` value with such a row (a buyer's months change when a new version of
        one of their orders, even one now of another buyer, arrives); and those whose row here
        came from a load no longer staged. A model whose rows carry no load_id (traced=false)
        then recomputes every key. -#}
    {%- set state = state_relation() -%}
    {%- if adapter.get_relation(state.database, state.schema, state.identifier) is none %}
        -- No state: every key is recomputed.
        select {{ key }} from {{ staged }}
        union
        select {{ key }} from {{ this }}
    {%- else %}
        {%- set loads = load_changes(staged, state) %}
        -- Loads since the last build: {{ loads.new | length }} new, {{ loads.gone | length }} gone.
        {%- if by %}
        select {{ key }} from {{ staged }}
        where ({{ by }}) in (
            select {{ by }} from {{ staged }} where {{ one_of('load_id', loads.new) }}
        )
        {%- else %}
        select {{ key }} from {{ staged }} where {{ one_of('load_id', loads.new) }}
        {%- endif %}
        {%- if loads.gone and traced %}
        union
        select {{ key }} from {{ this }} where {{ one_of('load_id', loads.gone) }}
        {%- elif loads.gone %}
        union
        select {{ key }} from {{ staged }}
        union
        select {{ key }} from {{ this }}
        {%- endif %}
    {%- endif %}
{%- endmacro %}


{% macro load_changes(staged, state) -%}
    {#- The loads staged now that the last build had not seen (`new`), and those it saw that
        are no longer staged (`gone`): read first (one column of each), so that the staged
        rows are then filtered by a list of load ids, which DuckDB prunes row group by row
        group (rows are appended load by load), instead of a join over every staged row. -#}
    {%- set found = {'new': [], 'gone': []} -%}
    {%- if execute -%}
        {%- set query -%}
            with staged_loads as (select distinct staged.load_id from {{ staged }} as staged)
            select 'new' as change, staged_loads.load_id from staged_loads
            where staged_loads.load_id not in (select state.load_id from {{ state }} as state)
            union all
            select 'gone' as change, state.load_id from {{ state }} as state
            where state.load_id not in (select staged_loads.load_id from staged_loads)
        {%- endset -%}
        {%- for row in run_query(query).rows -%}
            {%- do found[row[0]].append(row[1]) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(found) }}
{%- endmacro %}


{% macro one_of(column, values) -%}
    {%- if values -%}
        {{ column }} in (
            {%- for value in values -%}
                '{{ value | replace("'", "''") }}'{{ ', ' if not loop.last }}
            {%- endfor -%}
        )
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}


{% macro where_changed() -%}
    {#- On an incremental build, only the rows of the keys in `__changed`. -#}
    {%- if is_incremental() %}
    {%- set key = model_key() %}
    where ({{ key }}) in (select {{ key }} from {{ changed_relation() }})
    {%- endif %}
{%- endmacro %}


{% macro changed_rows_kept() -%}
    {#- How an import CTE read more than once (the input of `current_version`) is kept: on a
        full build `not materialized`, or DuckDB would first copy every row; on an
        incremental build `materialized`, the few rows of the changed keys, which each read
        would otherwise find again among all the staged rows (int_orders_current at 10M with
        100k changed orders: 1.41 → 0.98 s). -#}
    {{ return('materialized' if is_incremental() else 'not materialized') }}
{%- endmacro %}


{% macro keys_without_rows(rows) -%}
    {#- Recomputed keys with no row left in `rows`: a row of only the key replaces their old
        rows (delete+insert by key), and the model's post-hook then deletes it. -#}
    {%- if is_incremental() %}
    {%- set key = model_key() %}
    union all by name
    select {{ key }} from {{ changed_relation() }}
    where ({{ key }}) not in (select {{ key }} from {{ rows }})
    {%- endif %}
{%- endmacro %}


{% macro record_staged_loads(staged) -%}
    create or replace table {{ state_relation() }} as
    select distinct load_id from {{ staged }}
{%- endmacro %}
