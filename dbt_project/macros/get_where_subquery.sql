{#- dbt's `where` test config, plus one placeholder: `__changed_keys__` keeps only the rows of
    the keys the model's last build recomputed (its `__changed` table, written by
    `record_changed_keys`), or every row after a full build, which leaves no such table.

    For tests of an incremental model's grain (unique over columns that include its
    unique_key): a build replaces only those keys' rows, so only they can have become
    duplicates; the others were checked when they were built. At 10M orders the grain tests
    of the incremental models read tens of millions of rows on every run otherwise. dbt
    documents overriding this macro for custom `where` logic. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where and '__changed_keys__' in where -%}
        {%- set where = where | replace('__changed_keys__', changed_keys_filter(relation)) -%}
    {%- endif -%}
    {%- if where -%}
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
