{#- Maps a Chinese enum label to its stable English code through the enum_labels seed,
    as a scalar subquery so staging stays a plain projection. -#}
{% macro enum_code(field, column) -%}
    (
        select enum_labels.code
        from {{ ref('enum_labels') }} as enum_labels
        where enum_labels.field = '{{ field }}' and enum_labels.label = {{ column }}
    )
{%- endmacro %}
