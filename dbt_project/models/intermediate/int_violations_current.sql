with

-- Read more than once: not materialized, or DuckDB would first copy every row (see README).
violations as not materialized (
    select * from {{ ref('stg_violations') }}
),

current_violations as (
    {{ current_version('violations', 'violation_id') }}
),

final as (
    select
        violation_id,
        store_id,
        anchor_id,
        live_session_id,
        violation_type,
        violation_source,
        severity,
        penalty_points,
        penalty_amount,
        violation_status,
        detected_at,
        updated_at,
        load_id,
        source_file_name,
        export_date,
        source_row_number,
        loaded_at,
        -- Counted unless overturned on appeal (申诉成功); the status is never NULL (tested).
        violation_status not in (
            {%- for status in var('uncounted_violation_statuses', ['overturned']) %}
                '{{ status }}'{{ ',' if not loop.last }}
            {%- endfor %}
        ) as is_counted,
        cast({{ dbt.date_trunc('month', 'detected_at') }} as date) as detected_month
    from current_violations
)

select * from final
