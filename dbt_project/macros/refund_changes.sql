{#- What a build of int_refunds_current changed, for the models incremental over the refunds
    (seasonal_gift_changes, int_buyer_refund_windows). -#}

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


{% macro orphan_refund_changes() -%}
    {#- The refunds a build changed for quality_orphan_refunds (recompute_changed_keys): whether
        a refund waits for its order changes only with the refund (recomputed by
        int_refunds_current) or with its order (recomputed by int_orders_current: it arrived,
        or left with its load). When the orders' changes are not known, recompute_changed_keys
        recomputes every refund; when the refunds' are not (their model was built whole),
        every refund current or built. -#}
    {%- set refunds = ref('int_refunds_current') %}
    {%- if replaced_known(refunds) %}
    select changed.refund_id from {{ changed_relation(refunds) }} as changed
    union
    select refunds.refund_id from {{ refunds }} as refunds
    where refunds.order_id in (
        select changed.order_id from {{ changed_relation(ref('int_orders_current')) }} as changed
    )
    {%- else %}
    select refunds.refund_id from {{ refunds }} as refunds
    union
    select built.refund_id from {{ this }} as built
    {%- endif %}
{%- endmacro %}
