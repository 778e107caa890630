{#- The valid purchases a build of int_orders_current changed (macros/incremental_by_load.sql):
    for each order it recomputed whose valid purchase differs in a column the models
    incremental over it read (purchase_columns()), the purchase as it was (`side` before)
    and as it is (`side` after); an order that became, or stopped being, a valid purchase
    has one side. A version that only moves an order on among valid statuses, or exports it
    again unchanged, changes nothing here: most of a day's versions of earlier orders. The
    buyer months and three marts, incremental by key, read it (recompute_changed_keys). When
    the changes are not known, because int_orders_current was built whole, one row of side
    `unknown` says so, and those models are rebuilt whole. -#}
{%- set orders = ref('int_orders_current') %}
{%- set known = replaced_known(orders) %}

with

replaced_orders as (
    select {{ purchase_columns() }}
    from {{ replaced_relation(orders) if known else orders }}
    where {{ 'true' if known else 'false' }}
),

rebuilt_orders as (
    select {{ purchase_columns() }}
    from {{ orders }}
    where
        {{ known }}
        and order_id in (
            select changed.order_id
            from {{ changed_relation(orders) if known else orders }} as changed
        )
),

-- The status among valid ones is not compared: no mart reads it.
was as (
    select * exclude (order_status)
    from ({{ valid_purchases_of('replaced_orders') }}) as purchases
),

is_now as (
    select * exclude (order_status)
    from ({{ valid_purchases_of('rebuilt_orders') }}) as purchases
),

final as (
    select
        'before' as side,
        *
    from (
        select * from was
        except
        select * from is_now
    ) as gone
    union all
    select
        'after' as side,
        *
    from (
        select * from is_now
        except
        select * from was
    ) as came
    union all by name
    select 'unknown' as side
    where not {{ known }}
)

select * from final
