"""The sample world as DuckDB tables: sessions, orders, refunds, fans and violations.

Every random choice is `rnd(key, salt)`, a hash of the row's key, a salt and the seed, so a
run is the same whatever the thread scheduling, and nothing loops over rows in Python.
Times are kept as whole seconds since the epoch (China local time, no zone) and enum values
as 1-based positions in the contract's label tuples: narrow rows keep 10 M orders fast.

How buyers come back: every order is either a new buyer's or a returning buyer's. A new
buyer's valid first order joins its store's "cohort block" for that month, ordered so that
loyal buyers sit at the top. A returning order picks an earlier block (recent ones more
often) and, within it, a buyer biased towards the top. So returning buyers really bought
before, loyal buyers buy often and climb the fan-club levels, and the returning share of a
store's month is a knob (`Profile.returning_share`, ramping up over the first months).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb

from dagster_project.defs.ingest.contract import ENTITIES
from dagster_project.defs.ingest.tables import insert_rows

from .profiles import (
    ADDRESS_NOTES,
    COMMUNITIES,
    PHONE_PREFIXES,
    REFUND_REASONS,
    REGIONS,
    STREETS,
    Store,
    item_id,
)

BASE_ORDERS = 50_000
CROSS_SHOP_RATE = 0.05  # a new buyer of a store who already bought at another store
RAMP_MONTHS = 8  # months until the returning share reaches its plateau
ADDRESS_BOOK = 1 << 13  # distinct receiver addresses

# Enum labels come from the contract; the tables hold their 1-based positions.
ORDER_STATUS = ENTITIES["orders"].column("order_status").values
UNPAID, PAID, SHIPPED, COMPLETED, CLOSED = range(1, 6)
CHANNEL = ENTITIES["orders"].column("channel").values
LIVE, SHORT_VIDEO, SHELF = range(1, 4)
REFUND_TYPE = ENTITIES["refunds"].column("refund_type").values
REFUND_ONLY, RETURN_AND_REFUND, REFUND_WITHOUT_RETURN, EXCHANGE = range(1, 5)
REFUND_STATUS = ENTITIES["refunds"].column("refund_status").values
PENDING, APPROVED, REJECTED, DONE, WITHDRAWN = range(1, 6)
VIOLATION_TYPE = ENTITIES["violations"].column("violation_type").values
FALSE_AD, COUNTERFEIT, PRICE_FRAUD, OFF_PLATFORM, UNCIVIL, OTHER = range(1, 7)
SOURCE = ENTITIES["violations"].column("source").values
PATROL, USER_REPORT, BRAND_COMPLAINT = range(1, 4)
SEVERITY = ENTITIES["violations"].column("severity").values
MINOR, MODERATE, SEVERE = range(1, 4)
VIOLATION_STATUS = ENTITIES["violations"].column("violation_status").values
CONFIRMED, UNDER_APPEAL, OVERTURNED = range(1, 4)

# Order classes: never paid, closed unpaid, closed after payment, a valid purchase.
CLS_PENDING, CLS_TIMEOUT, CLS_CANCEL, CLS_VALID = range(4)

DAY = 86_400


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def epoch(day: date) -> int:
    """Seconds since 1970-01-01 of a local date's midnight (times carry no zone)."""
    return int((datetime(day.year, day.month, day.day) - datetime(1970, 1, 1)).total_seconds())


@dataclass(frozen=True)
class Plan:
    seed: int
    months: tuple[date, ...]  # first day of each month of the window
    scale: float
    stores: tuple[Store, ...]

    @property
    def n_orders(self) -> int:
        return max(1, round(BASE_ORDERS * self.scale))

    @property
    def exports(self) -> tuple[date, ...]:
        """Export date of each month: the first day of the next month."""
        return tuple(add_months(month, 1) for month in self.months)

    @property
    def last_export(self) -> date:
        return self.exports[-1]


