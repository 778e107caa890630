{#- Fails on every row where the boolean SQL expression is false (a NULL result passes:
    nulls are not_null's job), e.g. `refunded_orders <= orders`. -#}
{% test every_row_satisfies(model, expression) %}
    select *
    from {{ model }}
    where not ({{ expression }})
{% endtest %}
