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
    select store_id, buyer_id from {{ purchases }}
    where
        order_id in (select refunded_orders.order_id from refunded_orders)
        or store_id in (select fans.store_id from {{ changed_relation(latest_fans) }} as fans)
    {%- else %}
    select distinct store_id, buyer_id from {{ purchases }}
    {%- endif %}
{%- endmacro %}


{% macro changed_refunds(column) -%}
    {#- A column (order_id, buyer_id) of the refunds a build of int_refunds_current
        recomputed, as they were (its `__replaced`) and as they are. Asked when
        replaced_known(). -#}
    {%- set refunds = ref('int_refunds_current') %}
    select replaced.{{ column }} from {{ replaced_relation(refunds) }} as replaced
    union all
    select refunds.{{ column }} from {{ refunds }} as refunds
    where refunds.refund_id in (
        select changed.refund_id from {{ changed_relation(refunds) }} as changed
    )
{%- endmacro %}


{% macro refund_buyer_changes(changes) -%}
    {#- The buyers a build changed for int_buyer_refund_windows (recompute_changed_keys):
        those of the changed valid purchases, before and after, and those of the refunds it
        recomputed, as they were and as they are. When the refunds' changes are not known
        (their model was built whole), every buyer with a counted refund or a row built. -#}
    {%- if replaced_known(ref('int_refunds_current')) %}
    select buyer_id from {{ changes }}
    where side in ('before', 'after')
    union
    select refunds.buyer_id from ({{ changed_refunds('buyer_id') }}) as refunds
    {%- else %}
    select buyer_id from {{ ref('int_counted_refunds') }}
    union
    select buyer_id from {{ this }}
    {%- endif %}
{%- endmacro %}
