{#- Incremental by store and day: a build recomputes only the store-days whose valid
    purchases it changed (int_valid_purchase_changes), mostly the new day's. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    unique_key=['store_id', 'purchase_date'],
    pre_hook="{{ recompute_changed_keys(
        ref('int_valid_purchase_changes'), ref('int_valid_purchases')
    ) }}",
) }}

with

valid_purchases as (
    select * from {{ ref('int_valid_purchases') }}
    {{ where_changed() }}
),

store_days as (
    select
        store_id,
        purchase_date,
        count(*) as orders,
        count(distinct buyer_id) as buyers,
        -- An order exported without paid_amount adds nothing to GMV.
        coalesce(sum(paid_amount), 0) as gmv,
        count(case when channel = 'live' then 1 end) as live_orders,
        coalesce(sum(case when channel = 'live' then paid_amount end), 0) as live_gmv
    from valid_purchases
    group by store_id, purchase_date
),

final as (
    select
        store_id,
        purchase_date,
        cast(orders as {{ dbt.type_bigint() }}) as orders,
        cast(buyers as {{ dbt.type_bigint() }}) as buyers,
        cast(gmv as decimal(18, 2)) as gmv,
        cast(live_orders as {{ dbt.type_bigint() }}) as live_orders,
        cast(live_gmv as decimal(18, 2)) as live_gmv
    from store_days
)

select * from final
