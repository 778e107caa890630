{#- A table, not a view: two platform marts and the tests read it; as a view each of them
    would re-aggregate every buyer, store and month. Incremental by buyer like
    int_buyer_store_months (macros/incremental_by_load.sql). -#}

{#- Its not-nulls are constraints of an enforced contract (_int_repurchase.yml), checked as
    rows are written: a not-null test would read every row of the table on every build. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    contract={'enforced': true},
    unique_key='buyer_id',
    pre_hook="{{ recompute_changed_keys(
        ref('int_valid_purchase_changes'), ref('int_valid_purchases')
    ) }}",
) }}

with

buyer_store_months as (
    select * from {{ ref('int_buyer_store_months') }}
    {{ where_changed() }}
),

buyer_months as (
    select
        buyer_id,
        purchase_month,
        sum(orders) as orders,
        sum(gmv) as gmv,
        {{ dbt.bool_or('has_trust_card_purchase') }} as has_trust_card_purchase
    from buyer_store_months
    group by buyer_id, purchase_month
),

-- The platform cohort: the month of the buyer's first valid purchase at any store.
buyer_cohorts as (
    select
        buyer_id,
        min(purchase_month) as cohort_month
    from buyer_months
    group by buyer_id
),

with_cohort_month as (
    select
        buyer_months.*,
        buyer_cohorts.cohort_month
    from buyer_months
    inner join buyer_cohorts on buyer_months.buyer_id = buyer_cohorts.buyer_id
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
        buyer_id,
        purchase_month,
        cohort_month,
        cast(month_offset as {{ dbt.type_int() }}) as month_offset,
        cast(orders as {{ dbt.type_bigint() }}) as orders,
        cast(gmv as decimal(18, 2)) as gmv,
        has_trust_card_purchase
    from with_month_offset
)

select * from final