def q(value: object) -> str:
    """A SQL literal."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return f"date '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(q(item) for item in value) + "]"
    return repr(value)


def create_enum(con: duckdb.DuckDBPyConnection, name: str, values: list[str]) -> None:
    """An ENUM of the distinct values: repeated text costs 1-2 bytes a row, not a string."""
    con.execute(f"create type {name} as enum ({', '.join(q(v) for v in dict.fromkeys(values))})")


def _month_weight(plan: Plan, store: Store, k: int) -> float:
    month = plan.months[k]
    weight = 1.0 + 0.07 * k  # live commerce kept growing through 2021
    weight *= {2: 0.8, 6: 1.15, 11: 1.35}.get(month.month, 1.0)  # Spring Festival, 618, 双11
    growth = store.profile.growth_after_refund_without_return
    started = store.refund_without_return
    if growth and started and month >= started.replace(day=1):
        offset = (month.year - started.year) * 12 + month.month - started.month
        weight *= growth[min(offset, len(growth) - 1)]
    return weight


def _returning_share(plan: Plan, store: Store, k: int) -> float:
    if k == 0:
        return 0.0
    ramp = min(1.0, 0.5 + 0.5 * (k - 1) / RAMP_MONTHS)
    share = store.profile.returning_share * ramp
    if store.trust_joined is not None:
        share += 0.04 if plan.months[k] >= store.trust_joined else -0.04
    return min(0.97, max(0.0, share))


def _epoch_or_null(day: date | None) -> int | None:
    return None if day is None else epoch(day)


def create_reference(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    """Macros, stores, items and store-months with their order counts."""
    con.execute(
        f"create macro rnd(x, salt) as "
        f"(hash(x, salt, {int(plan.seed)}) >> 11)::double / 9007199254740992.0"
    )
    con.execute("create macro ts(x) as make_timestamp((x)::bigint * 1000000)")

    create_enum(con, "store_id_t", [st.store_id for st in plan.stores])
    create_enum(con, "store_name_t", [st.store_name for st in plan.stores])
    create_enum(con, "anchor_t", [a for st in plan.stores for a in st.profile.anchors])
    con.execute(
        """
        create table store (
            s integer, store_id store_id_t, store_name store_name_t, category varchar,
            trust_joined_at bigint, rwr_at bigint, subsidy_at bigint, civility_at bigint,
            live_share double, video_share double, live_day_rate double, live_start integer,
            live_minutes integer, refund_rate double, rwr_share double, only_share double,
            return_share double, subsidy integer[], multi_buy double, club_threshold double,
            club_rate double, follow_rate double, non_buyer_fans double, anchors varchar[],
            short_order_ids boolean, main_anchor anchor_t, punctual boolean,
            late_refund_share double, allergy_share double
        )
        """
    )
    rows = []
    for st in plan.stores:
        p = st.profile
        hours, minutes = map(int, p.live_start.split(":"))
        rows.append(
            (
                st.num,
                st.store_id,
                st.store_name,
                st.category,
                _epoch_or_null(st.trust_joined),
                _epoch_or_null(st.refund_without_return),
                _epoch_or_null(st.shipping_subsidy),
                _epoch_or_null(st.civility_signed),
                p.live_share,
                p.video_share,
                p.live_day_rate,
                hours * 3600 + minutes * 60,
                p.live_minutes,
                p.refund_rate,
                p.refund_mix[REFUND_WITHOUT_RETURN - 1],
                p.refund_mix[REFUND_ONLY - 1],
                p.refund_mix[RETURN_AND_REFUND - 1],
                list(p.subsidy),
                p.multi_buy,
                p.club_threshold,
                p.club_rate,
                p.follow_rate,
                p.non_buyer_fans,
                list(p.anchors),
                p.short_order_ids,
                p.anchors[0],
                p.punctual,
                p.late_refund_share,
                p.allergy_share,
            )
        )
    insert_rows(con, "insert into store", rows)

    weights = {
        (st.num, k): st.profile.order_share * _month_weight(plan, st, k)
        for st in plan.stores
        for k in range(len(plan.months))
    }
    total = sum(weights.values())
    rows, start = [], 0
    for (s, k), weight in sorted(weights.items()):
        n = round(plan.n_orders * weight / total)
        store = next(st for st in plan.stores if st.num == s)
        month = plan.months[k]
        rows.append(
            (
                s,
                k,
                epoch(month),
                epoch(add_months(month, 1)),
                n,
                start,
                _returning_share(plan, store, k),
            )
        )
        start += n
    con.execute(
        "create table sm0 (s integer, k integer, m0 bigint, m1 bigint, n_orders bigint, "
        "start bigint, p_ret double)"
    )
    insert_rows(con, "insert into sm0", rows)

    # Items, and 100 slots per store and tier drawn by weight; the upper tier (fan-club
    # level >= 5) may also buy the fan-only new releases.
    items, slots = [], []
    for st in plan.stores:
        for index, item in enumerate(st.profile.items):
            items.append(
                (st.num, index, item_id(st, index), item.name, item.category or st.category)
            )
        for tier in (0, 1):
            offered = [
                (index, item)
                for index, item in enumerate(st.profile.items)
                if tier or not item.fan_only
            ]
            total_weight = sum(item.weight for _, item in offered)
            cumulative, position = 0.0, 0
            for index, item in offered:
                cumulative += item.weight
                upto = round(100 * cumulative / total_weight)
                slots.extend(
                    ((st.num * 2 + tier) * 100 + slot, index, item.price)
                    for slot in range(position, upto)
                )
                position = upto
    create_enum(con, "item_id_t", [row[2] for row in items])
    create_enum(con, "item_name_t", [row[3] for row in items])
    create_enum(con, "category_t", [row[4] for row in items])
    con.execute(
        "create table item (s integer, item_no integer, item_id item_id_t, "
        "item_name item_name_t, category category_t)"
    )
    insert_rows(con, "insert into item", items)
    con.execute("create table item_slot (slot_key integer, item_no integer, price decimal(18,2))")
    insert_rows(con, "insert into item_slot", slots)
    create_address_book(con, plan.seed)


def create_address_book(con: duckdb.DuckDBPyConnection, seed: int) -> None:
    """Realistic receiver addresses, a few with ASCII commas and quotes."""

    def pick(values: tuple[str, ...], salt: int) -> str:
        return f"{q(list(values))}[(1 + hash(n, {seed}, {salt}) % {len(values)})::bigint]"

    con.execute(
        f"""
        create temp table address_text as
        select
            n,
            concat(
                {pick(REGIONS, 82)}, {pick(STREETS, 83)}, 1 + hash(n, {seed}, 84) % 399, '号',
                {pick(COMMUNITIES, 85)}, 1 + hash(n, {seed}, 86) % 30, '栋',
                1 + hash(n, {seed}, 87) % 3, '单元', 1 + hash(n, {seed}, 88) % 28,
                lpad((1 + hash(n, {seed}, 89) % 4)::varchar, 2, '0'), '室',
                {pick(ADDRESS_NOTES, 90)}
            ) as address
        from range({ADDRESS_BOOK}) as r(n)
        """
    )
    con.execute(
        "create type address_t as enum (select distinct address from address_text order by all)"
    )
    con.execute(
        "create table address_book as select n, address::address_t as address from address_text"
    )


def build_sessions(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    """Live sessions at each store's hours; a session never runs past midnight."""
    first = epoch(plan.months[0])
    days = (plan.last_export - plan.months[0]).days
    con.execute(
        f"""
        create temp table session_text as
        with day as (
            select
                st.s,
                {first} + d * {DAY} as day_at,
                st.s * 100000 + d as key,
                st.live_start,
                st.live_minutes,
                st.live_day_rate,
                st.punctual,
                st.anchors
            from store as st, range({days}) as r(d)
        ),
        live as (
            select
                *,
                day_at + live_start
                    + case when punctual then 0 else floor(rnd(key, 1) * 900)::bigint end
                    as start_at,
                datediff('month', ts({first}), ts(day_at))::integer as k
            from day
            where rnd(key, 2) < live_day_rate or day(ts(day_at)) = 15
        ),
        numbered as (
            select
                *,
                (row_number() over (partition by s, k order by day_at) - 1)::integer as idx
            from live
        )
        select
            (s * 1000 + k) * 100 + idx as session_key,
            s,
            k,
            '7' || strftime(ts(day_at), '%y%m%d') || lpad(s::varchar, 2, '0')
                || lpad((hash(key, {int(plan.seed)}) % 10000000000)::varchar, 10, '0')
                as session_id,
            start_at,
            least(
                live_minutes * 60 * (0.9 + 0.2 * rnd(key, 3)),
                day_at + {DAY} - 60 - start_at
            )::bigint as duration,
            case when rnd(key, 4) < 0.8 or len(anchors) = 1 then anchors[1]
                else anchors[2 + floor(rnd(key, 5) * (len(anchors) - 1))::integer] end
                as anchor_id
        from numbered
        """
    )
    con.execute("create type session_t as enum (select session_id from session_text order by all)")
    con.execute(
        """
        create table session as
        select * replace (session_id::session_t as session_id, anchor_id::anchor_t as anchor_id)
        from session_text
        """
    )
    con.execute(
        """
        create table sm as
        select
            sm0.*,
            coalesce(n.n_sessions, 0) as n_sessions,
            st.live_share,
            st.video_share,
            st.refund_rate,
            st.rwr_at,
            st.rwr_share,
            st.only_share,
            st.return_share
        from sm0
        inner join store as st using (s)
        left join (select s, k, count(*) as n_sessions from session group by s, k) as n
            using (s, k)
        order by s, k
        """
    )


