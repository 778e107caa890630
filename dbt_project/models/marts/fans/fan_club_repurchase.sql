with

buyer_store_months as (
    select * from {{ ref('int_buyer_store_months') }}
),

-- A buyer's band in a month is the level they carried on their first valid purchase of the
-- month at the store (`month_fan_club_level`): the level they came into the month with,
-- before any repeat purchase could raise it.
with_band as (
    select
        store_id,
        buyer_id,
        purchase_month,
        cohort_month,
        orders,
        gmv,
        case
            when month_fan_club_level is null then 'unknown'
            when month_fan_club_level = 0 then '0'
            when month_fan_club_level <= 4 then '1-4'
            when month_fan_club_level <= 9 then '5-9'
            when month_fan_club_level <= 14 then '10-14'
            else '15-20'
        end as fan_club_level_band,
        case
            when month_fan_club_level is null then null
            when month_fan_club_level = 0 then 0
            when month_fan_club_level <= 4 then 1
            when month_fan_club_level <= 9 then 5
            when month_fan_club_level <= 14 then 10
            else 15
        end as band_min_level
    from buyer_store_months
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
        sum(case when cohort_month < purchase_month then 1 else 0 end)
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
