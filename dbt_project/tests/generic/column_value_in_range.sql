{#- Fails on any value below min_value or above max_value (either bound optional, both
    inclusive); a NULL passes (whether a column may be NULL is stated on its own). -#}
{% test column_value_in_range(model, column_name, min_value=none, max_value=none) %}
    select {{ column_name }}
    from {{ model }}
    where
        false
        {%- if min_value is not none %}
            or {{ column_name }} < {{ min_value }}
        {%- endif %}
        {%- if max_value is not none %}
            or {{ column_name }} > {{ max_value }}
        {%- endif %}
{% endtest %}
