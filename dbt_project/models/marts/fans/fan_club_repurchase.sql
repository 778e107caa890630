with

valid_purchases as (
    select * from {{ ref('int_valid_purchases') }}
),

-- The level the buyer carried on their first valid purchase of the month at the store: the
-- level they came into the month with, before any repeat purchase could raise it.
ranked_purchases as (
    select
        store_id,
        buyer_id,
        purchase_month,
        paid_amount,
        fan_club_level,
        row_number() over (
            partition by store_id, buyer_id, purchase_month
            order by paid_at, order_id
        ) as purchase_number
    from valid_purchases
),

buyer_months as (
    select
        store_id,
        buyer_id,
        purchase_month,
        count(*) as orders,
        coalesce(sum(paid_amount), 0) as gmv,
        max(case when purchase_number = 1 then fan_club_level end) as fan_club_level
    from ranked_purchases
    group by store_id, buyer_id, purchase_month
),

with_band as (
    select
        *,
        min(purchase_month) over (partition by store_id, buyer_id) as first_purchase_month,
        case
            when fan_club_level is null then 'unknown'
            when fan_club_level = 0 then '0'
            when fan_club_level <= 4 then '1-4'
            when fan_club_level <= 9 then '5-9'
            when fan_club_level <= 14 then '10-14'
            else '15-20'
        end as fan_club_level_band,
        case
            when fan_club_level is null then null
            when fan_club_level = 0 then 0
            when fan_club_level <= 4 then 1
            when fan_club_level <= 9 then 5
            when fan_club_level <= 14 then 10
            else 15
        end as band_min_level
    from buyer_months
),

band_months as (
    select
        store_id,
        purchase_month,
        fan_club_level_band,
        band_min_level,
        count(*) as buyers,
        sum(orders) as orders,
        sum(gmv) as gmv,
        sum(case when orders >= 2 then 1 else 0 end) as repeat_buyers,
        sum(case when first_purchase_month < purchase_month then 1 else 0 end)
            as returning_buyers
    from with_band
    group by store_id, purchase_month, fan_club_level_band, band_min_level
),

final as (
    select
        store_id,
        purchase_month as month,
        cast(fan_club_level_band as {{ dbt.type_string() }}) as fan_club_level_band,
        cast(band_min_level as {{ dbt.type_int() }}) as band_min_level,
        cast(buyers as {{ dbt.type_bigint() }}) as buyers,
        cast(orders as {{ dbt.type_bigint() }}) as orders,
        cast(gmv as decimal(18, 2)) as gmv,
        cast(repeat_buyers as {{ dbt.type_bigint() }}) as repeat_buyers,
        cast(repeat_buyers as double) / buyers as repeat_purchase_rate,
        cast(returning_buyers as {{ dbt.type_bigint() }}) as returning_buyers,
        cast(returning_buyers as double) / buyers as returning_buyer_rate
    from band_months
)

select * from final
