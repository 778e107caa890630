{#- Incremental by store and buyer: a build recomputes every season of the buyers at a store
    whose purchases, or refunds, or whose store's latest fans snapshot, it changed
    (macros/seasonal_gift_changes.sql). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    unique_key=['store_id', 'buyer_id'],
    pre_hook="{{ recompute_changed_keys(
        ref('int_valid_purchase_changes'),
        ref('int_valid_purchases'),
        keys=seasonal_gift_changes(ref('int_valid_purchase_changes'), ref('int_valid_purchases')),
    ) }}",
) }}

with

valid_purchases as (
    select * from {{ ref('int_valid_purchases') }}
    {{ where_changed() }}
),

counted_refunds as (
    select * from {{ ref('int_counted_refunds') }}
    {%- if is_incremental() %}
    where order_id in (select valid_purchases.order_id from valid_purchases)
    {%- endif %}
),

latest_fans as (
    select * from {{ ref('int_fans_latest_snapshot') }}
    where is_following
),

refunds_by_order as (
    select
        order_id,
        coalesce(sum(refund_amount), 0) as refund_amount
    from counted_refunds
    group by order_id
),

-- Spring Mar–May, summer Jun–Aug, autumn Sep–Nov, winter Dec–Feb; January and February
-- belong to the winter that began in the December of the year before.
purchases_in_seasons as (
    select
        valid_purchases.store_id,
        valid_purchases.buyer_id,
        valid_purchases.purchase_month,
        coalesce(valid_purchases.paid_amount, 0) as paid_amount,
        coalesce(refunds_by_order.refund_amount, 0) as refund_amount,
        extract(year from valid_purchases.purchase_month)
        - case when extract(month from valid_purchases.purchase_month) <= 2 then 1 else 0 end
            as season_year,
        case
            when extract(month from valid_purchases.purchase_month) between 3 and 5 then 'spring'
            when extract(month from valid_purchases.purchase_month) between 6 and 8 then 'summer'
            when extract(month from valid_purchases.purchase_month) between 9 and 11 then 'autumn'
            else 'winter'
        end as season
    from valid_purchases
    left join refunds_by_order
        on valid_purchases.order_id = refunds_by_order.order_id
),

spend_by_season as (
    select
        store_id,
        season_year,
        season,
        buyer_id,
        count(*) as orders,
        sum(paid_amount) as gross_spend,
        sum(refund_amount) as refund_amount,
        sum(paid_amount) - sum(refund_amount) as net_spend
    from purchases_in_seasons
    group by store_id, season_year, season, buyer_id
),

qualifying as (
    select
        spend_by_season.*,
        latest_fans.fan_club_level,
        latest_fans.snapshot_date
    from spend_by_season
    inner join latest_fans
        on
            spend_by_season.store_id = latest_fans.store_id
            and spend_by_season.buyer_id = latest_fans.fan_id
    where spend_by_season.net_spend >= {{ var('seasonal_gift_min_net_spend', 500) }}
),

final as (
    select
        store_id,
        cast(season_year as {{ dbt.type_int() }}) as season_year,
        cast(season as {{ dbt.type_string() }}) as season,
        buyer_id,
        cast(net_spend as decimal(18, 2)) as net_spend,
        cast(orders as {{ dbt.type_bigint() }}) as orders,
        cast(gross_spend as decimal(18, 2)) as gross_spend,
        cast(refund_amount as decimal(18, 2)) as refund_amount,
        cast(fan_club_level as {{ dbt.type_int() }}) as fan_club_level,
        snapshot_date as fans_snapshot_date
    from qualifying
)

select * from final
