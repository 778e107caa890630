{#- Incremental by key (macros/incremental_by_load.sql): a build recomputes only the orders a
    new load has a version of, or whose current version's load is no longer published. An
    order left with no version gets a row of only its key, which replaces its old row and is
    then deleted by the post-hook. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='order_id',
    pre_hook="{{ record_changed_keys(ref('stg_orders')) }}",
    post_hook=[
        "delete from {{ this }} where load_id is null",
        "{{ record_staged_loads(ref('stg_orders')) }}",
    ],
) }}

with

-- Read more than once: kept as changed_rows_kept() says (macros/incremental_by_load.sql).
orders as {{ changed_rows_kept() }} (
    select * from {{ ref('stg_orders') }}
    {{ where_changed() }}
),

current_orders as (
    {{ current_version('orders', 'order_id') }}
),

final as (
    select * from current_orders
    {{ keys_without_rows('orders') }}
)

select * from final
