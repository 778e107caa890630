{#- Incremental builds by load (issue 6): a day of new exports costs about the day.

    Staging tables (stg_orders, stg_refunds) gain the rows of loads published since the last
    build and lose the rows of loads no longer published. The current-version tables
    (int_orders_current, int_refunds_current) recompute, with delete+insert by key, only the
    keys a new staged load has a version of, or whose current version came from a load no
    longer staged; a `<model>__state` table keeps the loads each build saw. When the dbt
    project or the pseudonym key changes, `trustwh run` builds with --full-refresh (see
    defs/dbt/assets.py), so no table mixes two versions of the logic.
    tests/test_end_to_end.py: runs on a growing landing build what one run on all of it does. -#}

{% macro drop_unpublished_loads() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where load_id not in (
            select ledger.load_id from {{ source('quality', 'load_ledger') }} as ledger
            where ledger.status = 'published'
        )
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}


{% macro state_relation() -%}
    {{ return(this.incorporate(path={'identifier': this.identifier ~ '__state'})) }}
{%- endmacro %}


{% macro changed_keys(staged, key) -%}
    {%- set state = state_relation() -%}
    {%- if adapter.get_relation(state.database, state.schema, state.identifier) is none %}
        -- No state: every key is recomputed.
        select {{ key }} from {{ staged }}
        union
        select {{ key }} from {{ this }}
    {%- else %}
        select staged.{{ key }} from {{ staged }} as staged
        where staged.load_id not in (select state.load_id from {{ state }} as state)
        union
        select previous.{{ key }} from {{ this }} as previous
        where previous.load_id not in (select distinct staged.load_id from {{ staged }} as staged)
    {%- endif %}
{%- endmacro %}


{% macro record_staged_loads(staged) -%}
    create or replace table {{ state_relation() }} as
    select distinct load_id from {{ staged }}
{%- endmacro %}
