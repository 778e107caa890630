{#- Maps a Chinese enum label to its stable English code through the enum_labels seed, as a
    lookup in a map built once per query: staging stays a plain projection. (A correlated
    subquery per row made DuckDB copy every staged row for a delim join, 1.5 s per 1M orders
    and spilling at 10M.) -#}
{% macro enum_code(field, column) -%}
    map_extract_value(
        (
            select map(list(enum_labels.label), list(enum_labels.code))
            from {{ ref('enum_labels') }} as enum_labels
            where enum_labels.field = '{{ field }}'
        ),
        {{ column }}
    )
{%- endmacro %}
