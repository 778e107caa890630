{#- dbt's `where` test config, plus two placeholders.

    `__changed_keys__` keeps only the rows of the keys the model's last build recomputed (its
    `__changed` table, written by `record_changed_keys`), or every row after a full build,
    which leaves no such table.

    For tests of an incremental model's grain (unique over columns that include its
    unique_key): a build replaces only those keys' rows, so only they can have become
    duplicates; the others were checked when they were built. At 10M orders the grain tests
    of the incremental models read tens of millions of rows on every run otherwise. dbt
    documents overriding this macro for custom `where` logic.

    `__new_loads__` keeps only the rows of a staging view from loads that the incremental
    models over it have not all built from (their `__state`), or every row on a full refresh
    or when one of them has no state: the tests of the staging views (dbt_project.yml). A
    staging row depends only on its raw row, which never changes, and on the project, whose
    every change makes the next build a full refresh (defs/dbt/assets.py); a build that
    recorded a load in a `__state` ran these tests over its rows first, as a failing test
    skips the models after it. A day's tests then read the day rather than all history
    (issue 6). -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where and '__changed_keys__' in where -%}
        {%- set where = where | replace('__changed_keys__', changed_keys_filter(relation)) -%}
    {%- endif -%}
    {%- if where and '__new_loads__' in where -%}
        {%- set where = where | replace('__new_loads__', new_loads_filter(relation)) -%}
    {%- endif -%}
    {#- A filter that keeps every row is none: the test reads the relation itself. -#}
    {%- if where and where | trim != 'true' -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}


{% macro changed_keys_filter(relation) -%}
    {%- set changed = changed_relation(relation) -%}
    {%- set key = catalog_columns(changed) | join(', ') -%}
    {%- if key -%}
        {%- do return('(' ~ key ~ ') in (select ' ~ key ~ ' from ' ~ changed ~ ')') -%}
    {%- endif -%}
    {%- do return('true') -%}
{%- endmacro %}


{% macro new_loads_filter(staged) -%}
    {#- Only builds and `dbt test` filter: the docs show the test as over every row. -#}
    {%- if flags.FULL_REFRESH or not execute or flags.WHICH not in ('build', 'test') -%}
        {%- do return('true') -%}
    {%- endif -%}
    {%- set staged_ids = [] -%}
    {%- for node in graph.nodes.values()
        if node.resource_type == 'model' and node.alias == staged.identifier -%}
        {%- do staged_ids.append(node.unique_id) -%}
    {%- endfor -%}
    {%- set states = [] -%}
    {%- for node in graph.nodes.values()
        if node.resource_type == 'model' and node.config.materialized == 'incremental'
        and staged_ids | select('in', node.depends_on.nodes) | list -%}
        {%- do states.append(state_relation_of(api.Relation.create(
            database=node.database, schema=node.schema, identifier=node.alias
        ))) -%}
    {%- endfor -%}
    {%- if not states -%}
        {%- do return('true') -%}
    {%- endif -%}
    {%- for state in states -%}
        {%- if not catalog_columns(state) -%}
            {%- do return('true') -%}
        {%- endif -%}
    {%- endfor -%}
    {#- The loads every one of them has built from: the others are new to one at least. -#}
    {%- set built -%}
        (
            {%- for state in states -%}
                select load_id from {{ state }}{{ ' intersect ' if not loop.last }}
            {%- endfor -%}
        )
    {%- endset -%}
    {%- do return(in_new_loads(load_changes(staged, built))) -%}
{%- endmacro %}


{% macro catalog_columns(relation) -%}
    {#- A table's column names, none when it does not exist (or at parse time). Read from the
        catalog, not dbt's relation cache: the tables asked about (`__changed`, `__replaced`)
        are written by hooks in this invocation, after the cache was filled. -#}
    {%- if not execute -%}
        {%- do return([]) -%}
    {%- endif -%}
    {%- set columns -%}
        select column_name from information_schema.columns
        where
            table_catalog = '{{ relation.database }}'
            and table_schema = '{{ relation.schema }}'
            and table_name = '{{ relation.identifier }}'
        order by ordinal_position
    {%- endset -%}
    {%- do return(run_query(columns).columns[0].values() | list) -%}
{%- endmacro %}
