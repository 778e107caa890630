with

current_violations as (
    select * from {{ ref('int_violations_current') }}
    where is_counted
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
        detected_month
    from current_violations
)

select * from final
