{#- Incremental by session: a build recomputes only the sessions whose purchases, or whose
    buyers' first purchases at the store, it changed (macros/live_session_changes.sql). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    unique_key='live_session_id',
    pre_hook="{{ recompute_changed_keys(
        ref('int_valid_purchase_changes'),
        ref('int_valid_purchases'),
        keys=live_session_changes(ref('int_valid_purchase_changes'), ref('int_valid_purchases')),
    ) }}",
) }}

with

valid_purchases as (
    select * from {{ ref('int_valid_purchases') }}
    {{ where_changed() }}
),

session_purchases as (
    select * from valid_purchases
    where live_session_id is not null
),

buyer_store_months as (
    select * from {{ ref('int_buyer_store_months') }}
),

-- One pass over the purchases per session and store; sessions add these up.
session_store_totals as (
    select
        live_session_id,
        store_id,
        count(*) as orders,
        min(paid_at) as first_paid_at,
        sum(paid_amount) as gmv
    from session_purchases
    group by live_session_id, store_id
),

ranked_session_stores as (
    -- A session belongs to one store; if exports disagree the store with most orders wins
    -- (on a tie, the first store id, so the answer does not change between runs).
    select
        live_session_id,
        store_id,
        row_number() over (
            partition by live_session_id
            order by orders desc, store_id asc
        ) as store_rank
    from session_store_totals
),

session_stores as (
    select
        live_session_id,
        store_id
    from ranked_session_stores
    where store_rank = 1
),

session_buyers as (
    select distinct
        live_session_id,
        buyer_id
    from session_purchases
),

session_buyer_counts as (
    select
        live_session_id,
        count(*) as buyers
    from session_buyers
    group by live_session_id
),

sessions as (
    select
        session_store_totals.live_session_id,
        min(session_store_totals.first_paid_at) as first_paid_at,
        sum(session_store_totals.orders) as orders,
        session_buyer_counts.buyers,
        coalesce(sum(session_store_totals.gmv), 0) as gmv
    from session_store_totals
    inner join session_buyer_counts
        on session_store_totals.live_session_id = session_buyer_counts.live_session_id
    group by session_store_totals.live_session_id, session_buyer_counts.buyers
),

buyer_store_first_purchases as (
    -- One row per buyer and store: when the buyer first bought there.
    select
        store_id,
        buyer_id,
        store_first_paid_at
    from buyer_store_months
    where month_offset = 0
),

returning_session_buyers as (
    -- Returning: a valid purchase at the session's store paid strictly before the session's
    -- first payment, that is, their first purchase there was; compared once per buyer.
    select
        session_buyers.live_session_id,
        count(*) as returning_buyers
    from session_buyers
    inner join sessions
        on session_buyers.live_session_id = sessions.live_session_id
    inner join session_stores
        on session_buyers.live_session_id = session_stores.live_session_id
    inner join buyer_store_first_purchases
        on
            session_stores.store_id = buyer_store_first_purchases.store_id
            and session_buyers.buyer_id = buyer_store_first_purchases.buyer_id
    where buyer_store_first_purchases.store_first_paid_at < sessions.first_paid_at
    group by session_buyers.live_session_id
),

final as (
    select
        sessions.live_session_id,
        session_stores.store_id,
        cast(sessions.first_paid_at as date) as session_date,
        sessions.first_paid_at,
        cast(sessions.orders as {{ dbt.type_bigint() }}) as orders,
        cast(sessions.buyers as {{ dbt.type_bigint() }}) as buyers,
        cast(sessions.gmv as decimal(18, 2)) as gmv,
        cast(
            coalesce(returning_session_buyers.returning_buyers, 0) as {{ dbt.type_bigint() }}
        ) as returning_buyers,
        cast(coalesce(returning_session_buyers.returning_buyers, 0) as double)
        / sessions.buyers as session_repurchase_rate
    from sessions
    inner join session_stores
        on sessions.live_session_id = session_stores.live_session_id
    left join returning_session_buyers
        on sessions.live_session_id = returning_session_buyers.live_session_id
)

select * from final
