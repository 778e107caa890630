{#- Rates are fractions (METRICS.md): fails on any value outside [0, 1]; nulls are not_null's job. -#}
{% test between_zero_and_one(model, column_name) %}
    {{ test_column_value_in_range(model, column_name, min_value=0, max_value=1) }}
{% endtest %}
