{#- The pairs of store and buyer a build changed for seasonal_gift_list
    (recompute_changed_keys): those of the changed valid purchases, before and after; those
    of the valid purchases of orders whose refunds it recomputed (a counted refund lowers
    the net spend of its order's buyer), as the refunds were and as they are; and every
    pair of a store whose latest fans snapshot it recomputed. When the refunds' or the
    snapshots' changes are not known (their model was built whole), every pair. -#}
{% macro seasonal_gift_changes(changes, purchases) -%}
    {%- set refunds = ref('int_refunds_current') %}
    {%- set latest_fans = ref('int_fans_latest_snapshot') %}
    {%- if replaced_known(refunds) and catalog_columns(changed_relation(latest_fans)) %}
    with refunded_orders as (
        {{ changed_refunds('order_id') }}
    )

    select store_id, buyer_id from {{ changes }}
    where side in ('before', 'after')
    union
    -- Two reads, not one with `or`: each keeps its filter, and DuckDB skips the row groups
    -- that cannot match it (order ids follow the order of the loads), where `or` read every
    -- purchase (0.27 s → 0.02 s at 10M orders).
    select store_id, buyer_id from {{ purchases }}
    where order_id in (select refunded_orders.order_id from refunded_orders)
    union
    select store_id, buyer_id from {{ purchases }}
    where store_id in (select fans.store_id from {{ changed_relation(latest_fans) }} as fans)
    {%- else %}
    select distinct store_id, buyer_id from {{ purchases }}
    {%- endif %}
{%- endmacro %}

