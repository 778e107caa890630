{#- A table, not a view: the five repurchase marts, store_refunds_monthly, int_buyer_months and
    the tests read it; as a view each of them would re-aggregate every valid purchase (10M
    orders). -#}

{#- Incremental by buyer and store (macros/incremental_by_load.sql): a build recomputes the
    months of the buyers at a store whose valid purchases it changed, before and after
    (int_valid_purchase_changes). -#}
{#- Its not-nulls are constraints of an enforced contract (_int_repurchase.yml), checked as
    rows are written: a not-null test would read every row of the table on every build. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    contract={'enforced': true},
    unique_key=['store_id', 'buyer_id'],
    pre_hook="{{ recompute_changed_keys(
        ref('int_valid_purchase_changes'), ref('int_valid_purchases')
    ) }}",
) }}

with

valid_purchases as (
    select * from {{ ref('int_valid_purchases') }}
    {{ where_changed() }}
),

buyer_store_months as (
    select
        store_id,
        buyer_id,
        purchase_month,
        min(paid_at) as month_first_paid_at,
        count(*) as orders,
        -- An order exported without paid_amount adds nothing to GMV.
        coalesce(sum(paid_amount), 0) as gmv,
        {{ dbt.bool_or('coalesce(is_trust_card, false)') }} as has_trust_card_purchase,
        -- The level on the month's first purchase, even when missing (arg_min would skip it).
        arg_min_null(fan_club_level, (paid_at, order_id)) as month_fan_club_level
    from valid_purchases
    group by store_id, buyer_id, purchase_month
),

-- A buyer's cohort month at a store is the month of their first valid purchase there. (A
-- group by joined back costs less than a window partitioned by buyer and store: no sort.)
buyer_store_cohorts as (
    select
        store_id,
        buyer_id,
        min(purchase_month) as cohort_month,
        min(month_first_paid_at) as store_first_paid_at
    from buyer_store_months
    group by store_id, buyer_id
),

with_cohort_month as (
    select
        buyer_store_months.*,
        buyer_store_cohorts.cohort_month,
        buyer_store_cohorts.store_first_paid_at
    from buyer_store_months
    inner join buyer_store_cohorts
        on
            buyer_store_months.store_id = buyer_store_cohorts.store_id
            and buyer_store_months.buyer_id = buyer_store_cohorts.buyer_id
),

with_month_offset as (
    select
        *,
        {{ dbt.datediff('cohort_month', 'purchase_month', 'month') }}
            as month_offset
    from with_cohort_month
),

final as (
    select
        store_id,
        buyer_id,
        purchase_month,
        cohort_month,
        cast(month_offset as {{ dbt.type_int() }}) as month_offset,
        store_first_paid_at,
        cast(orders as {{ dbt.type_bigint() }}) as orders,
        cast(gmv as decimal(18, 2)) as gmv,
        has_trust_card_purchase,
        cast(month_fan_club_level as {{ dbt.type_int() }}) as month_fan_club_level
    from with_month_offset
)

select * from final
