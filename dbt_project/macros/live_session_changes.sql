{#- The live sessions a build changed (live_session_performance, recompute_changed_keys):
    those of the changed valid purchases, before and after; and the sessions built whose
    returning buyers a moved first purchase changes: those of a buyer whose first purchase
    at the session's store (as built) moved. The first purchase before the build is the
    earliest of the pair's purchases the build did not change and of their changed purchases
    as they were. A session no changed purchase is in keeps its store, first payment and
    buyers, so only such a move changes its row. A buyer new at a store, most of the pairs a
    day changes, is in none of its sessions built (unless an export put one of their
    purchases in a session of another store): the day's own sessions are recomputed, not
    every session of its buyers. -#}
{% macro live_session_changes(changes, purchases) -%}
    with changed as (
        select * from {{ changes }}
        where side in ('before', 'after')
    ),

    pairs as (
        select distinct store_id, buyer_id from changed
    ),

    pair_purchases as (
        select order_id, store_id, buyer_id, paid_at, live_session_id
        from {{ purchases }}
        where (store_id, buyer_id) in (select pairs.store_id, pairs.buyer_id from pairs)
    ),

    first_now as (
        select store_id, buyer_id, min(paid_at) as first_paid_at
        from pair_purchases
        group by store_id, buyer_id
    ),

    first_before as (
        select store_id, buyer_id, min(paid_at) as first_paid_at
        from (
            select store_id, buyer_id, paid_at from pair_purchases
            where order_id not in (select changed.order_id from changed)
            union all
            select store_id, buyer_id, paid_at from changed
            where side = 'before'
        ) as before_build
        group by store_id, buyer_id
    ),

    moved_pairs as (
        select pairs.store_id, pairs.buyer_id
        from pairs
        left join first_now
            on pairs.store_id = first_now.store_id and pairs.buyer_id = first_now.buyer_id
        left join first_before
            on pairs.store_id = first_before.store_id and pairs.buyer_id = first_before.buyer_id
        where first_now.first_paid_at is distinct from first_before.first_paid_at
    )

    select live_session_id from changed
    where live_session_id is not null
    union
    select purchases.live_session_id
    from {{ purchases }} as purchases
    inner join {{ this }} as built
        on purchases.live_session_id = built.live_session_id
    where
        (built.store_id, purchases.buyer_id) in (
            select moved_pairs.store_id, moved_pairs.buyer_id from moved_pairs
        )
{%- endmacro %}
