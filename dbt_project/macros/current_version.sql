{#- The current version of each key (METRICS.md): newest updated_at, ties to the later export
    date, then the later file name, then the later row. -#}
{% macro current_version(relation, key, version_column='updated_at') -%}
    select *
    from (
        select
            *,
            row_number() over (
                partition by {{ key }}
                order by
                    {{ version_column }} desc,
                    export_date desc,
                    source_file_name desc,
                    source_row_number desc
            ) as version_rank
        from {{ relation }}
    ) as ranked
    where version_rank = 1
{%- endmacro %}
