{#- The current version of each key (METRICS.md): newest updated_at, ties to the later export
    date, then the later file name, then the later load (a file landed again under its name),
    then the later row.

    Most keys have one version: only the groups of `by` (the key unless given, or a coarser
    part of it, such as a store's snapshot of a day) that hold a key twice are ranked; every
    other row is current as exported. Ranking every row sorted all of them; ranking whole
    rows, rather than their keys and lineage, sorted every column of them. The key's columns
    are never NULL (the contract requires them). `relation` is read three times: an import CTE
    passed here is declared `not materialized`, or DuckDB copies all its rows first. -#}
{% macro current_version(relation, key, version_column='updated_at', by=none) -%}
    {%- set by = by or key -%}
    {%- set group_columns = by.split(',') | map('trim') | list -%}
    {%- set rest = key.split(',') | map('trim') | reject('in', group_columns) | list %}
    with versioned as (
        select {{ by }}
        from {{ relation }}
        group by {{ by }}
        having count(*) > {{ 'count(distinct (' ~ rest | join(', ') ~ '))' if rest else 1 }}
    ),

    -- Each ranked key's winning row, by its lineage (a load's file has one row per number):
    -- only these columns are sorted, not whole rows.
    winners as (
        select {{ key }}, load_id, source_file_name, source_row_number
        from (
            select
                {{ key }},
                load_id,
                source_file_name,
                source_row_number,
                row_number() over (
                    partition by {{ key }}
                    order by {{ newest_first(version_column) }}
                ) as version_rank
            from {{ relation }}
            where ({{ by }}) in (select {{ by }} from versioned)
        ) as ranked
        where version_rank = 1
    )

    select * from {{ relation }}
    where
        ({{ by }}) not in (select {{ by }} from versioned)
        or ({{ key }}, load_id, source_file_name, source_row_number) in (select * from winners)
{%- endmacro %}


{#- On an incremental build where every load the last build saw is still staged, the current
    version of a key is the newest of its row here (the current version among those loads)
    and its rows in the new loads: ranking is a total order, so the newest of two newest is
    the newest of all. `relation` holds the new loads' rows; only the keys whose newest row is
    among them are returned, so a re-export no newer than what is built changes nothing.
    Compared with current_version over every staged version of the changed keys, this reads
    the new loads' rows, which sit in their own row groups, and the ranking columns of the
    built rows, instead of every column of every version, scattered over all history
    (int_orders_current at 10M orders, a day of 131k order versions: see README). -#}
{% macro newer_versions(relation, key) -%}
    with candidates as (
        select
            {{ key }}, updated_at, export_date, source_file_name, loaded_at, source_row_number,
            load_id
        from {{ relation }}
        union all
        select
            {{ key }}, updated_at, export_date, source_file_name, loaded_at, source_row_number,
            load_id
        from {{ this }}
        where {{ rows_of_keys(key, relation) }}
    ),

    winners as (
        select {{ key }}, load_id, source_file_name, source_row_number
        from (
            select
                *,
                row_number() over (
                    partition by {{ key }}
                    order by {{ newest_first() }}
                ) as version_rank
            from candidates
        ) as ranked
        where version_rank = 1
    )

    -- A key whose winner is the row built matches none of the new rows: it is left as built.
    select * from {{ relation }}
    where ({{ key }}, load_id, source_file_name, source_row_number) in (select * from winners)
{%- endmacro %}


{% macro newest_first(version_column='updated_at') -%}
    {#- The order of a key's versions, newest first (METRICS.md): the version column, then the
        later export date, the later file name, the later load of that name (two loads of one
        name both stay published when the first was: which wins must not depend on the order
        they were built in), the later row. -#}
    {{ version_column }} desc,
    {%- if version_column != 'export_date' %} export_date desc,{% endif %}
    {{- ' ' }}source_file_name desc, loaded_at desc, source_row_number desc
{%- endmacro %}
