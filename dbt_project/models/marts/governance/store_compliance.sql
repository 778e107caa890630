with

stores as (
    select * from {{ ref('stores') }}
),

stores_seen as (
    select * from {{ ref('int_stores_seen') }}
),

valid_purchases as (
    select * from {{ ref('int_valid_purchases') }}
),

counted_violations as (
    select * from {{ ref('int_counted_violations') }}
),

all_stores as (
    select store_id from stores
    union
    select store_id from stores_seen
),

last_data_day as (
    select cast(max(paid_at) as date) as last_data_date
    from valid_purchases
),

first_orders as (
    select
        store_id,
        min(paid_at) as first_order_at
    from valid_purchases
    group by store_id
),

violations_by_store as (
    select
        store_id,
        count(*) as counted_violations,
        max(detected_at) as last_counted_violation_at
    from counted_violations
    group by store_id
),

joined as (
    select
        all_stores.store_id,
        stores.store_name,
        first_orders.first_order_at,
        violations_by_store.last_counted_violation_at,
        coalesce(violations_by_store.counted_violations, 0) as counted_violations,
        last_data_day.last_data_date,
        -- The streak starts at the later of the first order and the last counted violation.
        case
            when violations_by_store.last_counted_violation_at is null
                then first_orders.first_order_at
            when first_orders.first_order_at is null
                then violations_by_store.last_counted_violation_at
            when violations_by_store.last_counted_violation_at > first_orders.first_order_at
                then violations_by_store.last_counted_violation_at
            else first_orders.first_order_at
        end as streak_started_at
    from all_stores
    left join stores
        on all_stores.store_id = stores.store_id
    left join first_orders
        on all_stores.store_id = first_orders.store_id
    left join violations_by_store
        on all_stores.store_id = violations_by_store.store_id
    cross join last_data_day
),

with_streak as (
    select
        *,
        {{ dbt.datediff('cast(streak_started_at as date)', 'last_data_date', 'day') }}
            as streak_days
    from joined
),

final as (
    select
        store_id,
        first_order_at,
        last_counted_violation_at,
        cast(counted_violations as {{ dbt.type_bigint() }}) as counted_violations,
        case
            when first_order_at is null then null
            when last_counted_violation_at is null then true
            else last_counted_violation_at < first_order_at
        end as zero_violation_since_first_order,
        -- A violation detected after the last data day leaves 0 days, not a negative count.
        cast(
            case when streak_days < 0 then 0 else streak_days end as {{ dbt.type_bigint() }}
        ) as days_without_violation,
        store_name
    from with_streak
)

select * from final