def build_orders(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    """Orders with their whole timeline (paid, shipped, completed, closed) and their buyers."""
    seed = int(plan.seed)
    con.execute(
        f"""
        create temp table o1 as
        with base as (
            select
                s,
                k,
                m0,
                m1,
                p_ret,
                n_sessions,
                live_share,
                video_share,
                refund_rate,
                rwr_at,
                rwr_share,
                only_share,
                return_share,
                unnest(range(start, start + n_orders)) as i
            from sm
        ),
        drawn as (
            select
                *,
                case when n_sessions > 0 and rnd(i, 1) < live_share then {LIVE}
                    when rnd(i, 1) < live_share + video_share then {SHORT_VIDEO}
                    else {SHELF} end as chan,
                case when rnd(i, 5) < 0.005 then {CLS_PENDING}
                    when rnd(i, 5) < 0.015 then {CLS_TIMEOUT}
                    when rnd(i, 5) < 0.035 then {CLS_CANCEL} else {CLS_VALID} end as cls
            from base
        ),
        timed as (
            select
                d.* exclude (m0, n_sessions, live_share, video_share),
                se.session_key,
                case when d.chan = {LIVE}
                    then se.start_at + floor(se.duration * pow(rnd(d.i, 3), 1.3))::bigint
                    else d.m0 + floor(rnd(d.i, 3) * (d.m1 - d.m0) / {DAY})::bigint * {DAY}
                        + 8 * 3600 + floor(rnd(d.i, 4) * 16 * 3600)::bigint
                end as created_at
            from drawn as d
            left join session as se
                on se.session_key = case when d.chan = {LIVE}
                    then (d.s * 1000 + d.k) * 100 + floor(rnd(d.i, 2) * d.n_sessions)::integer
                    end
        ),
        paid as (
            select
                *,
                case when cls >= {CLS_CANCEL}
                    then created_at + 5 + floor(rnd(i, 6) * 295)::bigint end as paid_at
            from timed
        ),
        flowed as (
            select
                *,
                case when cls = {CLS_VALID}
                    then paid_at + 4 * 3600 + floor(rnd(i, 7) * 68 * 3600)::bigint
                    end as shipped_at,
                case when cls = {CLS_TIMEOUT}
                        then created_at + 900 + floor(rnd(i, 8) * 2700)::bigint
                    when cls = {CLS_CANCEL}
                        then paid_at + 600 + floor(rnd(i, 8) * 129000)::bigint
                    end as closed_at,
                cls = {CLS_VALID} and rnd(i, 11) < refund_rate as has_refund
            from paid
        )
        select
            i,
            s,
            k,
            m1 as first_export_at,
            chan::utinyint as chan,
            cls::utinyint as cls,
            session_key,
            created_at,
            paid_at,
            shipped_at,
            shipped_at + 2 * {DAY} + floor(rnd(i, 14) * 8 * {DAY})::bigint as completed_at,
            closed_at,
            rnd(i, 9) < p_ret as ret,
            rnd(i, 10) < {CROSS_SHOP_RATE} as cross_shop,
            case when not has_refund then null
                when rnd(i, 12) < rwr_share
                    then case when rwr_at <= paid_at then {REFUND_WITHOUT_RETURN}
                        else {REFUND_ONLY} end
                when rnd(i, 12) < rwr_share + only_share then {REFUND_ONLY}
                when rnd(i, 12) < rwr_share + only_share + return_share then {RETURN_AND_REFUND}
                else {EXCHANGE} end::utinyint as refund_type,
            case when not has_refund then null
                when rnd(i, 13) < 0.62 then {DONE} when rnd(i, 13) < 0.80 then {APPROVED}
                when rnd(i, 13) < 0.88 then {REJECTED} when rnd(i, 13) < 0.95 then {WITHDRAWN}
                else {PENDING} end::utinyint as refund_status
        from flowed
        """
    )

    # New buyers: fresh ids, or (cross-shoppers) a first-time buyer of another store.
    n_stores = len(plan.stores)
    con.execute(
        f"""
        create temp table fresh as
        select
            s,
            k,
            i,
            row_number() over (partition by s order by k, hash(i, {seed}, 21)) - 1 as r
        from o1
        where cls = {CLS_VALID} and not ret and (not cross_shop or k = 0)
        """
    )
    con.execute(
        """
        create temp table fresh_before as
        with counted as (select s, k, count(*) as n from fresh group by s, k)
        select sm.s, sm.k, coalesce(sum(c.n), 0)::bigint as n
        from sm left join counted as c on c.s = sm.s and c.k < sm.k
        group by sm.s, sm.k
        """
    )
    con.execute(
        f"""
        create temp table nb as
        with cross_pick as (
            select
                o.i,
                o.k,
                (o.s + floor(rnd(o.i, 22) * {n_stores - 1})::integer) % {n_stores} + 1 as t
            from o1 as o
            where o.cls = {CLS_VALID} and not o.ret and o.cross_shop and o.k > 0
        ),
        cross_target as (
            select c.i, c.t, floor(rnd(c.i, 23) * fb.n)::bigint as r
            from cross_pick as c
            inner join fresh_before as fb on fb.s = c.t and fb.k = c.k
            where fb.n > 0
        ),
        cross_resolved as (
            select c.i, f.i as buyer_key
            from cross_target as c
            inner join fresh as f on f.s = c.t and f.r = c.r
        ),
        members as (
            select
                o.s,
                o.k,
                o.i,
                o.created_at,
                coalesce(cr.buyer_key, o.i) as buyer_key,
                -- Buyers whose first order got a refund without return come back more often.
                rnd(o.i, 24) + case when o.refund_type = {REFUND_WITHOUT_RETURN}
                    and o.refund_status in ({APPROVED}, {DONE}) then 0.35 else 0 end
                    as rank_key
            from o1 as o
            left join cross_resolved as cr using (i)
            where o.cls = {CLS_VALID} and not o.ret
        )
        select
            s,
            k,
            i,
            created_at,
            buyer_key,
            row_number() over (partition by s, k order by rank_key, i) - 1 as pos,
            count(*) over (partition by s, k) as size
        from members
        """
    )
    con.execute(
        """
        create temp table block as
        with sized as (select s, k, count(*) as size from nb group by s, k)
        select
            s,
            k,
            size,
            coalesce(sum(size) over (partition by s order by k
                rows between unbounded preceding and 1 preceding), 0)::bigint as start
        from sized
        """
    )
    con.execute(
        """
        create temp table block_before as
        select sm.s, sm.k, coalesce(sum(b.size), 0)::bigint as n
        from sm left join block as b on b.s = sm.s and b.k < sm.k
        group by sm.s, sm.k
        """
    )
    con.execute(
        """
        create temp table ret_pick as
        with picks as (
            select o.i, o.s, floor(bb.n * pow(rnd(o.i, 25), 0.6))::bigint as r
            from o1 as o
            inner join block_before as bb on bb.s = o.s and bb.k = o.k
            where o.ret and bb.n > 0
        ),
        located as (
            select
                p.i,
                p.s,
                b.k as j,
                floor(b.size * pow(rnd(p.i, 26), 1.0 / 3))::bigint as pos
            from picks as p
            asof inner join block as b on b.s = p.s and p.r >= b.start
        )
        select
            l.i,
            nb.buyer_key,
            nb.created_at as first_at,
            (nb.pos + 0.5) / nb.size as loyalty
        from located as l
        inner join nb on nb.s = l.s and nb.k = l.j and nb.pos = l.pos
        """
    )

    last_k = len(plan.months) - 1
    con.execute(
        f"""
        create table orders as
        with who as (
            select
                o.*,
                coalesce(rp.buyer_key, nb.buyer_key, o.i) as buyer_key,
                coalesce(rp.first_at, o.created_at) as first_at,
                coalesce(rp.loyalty, (nb.pos + 0.5) / nb.size, rnd(o.i, 27)) as loyalty
            from o1 as o
            left join ret_pick as rp using (i)
            left join nb using (i)
        ),
        leveled as (
            select
                w.*,
                st.multi_buy,
                st.short_order_ids,
                st.store_id,
                st.store_name,
                st.main_anchor,
                {
            club_level_sql(
                "w.created_at",
                club_joined_sql(
                    "w.first_at", "w.loyalty", "w.buyer_key", "w.s", "st.club_threshold"
                ),
                "w.loyalty",
                "st.club_rate",
            )
        } as fan_club_level
            from who as w
            inner join store as st using (s)
        ),
        priced as (
            select
                l.*,
                it.item_no,
                it.price
            from leveled as l
            inner join item_slot as it
                on it.slot_key = (l.s * 2 + (l.fan_club_level >= 5)::integer) * 100
                    + floor(rnd(l.i, 33) * 100)::integer
        ),
        counted as (
            select
                *,
                case when price < 300 and rnd(i, 30) < multi_buy
                    then 2 + floor(pow(rnd(i, 31), 2) * 3)::integer else 1 end as quantity,
                case when chan = {LIVE} and rnd(i, 32) < 0.2
                    then round(price * 0.9, 1) else price end::decimal(18,2) as unit_price
            from priced
        ),
        described as (
            select
                c.*,
                it.item_id,
                it.item_name,
                it.category,
                se.session_id,
                case when c.chan = {LIVE} then se.anchor_id
                    when c.chan = {SHORT_VIDEO} then c.main_anchor end as anchor_id,
                ab.address
            from counted as c
            inner join item as it on it.s = c.s and it.item_no = c.item_no
            left join session as se using (session_key)
            -- A fifth of the orders ship to a buyer's second address.
            inner join address_book as ab
                on ab.n = hash(c.buyer_key * 2 + (rnd(c.i, 91) < 0.2)::integer, {seed}, 99)
                    % {ADDRESS_BOOK}
        )
        select
            i,
            s,
            k,
            cls,
            case when short_order_ids
                then '2' || strftime(ts(created_at), '%y%m%d') || lpad(i::varchar, 9, '0')
                else '4' || strftime(ts(created_at), '%y%m%d') || lpad(i::varchar, 9, '0')
                    || lpad((hash(i, {seed}, 34) % 1000)::varchar, 3, '0')
            end as order_id,
            store_id,
            store_name,
            anchor_id,
            buyer_key,
            concat(
                {q(list(PHONE_PREFIXES))}[(1 + hash(buyer_key, {seed}, 80)
                    % {len(PHONE_PREFIXES)})::bigint],
                lpad((hash(buyer_key, {seed}, 81) % 100000000)::varchar, 8, '0')
            ) as phone,
            address,
            item_id,
            item_name,
            category,
            quantity::integer as quantity,
            unit_price,
            greatest(0, quantity * unit_price - case when rnd(i, 35) < 0.25
                then least([5, 10, 20][1 + floor(rnd(i, 36) * 3)::integer],
                    quantity * unit_price * 0.2)
                else 0 end)::decimal(18,2) as paid_amount,
            chan,
            session_id,
            rnd(buyer_key, 37) >= 0.03 as trust_card,
            fan_club_level::integer as fan_club_level,
            created_at,
            paid_at,
            shipped_at,
            completed_at,
            closed_at,
            -- What the month's export shows, and the final state a re-export shows.
            {status_sql("first_export_at")}::utinyint as status_first,
            {updated_sql("first_export_at")} as updated_first,
            case when paid_at < first_export_at then paid_at end as paid_first,
            {status_sql(FOREVER)}::utinyint as status_final,
            {updated_sql(FOREVER)} as updated_final,
            -- Left out of its month's export, first seen in the next month's re-export.
            cls = {CLS_VALID} and k < {last_k}
                and rnd(i, 38) < case when refund_type is not null then 0.05 else 0.002 end
                as late,
            rnd(i, 39) < 0.02 as repeat_unchanged,
            refund_type,
            refund_status
        from described
        -- Stored in export order: files are written by scanning, not sorting.
        order by s, k, created_at, i
        """
    )


FOREVER = str(2**62)  # a time after every event


def status_sql(at: str) -> str:
    """An order's status as an export taken at `at` shows it."""
    return (
        f"case when closed_at < {at} then {CLOSED} when completed_at < {at} then {COMPLETED}"
        f" when shipped_at < {at} then {SHIPPED} when paid_at < {at} then {PAID}"
        f" else {UNPAID} end"
    )


def updated_sql(at: str) -> str:
    """When the status an export at `at` shows was reached."""
    return (
        f"case when closed_at < {at} then closed_at when completed_at < {at} then completed_at"
        f" when shipped_at < {at} then shipped_at when paid_at < {at} then paid_at"
        " else created_at end"
    )


def club_joined_sql(first_at: str, loyalty: str, key: str, s: str, threshold: str) -> str:
    """When a buyer joined the store's fan club: loyal buyers join, the most loyal before buying."""
    return f"""(case
        when {loyalty} < {threshold} then null
        when {loyalty} > 0.93 then {first_at} - 3 * {DAY}
        else {first_at} + floor((1 - {loyalty}) * 40 * {DAY} * rnd({key} * 8 + {s}, 40))::bigint
    end)"""


def club_level_sql(at: str, joined_at: str, loyalty: str, club_rate: str) -> str:
    """Fan-club level at a time: 1 on joining, then climbing with loyalty, capped at 20."""
    return f"""(case when {joined_at} is null or {at} < {joined_at} then 0
        else least(20, 1 + floor(({at} - {joined_at}) / (30.4 * {DAY})
            * {loyalty} * {club_rate}))::integer end)"""


def build_refunds(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    """One after-sales request per refunded order; one exported version per month it changed."""
    first, last = epoch(plan.months[0]), epoch(plan.last_export)
    reason_cases = " ".join(
        f"when {REFUND_TYPE.index(kind) + 1} then {q(list(values))}"
        f"[1 + floor(pow(rnd(i, 41), 1.6) * {len(values)})::integer]"
        for kind, values in REFUND_REASONS.items()
    )
    con.execute(
        f"""
        create table refund as
        with req as (
            select
                o.i,
                o.s,
                o.order_id,
                o.store_id,
                o.buyer_key,
                o.paid_at,
                o.paid_amount,
                o.refund_type,
                o.refund_status,
                st.subsidy_at,
                st.subsidy,
                st.allergy_share,
                -- 盼姐 refunds any order for any reason, even months later.
                case when rnd(o.i, 42) < st.late_refund_share
                    then o.shipped_at + floor((30 + rnd(o.i, 43) * 300) * {DAY})::bigint
                    else o.shipped_at + 3600 + floor(rnd(o.i, 43) * 7 * {DAY})::bigint
                end as requested_at
            from orders as o
            inner join store as st using (s)
            where o.refund_type is not null
        ),
        resolved as (
            select
                *,
                case when refund_status = {PENDING} then null
                    else requested_at + floor(3600 * case
                        when refund_status in ({REJECTED}, {WITHDRAWN}) then 2 + rnd(i, 44) * 70
                        when refund_type = {REFUND_WITHOUT_RETURN} then 0.2 + rnd(i, 44) * 12
                        when refund_type = {REFUND_ONLY} then 0.5 + rnd(i, 44) * 24
                        else 24 + rnd(i, 44) * 144 end)::bigint
                end as resolved_at
            from req
            where requested_at < {last}
        )
        select
            i,
            s,
            '6' || strftime(ts(requested_at), '%y%m%d') || lpad(i::varchar, 9, '0')
                || lpad((hash(i, {int(plan.seed)}, 45) % 1000)::varchar, 3, '0') as refund_id,
            order_id,
            store_id,
            buyer_key,
            refund_type,
            case when rnd(i, 46) < allergy_share then '过敏'
                else case refund_type {reason_cases} end end as reason,
            case when refund_type = {EXCHANGE} then 0
                when refund_type = {RETURN_AND_REFUND} or rnd(i, 47) < 0.6 then paid_amount
                else round(paid_amount * (0.2 + 0.6 * rnd(i, 48)), 2)
            end::decimal(18,2) as refund_amount,
            case when refund_type = {RETURN_AND_REFUND} and subsidy_at <= paid_at
                and refund_status not in ({REJECTED}, {WITHDRAWN})
                then subsidy[1 + floor(rnd(i, 49) * len(subsidy))::integer] else 0
            end::decimal(18,2) as shipping_subsidy,
            refund_status,
            requested_at,
            resolved_at,
            datediff('month', ts({first}), ts(requested_at))::integer as e_requested,
            case when resolved_at < {last}
                then datediff('month', ts({first}), ts(resolved_at))::integer end as e_resolved
        from resolved
        """
    )
    # A month's export holds the refunds that changed in it: pending first, resolved later.
    con.execute(
        f"""
        create table refund_rows as
        select
            * exclude (refund_status, resolved_at, e_requested, e_resolved),
            {PENDING}::utinyint as refund_status,
            null::bigint as resolved_at,
            requested_at as updated_at,
            e_requested as e
        from refund
        where e_resolved is null or e_resolved > e_requested
        union all by name
        select
            * exclude (e_requested, e_resolved),
            resolved_at as updated_at,
            e_resolved as e
        from refund
        where e_resolved is not null
        order by s, e, updated_at, refund_id
        """
    )


def build_fans(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    """Followers per store: most are buyers, some only watch; a few unfollow again."""
    watcher_base = plan.n_orders  # watcher ids follow every order-derived buyer id
    con.execute(
        f"""
        create table fan as
        with buyer_fans as (
            select
                s,
                buyer_key as fan_key,
                arg_min(created_at, i) as first_at,
                arg_min((pos + 0.5) / size, i) as loyalty,
                true as bought
            from nb
            group by s, buyer_key
        ),
        watcher_ids as (
            select sm.s, sm.m0, sm.m1, {watcher_base} + sm.start + j as fan_key
            from sm
            inner join store as st using (s),
                unnest(range(round(sm.n_orders * st.non_buyer_fans)::bigint)) as r(j)
        ),
        watcher as (
            select
                s,
                fan_key,
                m0 + floor(rnd(fan_key, 50) * (m1 - m0))::bigint as first_at,
                rnd(fan_key, 51) * 0.9 as loyalty,
                false as bought
            from watcher_ids
        ),
        candidate as (
            select * from buyer_fans
            union all
            select * from watcher
        ),
        joined as (
            select
                c.*,
                st.store_id,
                st.club_rate,
                st.follow_rate,
                {
            club_joined_sql("c.first_at", "c.loyalty", "c.fan_key", "c.s", "st.club_threshold")
        } as joined_at,
                rnd(c.fan_key * 8 + c.s, 52) as r_follow,
                rnd(c.fan_key * 8 + c.s, 53) as r_before,
                rnd(c.fan_key * 8 + c.s, 54) as r_gap
            from candidate as c
            inner join store as st using (s)
        ),
        followed as (
            select
                *,
                least(
                    case when not bought then first_at
                        when r_before < 0.6 then first_at - floor(r_gap * 20 * {DAY})::bigint
                        else first_at + floor(r_gap * 3 * {DAY})::bigint end,
                    coalesce(joined_at - 3600, first_at)
                ) as followed_at
            from joined
            where joined_at is not null or not bought or r_follow < follow_rate
        )
        select
            s,
            store_id,
            fan_key,
            followed_at,
            case when joined_at is null and rnd(fan_key * 8 + s, 55) < 0.15
                then followed_at + floor((10 + rnd(fan_key * 8 + s, 56) * 300) * {DAY})::bigint
            end as unfollowed_at,
            loyalty,
            joined_at,
            club_rate
        from followed
        order by s, followed_at, fan_key
        """
    )


# Kinds of violation other than false advertising, with their weights.
OTHER_VIOLATIONS = (
    (COUNTERFEIT, 0.08),
    (PRICE_FRAUD, 0.30),
    (OFF_PLATFORM, 0.25),
    (UNCIVIL, 0.25),
    (OTHER, 0.12),
)


def build_violations(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    """Governance findings: false advertising drops once a store signs the civility convention."""
    first, last = epoch(plan.months[0]), epoch(plan.last_export)
    span = max(1, len(plan.months) - 1)
    con.execute("create temp table vrate (s integer, fa double, other double)")
    insert_rows(
        con,
        "insert into vrate",
        [
            (st.num, st.profile.false_ads * plan.scale, st.profile.other_violations * plan.scale)
            for st in plan.stores
        ],
    )
    cumulative, kind_cases = 0.0, []
    for kind, weight in OTHER_VIOLATIONS[:-1]:
        cumulative += weight
        kind_cases.append(f"when r_kind < {cumulative:.4f} then {kind}")
    kind_sql = "case " + " ".join(kind_cases) + f" else {OTHER_VIOLATIONS[-1][0]} end"
    live_kinds = f"{FALSE_AD}, {UNCIVIL}, {PRICE_FRAUD}, {OFF_PLATFORM}"
    con.execute(
        f"""
        create table violation as
        with counts as (
            select
                sm.s,
                sm.k,
                sm.m0,
                sm.m1,
                sm.n_sessions,
                -- Platform enforcement grew all year (October +440% over March).
                0.6 + 1.0 * sm.k / {span} as intensity,
                case when st.civility_at <= sm.m0 then 0.3 else 1.0 end as convention,
                v.fa,
                v.other
            from sm
            inner join store as st using (s)
            inner join vrate as v using (s)
        ),
        drawn as (
            select
                *,
                floor(fa * intensity * convention + rnd(s * 1000 + k, 60))::integer as n_fa,
                floor(other * intensity + rnd(s * 1000 + k, 61))::integer as n_other
            from counts
        ),
        one as (
            select d.s, d.k, d.m0, d.m1, d.n_sessions, j, j < d.n_fa as false_ad
            from drawn as d, unnest(range(d.n_fa + d.n_other)) as r(j)
        ),
        keyed as (
            select
                *,
                row_number() over (order by s, k, j) as v,
                rnd(s * 1000000 + k * 1000 + j, 62) as r_kind
            from one
        ),
        typed as (
            select *, case when false_ad then {FALSE_AD} else {kind_sql} end as violation_type
            from keyed
        ),
        placed as (
            select
                *,
                case when violation_type in ({live_kinds}) and n_sessions > 0
                    and rnd(v, 63) < 0.75
                    then (s * 1000 + k) * 100 + floor(rnd(v, 64) * n_sessions)::integer
                end as session_key
            from typed
        ),
        detected as (
            select
                p.*,
                se.session_id as live_session_id,
                coalesce(se.anchor_id, case when p.violation_type <> {COUNTERFEIT}
                    then st.anchors[1] end) as anchor_id,
                coalesce(
                    se.start_at + floor(rnd(p.v, 65) * se.duration)::bigint,
                    p.m0 + floor(rnd(p.v, 65) * (p.m1 - p.m0))::bigint
                ) as detected_at
            from placed as p
            inner join store as st using (s)
            left join session as se using (session_key)
        ),
        graded as (
            select
                *,
                case when violation_type = {COUNTERFEIT}
                    then case when rnd(v, 66) < 0.7 then {BRAND_COMPLAINT} else {PATROL} end
                    -- User reports fell while the platform's own patrols grew.
                    when rnd(v, 66) < 0.5 - 0.3 * k / {span} then {USER_REPORT}
                    when rnd(v, 66) < 0.53 - 0.3 * k / {span} then {BRAND_COMPLAINT}
                    else {PATROL} end as source,
                case when violation_type = {COUNTERFEIT} or rnd(v, 67) >= 0.9 then {SEVERE}
                    when rnd(v, 67) < 0.55 then {MINOR} else {MODERATE} end as severity,
                rnd(v, 68) < 0.2 as appealed,
                rnd(v, 69) < 0.4 as overturned
            from detected
        )
        select
            g.s,
            st.store_id,
            g.v,
            'WG' || strftime(ts(g.detected_at), '%Y%m%d') || lpad(g.v::varchar, 7, '0')
                as violation_id,
            g.anchor_id,
            g.live_session_id,
            g.violation_type::utinyint as violation_type,
            g.source::utinyint as source,
            g.severity::utinyint as severity,
            case when g.violation_type = {COUNTERFEIT} then 24
                when g.severity = {SEVERE} then 12
                when g.severity = {MODERATE} then 4 + 2 * floor(rnd(g.v, 70) * 2)::integer
                else 2
            end as penalty_points,
            case when g.violation_type = {COUNTERFEIT} then 50000 * (1 + floor(rnd(g.v, 71) * 4))
                when g.severity = {SEVERE} then 10000 * (1 + floor(rnd(g.v, 71) * 5))
                when g.severity = {MODERATE} then 500 * (1 + floor(rnd(g.v, 71) * 8))
                when rnd(g.v, 71) < 0.3 then 200 else 0
            end::decimal(18,2) as penalty_amount,
            g.detected_at,
            g.detected_at + 3600 + floor(rnd(g.v, 72) * 23 * 3600)::bigint as confirmed_at,
            case when g.appealed
                then g.detected_at + floor((1 + rnd(g.v, 73) * 2) * {DAY})::bigint
                end as appealed_at,
            case when g.appealed
                then g.detected_at + floor((4 + rnd(g.v, 74) * 14) * {DAY})::bigint
                end as decided_at,
            g.appealed,
            case when g.overturned then {OVERTURNED} else {CONFIRMED} end as decision
        from graded as g
        inner join store as st using (s)
        """
    )
    # Versions: confirmed, then under appeal, then decided; a month exports its last one.
    con.execute(
        f"""
        create table violation_rows as
        with version as (
            select *, {CONFIRMED} as violation_status, confirmed_at as updated_at, 1 as step
            from violation
            union all
            select *, {UNDER_APPEAL}, appealed_at, 2 from violation where appealed
            union all
            select *, decision, decided_at, 3 from violation where appealed
        ),
        exported as (
            select *, datediff('month', ts({first}), ts(updated_at))::integer as e
            from version
            where updated_at < {last}
        )
        select * exclude (confirmed_at, appealed_at, decided_at, decision, appealed, step)
        from exported
        qualify step = max(step) over (partition by v, e)
        order by e, updated_at, v
        """
    )


def build(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    """Create every table the file writers read."""
    create_reference(con, plan)
    build_sessions(con, plan)
    build_orders(con, plan)
    build_refunds(con, plan)
    build_fans(con, plan)
    build_violations(con, plan)
