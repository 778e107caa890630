{#- Incremental by key like int_orders_current (macros/incremental_by_load.sql). The pre-hook
    keeps the order of each refund it replaces: seasonal_gift_list recomputes the buyers of
    the orders whose refunds a build changed (macros/seasonal_gift_changes.sql). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='refund_id',
    pre_hook=[
        "{{ record_changed_keys(ref('stg_refunds')) }}",
        "{{ record_replaced_rows('refund_id, order_id, buyer_id') }}",
    ],
    post_hook=[
        "delete from {{ this }} where load_id is null",
        "{{ record_staged_loads(ref('stg_refunds')) }}",
    ],
) }}

{%- set new_loads = only_new_loads(ref('stg_refunds')) %}

with

-- Read more than once: kept as changed_rows_kept() says (macros/incremental_by_load.sql).
refunds as {{ changed_rows_kept() }} (
    select * from {{ ref('stg_refunds') }}
    {{ where_changed(new_loads) }}
),

current_refunds as (
    {{ current_versions_of('refunds', 'refund_id', new_loads) }}
),

final as (
    select
        refund_id,
        order_id,
        store_id,
        buyer_id,
        refund_type,
        refund_reason,
        refund_amount,
        shipping_subsidy_amount,
        refund_status,
        requested_at,
        resolved_at,
        updated_at,
        load_id,
        source_file_name,
        export_date,
        source_row_number,
        loaded_at,
        refund_status in (
            {%- for status in var('counted_refund_statuses') %}
                '{{ status }}'{{ ',' if not loop.last }}
            {%- endfor %}
        ) as is_counted,
        -- Fractional hours; NULL while the request is open.
        cast(
            {{ dbt.datediff('requested_at', 'resolved_at', 'second') }}
            as double
        ) / 3600 as resolution_hours
    from current_refunds
    {{ keys_without_rows('refunds', new_loads) }}
)

select * from final
