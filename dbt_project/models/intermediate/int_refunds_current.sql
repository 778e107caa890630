{#- Incremental like int_orders_current (see there): a build recomputes the current version of
    only the refunds a load published since has a version of, or whose current version came
    from a load no longer published; a refund left with no published version gets a row of
    only its refund_id, dropped by the post-hook. The fingerprint adds what the derived
    columns depend on (the counted statuses, dbt.datediff). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='refund_id',
    on_schema_change='sync_all_columns',
    pre_hook="set variable int_refunds_current_fingerprint = '{{ local_md5(model.raw_code ~ current_version('scoped_refunds', 'refund_id') ~ (graph.nodes.values() | selectattr('name', 'equalto', 'stg_refunds') | map(attribute='raw_code') | join) ~ enum_code('field', 'label') ~ (graph.nodes.values() | selectattr('resource_type', 'equalto', 'seed') | map(attribute='checksum.checksum') | sort | join(',')) ~ (var('counted_refund_statuses') | join(',')) ~ dbt.datediff('requested_at', 'resolved_at', 'second')) }}'",
    post_hook=[
        "delete from {{ this }} where load_id is null",
        "create or replace table {{ this.incorporate(path={'identifier': this.identifier ~ '__state'}) }} as select distinct load_id, getvariable('int_refunds_current_fingerprint') as fingerprint from {{ ref('stg_refunds') }}",
    ],
) }}

{%- set incremental = is_incremental() -%}
{%- if incremental -%}
    {%- set state = this.incorporate(path={'identifier': this.identifier ~ '__state'}) -%}
    {%- set has_state = adapter.get_relation(
        state.database, state.schema, state.identifier) is not none -%}
{%- endif -%}

with

refunds as (
    select * from {{ ref('stg_refunds') }}
),

{%- if incremental %}

previous_state as (
    {%- if not has_state %}
    select cast(null as varchar) as load_id where false
    {%- else %}
    select load_id from {{ state }}
    where fingerprint = getvariable('int_refunds_current_fingerprint')
    {%- endif %}
),

-- No state of this fingerprint: nothing is known, everything is recomputed.
is_known as (
    select count(*) > 0 as known from previous_state
),

-- Narrow reads of the view, one CTE each: a CTE read twice is materialized whole, and
-- only `refunds` pays for the view's computed columns.
published_loads as (
    select distinct load_id from {{ ref('stg_refunds') }}
),

refund_loads as (
    select refund_id, load_id from {{ ref('stg_refunds') }}
),

new_loads as (
    select load_id from published_loads
    except
    select load_id from previous_state
),

changed_refunds as (
    select refund_loads.refund_id from refund_loads
    where refund_loads.load_id in (select new_loads.load_id from new_loads)
    union
    select previous.refund_id from {{ this }} as previous
    where previous.load_id not in (select published_loads.load_id from published_loads)
),

scoped_refunds as (
    select * from refunds
    where
        not (select is_known.known from is_known)
        or refunds.refund_id in (select changed_refunds.refund_id from changed_refunds)
),

{%- else %}

scoped_refunds as (
    select * from refunds
),

{%- endif %}

current_refunds as (
    {{ current_version('scoped_refunds', 'refund_id') }}
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
    {%- if incremental %}
    -- Refunds left with no published version: only the key, removed by the post-hook.
    union all by name
    select previous.refund_id from {{ this }} as previous
    where
        (
            not (select is_known.known from is_known)
            or previous.refund_id in (select changed_refunds.refund_id from changed_refunds)
        )
        and previous.refund_id not in (select current_refunds.refund_id from current_refunds)
    {%- endif %}
)

select * from final
