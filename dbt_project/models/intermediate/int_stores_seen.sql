with

current_orders as (
    select * from {{ ref('int_orders_current') }}
),

current_refunds as (
    select * from {{ ref('int_refunds_current') }}
),

fan_snapshots as (
    select * from {{ ref('int_fan_snapshots') }}
),

current_violations as (
    select * from {{ ref('int_violations_current') }}
),

orders_by_store as (
    select
        store_id,
        'orders' as entity,
        count(*) as records,
        min(export_date) as first_export_date,
        max(export_date) as last_export_date
    from current_orders
    group by store_id
),

refunds_by_store as (
    select
        store_id,
        'refunds' as entity,
        count(*) as records,
        min(export_date) as first_export_date,
        max(export_date) as last_export_date
    from current_refunds
    group by store_id
),

fans_by_store as (
    select
        store_id,
        'fans' as entity,
        count(*) as records,
        min(export_date) as first_export_date,
        max(export_date) as last_export_date
    from fan_snapshots
    group by store_id
),

violations_by_store as (
    select
        store_id,
        'violations' as entity,
        count(*) as records,
        min(export_date) as first_export_date,
        max(export_date) as last_export_date
    from current_violations
    group by store_id
),

unioned as (
    select * from orders_by_store
    union all
    select * from refunds_by_store
    union all
    select * from fans_by_store
    union all
    select * from violations_by_store
),

final as (
    select
        store_id,
        entity,
        cast(records as {{ dbt.type_bigint() }}) as records,
        first_export_date,
        last_export_date
    from unioned
)

select * from final
