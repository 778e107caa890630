{#- Incremental builds by load (issue 6): a day of new exports costs about the day.

    The staging views show the rows of published loads: a load published since the last build
    adds rows, a load no longer published takes its rows away. The models over them recompute,
    with delete+insert by key, only the keys a new load changes: current versions of orders
    and refunds by id, fan snapshots by store and day, fan-club history by fan, a store's
    latest snapshot by store. A model's pre-hook (`record_changed_keys`) writes those keys to
    `<model>__changed`; the model reads only their rows (`where_changed`), and the tests of
    its grain check only them (the `__changed_keys__` filter, macros/get_where_subquery.sql):
    the other keys were checked when they were built. The current versions of orders and
    refunds, when no load was withdrawn, read only the new loads' rows and rank them against
    the rows built (only_new_loads, newer_versions).
    The models over the valid purchases are incremental by their own key over what a build
    changed in them (record_replaced_rows, int_valid_purchase_changes,
    recompute_changed_keys): the buyer months by buyer and store and by buyer, and three
    marts, one of them also over the refunds and fans snapshots a build changed.
    A `<model>__state` table keeps the loads each build saw. When the dbt project or the
    pseudonym key changes, or a build did not finish or built some models only,
    `trustwh run` builds with --full-refresh (see defs/dbt/assets.py), so no table mixes two
    versions of the logic.
    tests/test_end_to_end.py: runs on a growing landing build what one run on all of it does. -#}

{% macro state_relation() -%}
    {{ return(state_relation_of(this)) }}
{%- endmacro %}


{% macro state_relation_of(relation) -%}
    {{ return(relation.incorporate(path={'identifier': relation.identifier ~ '__state'})) }}
{%- endmacro %}


{% macro changed_relation(relation=this) -%}
    {{ return(relation.incorporate(path={'identifier': relation.identifier ~ '__changed'})) }}
{%- endmacro %}


{% macro model_key() -%}
    {#- The model's unique_key (one column or a list) as `a, b`: the key it is built by. -#}
    {%- set key = config.get('unique_key') -%}
    {{ return(key if key is string else key | join(', ')) }}
{%- endmacro %}


{% macro record_changed_keys(staged, traced=true) -%}
    {#- Pre-hook of an incremental model: the keys (its unique_key) this build recomputes, in
        `__changed`. A full build recomputes every key and drops the table. -#}
    {%- if is_incremental() %}
        create or replace table {{ changed_relation() }} as
        select distinct * from (
            {{ changed_keys(staged, model_key(), traced) }}
        ) as changed
    {%- else %}
        drop table if exists {{ changed_relation() }}
    {%- endif %}
{%- endmacro %}


{% macro changed_keys(staged, key, traced=true) -%}
    {#- The keys (`key`: one column or several, comma-separated) a build recomputes: those of
        staged rows of a load this model has not seen, and those whose row here came from a
        load no longer staged. A model whose rows carry no load_id (traced=false) then
        recomputes every key. -#}
    {%- set loads = loads_since_last_build(staged) %}
    {%- if loads is none %}
        -- No state: every key is recomputed.
        select {{ key }} from {{ staged }}
        union
        select {{ key }} from {{ this }}
    {%- else %}
        -- Loads since the last build: {{ loads.new | length }} new, {{ loads.gone | length }} gone.
        select {{ key }} from {{ staged }} where {{ in_new_loads(loads) }}
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


{% macro only_new_loads(staged) -%}
    {#- On an incremental build where every load the last build saw is still staged: the loads
        it had not seen (load_changes; `new` may be empty). Otherwise none: a full build, no
        state, or a load no longer staged, whose rows must leave what they built. -#}
    {%- set loads = loads_since_last_build(staged) if is_incremental() else none -%}
    {{ return(none if loads is none or loads.gone else loads) }}
{%- endmacro %}


{% macro loads_since_last_build(staged) -%}
    {#- load_changes against the loads this model's last build saw (its `__state`), or none
        when there is no such record. Asked only on an incremental build: in a unit test
        `this` is None. -#}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set state = state_relation() -%}
    {%- if adapter.get_relation(state.database, state.schema, state.identifier) is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(load_changes(staged, state)) }}
{%- endmacro %}


{% macro load_changes(staged, state) -%}
    {#- The loads staged now that the last build had not seen (`new`, and `since`, the earliest
        load time among them), and those it saw that are no longer staged (`gone`): read
        from the ledger first, so that the staged rows are then filtered by a list of loads
        (in_new_loads) instead of a join over every staged row. -#}
    {%- set found = {'new': [], 'gone': [], 'since': none} -%}
    {%- if execute -%}
        {%- set query -%}
            with staged_loads as ({{ staged_loads(staged) }})
            select 'new' as change, staged_loads.load_id, staged_loads.loaded_at
            from staged_loads
            where staged_loads.load_id not in (select state.load_id from {{ state }} as state)
            union all
            select 'gone' as change, state.load_id, null as loaded_at
            from {{ state }} as state
            where state.load_id not in (select staged_loads.load_id from staged_loads)
        {%- endset -%}
        {%- for row in run_query(query).rows -%}
            {%- do found[row[0]].append(row[1]) -%}
            {%- if row[0] == 'new' and (found.since is none or row[2] < found.since) -%}
                {%- do found.update({'since': row[2]}) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(found) }}
{%- endmacro %}


{% macro in_new_loads(loads) -%}
    {#- A filter of staged rows to those of the new loads of `loads` (load_changes). By load id,
        and by load time, which is what lets DuckDB skip the row groups of earlier loads: a
        VARCHAR's zone map keeps only its first 8 bytes, and every load id of an export
        starts alike (`orders_2…`), so the ids alone read every row of history. A load's rows
        carry the load time of its ledger entry. -#}
    {%- if loads.new -%}
        loaded_at >= timestamp '{{ loads.since }}' and {{ one_of('load_id', loads.new) }}
    {%- else -%}
        false
    {%- endif -%}
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


{% macro where_changed(new_loads=none) -%}
    {#- On an incremental build, only the rows of the keys in `__changed`; with `new_loads`
        (only_new_loads), only the rows of those loads, which current_versions_of ranks
        against the rows built. -#}
    {%- if new_loads is not none %}
    where {{ in_new_loads(new_loads) }}
    {%- elif is_incremental() %}
    {%- set key = model_key() %}
    where ({{ key }}) in (select {{ key }} from {{ changed_relation() }})
    {%- endif %}
{%- endmacro %}


{% macro current_versions_of(relation, key, new_loads=none) -%}
    {#- The current version of each key of `relation` (as where_changed() read it): among all
        its staged versions, or, with `new_loads`, the newer of its row built and its rows in
        the new loads (macros/current_version.sql). -#}
    {%- if new_loads is none -%}
        {{ current_version(relation, key) }}
    {%- else -%}
        {{ newer_versions(relation, key) }}
    {%- endif -%}
{%- endmacro %}


{% macro changed_rows_kept() -%}
    {#- How an import CTE read more than once (the input of `current_version`) is kept: on a
        full build `not materialized`, or DuckDB would first copy every row; on an
        incremental build `materialized`, the few rows of the changed keys, which each read
        would otherwise find again among all the staged rows (int_orders_current at 10M with
        100k changed orders: 1.41 → 0.98 s). -#}
    {{ return('materialized' if is_incremental() else 'not materialized') }}
{%- endmacro %}


{% macro keys_without_rows(rows, new_loads=none) -%}
    {#- Recomputed keys with no row left in `rows`: a row of only the key replaces their old
        rows (delete+insert by key), and the model's post-hook then deletes it. With only new
        loads (`new_loads`) every changed key has a row. -#}
    {%- if is_incremental() and new_loads is none %}
    {%- set key = model_key() %}
    union all by name
    select {{ key }} from {{ changed_relation() }}
    where ({{ key }}) not in (select {{ key }} from {{ rows }})
    {%- endif %}
{%- endmacro %}


{% macro replaced_relation(relation=this) -%}
    {{ return(relation.incorporate(path={'identifier': relation.identifier ~ '__replaced'})) }}
{%- endmacro %}


{% macro record_replaced_rows(columns) -%}
    {#- Pre-hook, after record_changed_keys: the `columns` of the rows built for the keys this
        build recomputes, as they were, in `__replaced`: so that the models after it
        recompute only what a build changed. int_valid_purchase_changes pairs the orders'
        with the rows built; seasonal_gift_changes reads which orders the refunds were of.
        A full build drops the table: then the changes are not known. -#}
    {%- if is_incremental() %}
        {%- set key = model_key() %}
        create or replace table {{ replaced_relation() }} as
        select {{ columns }} from {{ this }}
        where {{ rows_of_keys(key, changed_relation()) }}
    {%- else %}
        drop table if exists {{ replaced_relation() }}
    {%- endif %}
{%- endmacro %}


{% macro rows_of_keys(key, keys, relation=this) -%}
    {#- The rows of `relation` (a table) whose `key` is among those of `keys`, found by their
        row ids: the key column is read to find them, the other columns only where they are.
        Read as `key in (...)`, DuckDB read every column of every row before the filter
        dropped them (int_orders_current's 100 changed orders of a small day at 10M: the ten
        columns kept 1.0 → 0.14 s). Only in a plain select: in a query that read the rows
        twice (int_valid_purchase_changes), DuckDB joined every row to the row ids instead,
        0.56 → 1.4 s. Row ids are DuckDB's: elsewhere, the plain filter. -#}
    {%- set of_keys = '(' ~ key ~ ') in (select ' ~ key ~ ' from ' ~ keys ~ ')' %}
    {%- if target.type == 'duckdb' %}
    rowid in (select rowid from {{ relation }} where {{ of_keys }})
    {%- else %}
    {{ of_keys }}
    {%- endif %}
{%- endmacro %}


{% macro replaced_known(relation) -%}
    {#- Whether a model's last build kept the rows it replaced (it was incremental). -#}
    {{ return(catalog_columns(replaced_relation(relation)) | length > 0) }}
{%- endmacro %}


{% macro changes_known(changes) -%}
    {#- Whether a build's changes (int_valid_purchase_changes) are known: no row says not. -#}
    {%- set unknown = run_query(
        "select count(*) from " ~ changes ~ " where side = 'unknown'"
    ) -%}
    {{ return(unknown.rows[0][0] == 0) }}
{%- endmacro %}


{% macro purchase_columns() -%}
    {#- The columns of a valid purchase that int_valid_purchase_changes compares: those the
        models incremental over it read (with order_status, which decides validity). A model
        that reads another column of int_valid_purchases adds it here. -#}
    order_id, order_status, store_id, buyer_id, paid_at, paid_amount, channel, live_session_id,
    is_trust_card, fan_club_level
{%- endmacro %}


{% macro recompute_changed_keys(changes, everything, keys=none) -%}
    {#- Pre-hook of a model incremental by its key (unique_key) over the changes of valid
        purchases (`changes`, int_valid_purchase_changes): the keys this build recomputes in
        `__changed`, then their rows deleted, so that a key left with no purchase leaves
        too; the model appends the rows of those keys (where_changed() on its input,
        incremental_strategy 'append'). The keys are those of the changed rows, or the query
        `keys`; when the changes are not known, every row goes and every key of `everything`
        is recomputed. A full build drops `__changed`. -#}
    {%- if is_incremental() %}
        {%- set key = model_key() %}
        {%- set known = changes_known(changes) %}
        create or replace table {{ changed_relation() }} as
        {% if not known -%}
            select distinct {{ key }} from {{ everything }}
        {%- elif keys -%}
            {{ keys }}
        {%- else -%}
            select distinct {{ key }} from {{ changes }}
        {%- endif %};
        delete from {{ this }}
        {%- if known %}
        where ({{ key }}) in (select {{ key }} from {{ changed_relation() }})
        {%- endif %}
    {%- else %}
        drop table if exists {{ changed_relation() }}
    {%- endif %}
{%- endmacro %}


{% macro record_staged_loads(staged) -%}
    create or replace table {{ state_relation() }} as
    {{ staged_loads(staged) }}
{%- endmacro %}


{% macro staged_loads(staged) -%}
    {#- The loads with rows in a staging view: its raw source's published loads, read from the
        ledger (one row per load) rather than as the distinct load_id of every staged row,
        which read all history (0.2–0.35 s a model at 10M orders, fans too on a day with no
        fans file). The view shows the raw rows of published loads, and a load's
        rows_loaded is the number of its rows in the raw table. -#}
    {%- set raw_sources = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values()
            if node.resource_type == 'model' and node.alias == staged.identifier -%}
            {%- for parent in node.depends_on.nodes if parent.startswith('source.') -%}
                {%- set source_node = graph.sources[parent] -%}
                {%- if source_node.source_name == 'raw' -%}
                    {%- do raw_sources.append(source_node.name) -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- if raw_sources | length != 1 -%}
            {{ exceptions.raise_compiler_error(
                staged ~ ' must read one raw source, not ' ~ raw_sources
            ) }}
        {%- endif -%}
    {%- endif -%}
    select
        ledger.load_id,
        ledger.loaded_at
    from {{ source('quality', 'load_ledger') }} as ledger
    where
        ledger.status = 'published'
        and ledger.entity = '{{ raw_sources | first }}'
        and ledger.rows_loaded > 0
{%- endmacro %}
