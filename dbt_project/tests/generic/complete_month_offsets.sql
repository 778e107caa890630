{#- A cohort grid is complete (METRICS.md): every cohort has one row per month offset from 0 up to
    the last data month, none missing, none beyond. The last data month is the latest month the
    grid reaches, so a cohort cut short (a gap, or a spine too short) fails. -#}
{% test complete_month_offsets(model, cohort_month_column, month_offset_column, partition_columns=[]) %}
    with

    grid as (
        select
            {% for column in partition_columns %}{{ column }}, {% endfor %}
            {{ cohort_month_column }} as cohort_month,
            {{ month_offset_column }} as month_offset
        from {{ model }}
    ),

    last_data_month as (
        select
            max(cast({{ dbt.dateadd('month', 'month_offset', 'cohort_month') }} as date))
                as last_data_month
        from grid
    ),

    cohorts as (
        select
            {% for column in partition_columns %}{{ column }}, {% endfor %}
            cohort_month,
            count(*) as offset_rows,
            count(distinct month_offset) as distinct_offsets,
            min(month_offset) as min_offset,
            max(month_offset) as max_offset
        from grid
        group by {% for column in partition_columns %}{{ column }}, {% endfor %}cohort_month
    )

    select cohorts.*
    from cohorts
    cross join last_data_month
    where
        cohorts.min_offset != 0
        or cohorts.offset_rows != cohorts.distinct_offsets
        or cohorts.distinct_offsets != cohorts.max_offset + 1
        or cast({{ dbt.dateadd('month', 'cohorts.max_offset', 'cohorts.cohort_month') }} as date)
        != last_data_month.last_data_month
{% endtest %}
