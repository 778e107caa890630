with

current_violations as (
    select * from {{ ref('int_violations_current') }}
),

violations_by_month as (
    select
        store_id,
        detected_month,
        count(case when is_counted then 1 end) as violations,
        count(case when is_counted and violation_type = 'false_advertising' then 1 end)
            as false_advertising,
        count(case when is_counted and violation_type = 'counterfeit' then 1 end)
            as counterfeit,
        count(case when is_counted and violation_source = 'user_report' then 1 end)
            as user_reported,
        count(case when is_counted and severity = 'severe' then 1 end) as severe,
        coalesce(sum(case when is_counted then penalty_points end), 0) as penalty_points,
        coalesce(sum(case when is_counted then penalty_amount end), 0) as penalty_amount,
        -- Overturned on appeal (申诉成功): not counted above, but shown.
        count(case when violation_status = 'overturned' then 1 end) as overturned
    from current_violations
    group by store_id, detected_month
),

final as (
    select
        store_id,
        detected_month as month,
        cast(violations as {{ dbt.type_bigint() }}) as violations,
        cast(false_advertising as {{ dbt.type_bigint() }}) as false_advertising,
        cast(counterfeit as {{ dbt.type_bigint() }}) as counterfeit,
        cast(user_reported as {{ dbt.type_bigint() }}) as user_reported,
        cast(severe as {{ dbt.type_bigint() }}) as severe,
        cast(penalty_points as {{ dbt.type_bigint() }}) as penalty_points,
        cast(penalty_amount as decimal(18, 2)) as penalty_amount,
        cast(overturned as {{ dbt.type_bigint() }}) as overturned
    from violations_by_month
)

select * from final
