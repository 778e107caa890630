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
    {#- Read from the catalog, not dbt's relation cache: the table is written by a hook in this
        invocation, after the cache was filled. -#}
    {%- set changed = changed_relation(relation) -%}
    {%- if execute -%}
        {%- set columns -%}
            select column_name from information_schema.columns
            where
                table_catalog = '{{ changed.database }}'
                and table_schema = '{{ changed.schema }}'
                and table_name = '{{ changed.identifier }}'
            order by ordinal_position
        {%- endset -%}
        {%- set key = run_query(columns).columns[0].values() | join(', ') -%}
        {%- if key -%}
            {%- do return('(' ~ key ~ ') in (select ' ~ key ~ ' from ' ~ changed ~ ')') -%}
        {%- endif -%}
    {%- endif -%}
    {%- do return('true') -%}
{%- endmacro %}
