with

orphan_refunds as (
    select * from {{ ref('quality_orphan_refunds') }}
),

unknown_stores as (
    select * from {{ ref('quality_unknown_stores') }}
),

counts as (
    select
        'orphan_refunds' as kind,
        count(*) as issue_count
    from orphan_refunds
    union all
    select
        'orphan_counted_refunds' as kind,
        count(case when is_counted then 1 end) as issue_count
    from orphan_refunds
    union all
    select
        'unknown_stores' as kind,
        count(distinct store_id) as issue_count
    from unknown_stores
    union all
    select
        'unknown_store_records' as kind,
        coalesce(sum(records), 0) as issue_count
    from unknown_stores
),

final as (
    select
        cast(kind as {{ dbt.type_string() }}) as kind,
        cast(issue_count as {{ dbt.type_bigint() }}) as count
    from counts
)

select * from final
