with

stores as (
    select * from {{ ref('stores') }}
),

stores_seen as (
    select * from {{ ref('int_stores_seen') }}
),

unknown as (
    select
        stores_seen.store_id,
        stores_seen.entity,
        stores_seen.records,
        stores_seen.first_export_date,
        stores_seen.last_export_date
    from stores_seen
    left join stores
        on stores_seen.store_id = stores.store_id
    where stores.store_id is null
),

final as (
    select * from unknown
)

select * from final
