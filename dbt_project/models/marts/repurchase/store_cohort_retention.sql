{#- Month offsets are generated up to this bound (100 years); the complete_month_offsets test
    fails should the data ever span more. -#}
{%- set max_month_offset = var('cohort_max_month_offset', 1200) -%}

with

buyer_store_months as (
    select * from {{ ref('int_buyer_store_months') }}
),

month_offsets as (
    select cast(generated_number - 1 as {{ dbt.type_int() }}) as month_offset
    from ({{ dbt.generate_series(max_month_offset + 1) }}) as series
),

last_data_month as (
    select max(purchase_month) as last_data_month
    from buyer_store_months
),

cohorts as (
    select
        store_id,
        cohort_month,
        count(*) as cohort_buyers
    from buyer_store_months
    where month_offset = 0
    group by store_id, cohort_month
),

active_buyers as (
    select
        store_id,
        cohort_month,
        month_offset,
        count(*) as active_buyers
    from buyer_store_months
    group by store_id, cohort_month, month_offset
),

cohort_spans as (
    select
        cohorts.*,
        {{ dbt.datediff('cohorts.cohort_month', 'last_data_month.last_data_month', 'month') }}
            as last_month_offset
    from cohorts
    cross join last_data_month
),

cohort_grid as (
    -- Every offset up to the last data month, also those where no buyer came back.
    select
        cohort_spans.store_id,
        cohort_spans.cohort_month,
        month_offsets.month_offset,
        cohort_spans.cohort_buyers
    from cohort_spans
    inner join month_offsets
        on cohort_spans.last_month_offset >= month_offsets.month_offset
),

final as (
    select
        cohort_grid.store_id,
        cohort_grid.cohort_month,
        cohort_grid.month_offset,
        cast(cohort_grid.cohort_buyers as {{ dbt.type_bigint() }}) as cohort_buyers,
        cast(coalesce(active_buyers.active_buyers, 0) as {{ dbt.type_bigint() }}) as active_buyers,
        cast(coalesce(active_buyers.active_buyers, 0) as double)
        / cohort_grid.cohort_buyers as retention_rate
    from cohort_grid
    left join active_buyers
        on
            cohort_grid.store_id = active_buyers.store_id
            and cohort_grid.cohort_month = active_buyers.cohort_month
            and cohort_grid.month_offset = active_buyers.month_offset
)

select * from final
