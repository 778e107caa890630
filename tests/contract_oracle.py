"""An independent oracle of the mart contract (METRICS.md) over exports read per EXPORTS.md
(`test_contract_oracle.py` compares every build's marts with it).

Plain Python and the csv module: header names, enum labels, parsing rules, the current-version
rule and every mart METRICS.md defines exactly are re-typed from the two contracts, without the
project's SQL, dbt models or ingest code. A small generated landing is built with `trustwh run`,
then a day of exports that re-export earlier keys with later versions (the marts built
incrementally by key), and every mart of `serving.duckdb` must equal the oracle row by row,
column by column (money to the cent, rates to 1e-9); the load ledger must count every data row.
Where METRICS.md leaves a column open (store_compliance.first_order_at, a negative streak), the
oracle follows the warehouse's documented reading.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from statistics import median

# ---------------------------------------------------------------------------------------
# The export contract, re-typed from EXPORTS.md
# ---------------------------------------------------------------------------------------
T, DIG, INT, MONEY, TIME, DATE, BOOL, ENUM = (
    "text",
    "digits",
    "int",
    "money",
    "time",
    "date",
    "bool",
    "enum",
)

ORDER_STATUS = ("待付款", "已付款", "已发货", "已完成", "已关闭")
CHANNEL = ("直播", "短视频", "货架")
REFUND_TYPE = ("仅退款", "退货退款", "退款不退货", "换货")
REFUND_STATUS = ("待处理", "已同意", "已拒绝", "已完成", "已撤销")
VIOLATION_TYPE = ("虚假宣传", "售假", "价格欺诈", "诱导站外交易", "不文明用语", "其他")
SOURCE = ("平台巡查", "用户举报", "品牌方投诉")
SEVERITY = ("轻微", "一般", "严重")
VIOLATION_STATUS = ("已确认", "申诉中", "申诉成功")

# (name, zh, kind, required, extra) ; extra = enum values or (min, max)
SPEC = {
    "orders": [
        ("order_id", "订单编号", DIG, True, None),
        ("store_id", "店铺ID", T, True, None),
        ("store_name", "店铺名称", T, False, None),
        ("anchor_id", "主播ID", T, False, None),
        ("buyer_id", "买家ID", T, True, None),
        ("receiver_phone", "收货人手机号", T, False, None),
        ("receiver_address", "收货地址", T, False, None),
        ("item_id", "商品ID", T, False, None),
        ("item_name", "商品名称", T, False, None),
        ("category", "商品类目", T, False, None),
        ("quantity", "商品数量", INT, False, (1, None)),
        ("unit_price", "商品单价", MONEY, False, None),
        ("paid_amount", "实付金额", MONEY, False, None),
        # EXPORTS.md does not mark the enums required; an empty value is "not one of" them.
        ("order_status", "订单状态", ENUM, True, ORDER_STATUS),
        ("channel", "成交渠道", ENUM, False, CHANNEL),
        ("live_session_id", "直播场次ID", T, False, None),
        ("trust_card", "信任卡用户", BOOL, False, None),
        ("fan_club_level", "粉丝团等级", INT, False, (0, 20)),
        ("created_at", "下单时间", TIME, True, None),
        ("paid_at", "支付时间", TIME, False, None),
        ("updated_at", "更新时间", TIME, True, None),
    ],
    "refunds": [
        ("refund_id", "售后单号", T, True, None),
        ("order_id", "订单编号", DIG, True, None),
        ("store_id", "店铺ID", T, True, None),
        ("buyer_id", "买家ID", T, True, None),
        ("refund_type", "售后类型", ENUM, True, REFUND_TYPE),
        ("reason", "售后原因", T, False, None),
        ("refund_amount", "退款金额", MONEY, False, None),
        ("shipping_subsidy", "退货运费补贴", MONEY, False, None),
        ("refund_status", "售后状态", ENUM, True, REFUND_STATUS),
        ("requested_at", "申请时间", TIME, True, None),
        ("resolved_at", "完结时间", TIME, False, None),
        ("updated_at", "更新时间", TIME, True, None),
    ],
    "fans": [
        ("snapshot_date", "快照日期", DATE, True, None),
        ("store_id", "店铺ID", T, True, None),
        ("fan_id", "粉丝ID", T, True, None),
        ("followed_at", "关注时间", TIME, False, None),
        ("is_following", "是否关注", BOOL, False, None),
        ("fan_club_level", "粉丝团等级", INT, False, (0, 20)),
        ("fan_club_joined_at", "入团时间", TIME, False, None),
    ],
    "violations": [
        ("violation_id", "违规单号", T, True, None),
        ("store_id", "店铺ID", T, True, None),
        ("anchor_id", "主播ID", T, False, None),
        ("live_session_id", "直播场次ID", T, False, None),
        ("violation_type", "违规类型", ENUM, True, VIOLATION_TYPE),
        ("source", "发现来源", ENUM, False, SOURCE),
        ("severity", "严重程度", ENUM, False, SEVERITY),
        ("penalty_points", "扣分", INT, False, (0, None)),
        ("penalty_amount", "罚款金额", MONEY, False, None),
        ("violation_status", "处理状态", ENUM, True, VIOLATION_STATUS),
        ("detected_at", "发现时间", TIME, True, None),
        ("updated_at", "更新时间", TIME, True, None),
    ],
}
KEYS = {
    "orders": ("order_id",),
    "refunds": ("refund_id",),
    "fans": ("store_id", "fan_id", "snapshot_date"),
    "violations": ("violation_id",),
}
FILE_NAME = re.compile(r"^([a-z]+)_(\d{8})(?:_.*)?\.csv$", re.IGNORECASE)
TIME_RE = re.compile(r"^(\d{4})[-/](\d{2})[-/](\d{2}) (\d{2}):(\d{2})(?::(\d{2}))?$", re.ASCII)
DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$|^(\d{4})(\d{2})(\d{2})$", re.ASCII)
MONEY_RE = re.compile(r"^¥?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?$", re.ASCII)
BOOLS = {
    "是": True,
    "否": False,
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "y": True,
    "n": False,
}


class Bad(Exception):
    pass


def parse_value(kind, text, extra):
    if kind in (T,):
        return text
    if kind == DIG:
        if not re.fullmatch(r"[0-9]{10,20}", text):
            raise Bad("order_id not 10-20 digits")
        return text
    if kind == ENUM:
        if text not in extra:
            raise Bad("unknown enum value")
        return text
    if kind == INT:
        if not re.fullmatch(r"[0-9]+", text):
            raise Bad("not an integer")
        value = int(text)
        lo, hi = extra or (None, None)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise Bad("integer out of range")
        return value
    if kind == MONEY:
        m = MONEY_RE.fullmatch(text)
        if not m:
            raise Bad("bad money")
        return Decimal(m.group(1).replace(",", "") + "." + (m.group(2) or "0"))
    if kind == TIME:
        m = TIME_RE.fullmatch(text)
        if not m:
            raise Bad("bad time")
        y, mo, d, h, mi, s = m.groups()
        try:
            return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0))
        except ValueError as e:
            raise Bad("bad time") from e
    if kind == DATE:
        m = DATE_RE.fullmatch(text)
        if not m:
            raise Bad("bad date")
        try:
            return date(*map(int, [g for g in m.groups() if g is not None]))
        except ValueError as e:
            raise Bad("bad date") from e
    if kind == BOOL:
        b = BOOLS.get(text.lower())
        if b is None:
            raise Bad("bad boolean")
        return b
    raise AssertionError(kind)


def decode(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("gb18030"), "gb18030"  # raises when neither: rejected


@dataclass
class FileRead:
    entity: str
    file_name: str
    export_date: date
    sha256: str
    status: str = "published"  # published | rejected | duplicate | blocked (oracle's own view)
    reason: str = ""
    data_rows: int = 0
    rows: list = field(default_factory=list)  # (row_number, record dict) that passed
    bad: dict = field(default_factory=dict)  # row_number -> reason
    encoding: str = ""


def read_file(entity: str, path: Path) -> FileRead:
    m = FILE_NAME.fullmatch(path.name)
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if not m or m.group(1).lower() != entity:
        return FileRead(entity, path.name, None, sha, "rejected", "bad name")
    try:
        export_date = datetime.strptime(m.group(2), "%Y%m%d").date()
    except ValueError:
        return FileRead(entity, path.name, None, sha, "rejected", "bad date in name")
    fr = FileRead(entity, path.name, export_date, sha)
    try:
        text, fr.encoding = decode(data)
    except UnicodeDecodeError:
        fr.status, fr.reason = "rejected", "encoding"
        return fr
    reader = csv.reader(io.StringIO(text, newline=""))
    header = None
    for raw in reader:
        if not raw or raw == [""]:
            continue  # blank line (before the header too)
        if header is None:
            header = [h.strip() for h in raw]
            break
    if header is None:
        fr.status, fr.reason = "rejected", "no header"
        return fr
    spec = SPEC[entity]
    index = {}
    for name, zh, _kind, required, _extra in spec:
        for i, h in enumerate(header):
            if h in (name, zh):
                index[name] = i
                break
        else:
            if required:
                fr.status, fr.reason = "rejected", f"missing column {name}"
                return fr
    row_number = 0
    for raw in reader:
        if not raw or raw == [""]:
            continue  # blank lines are not rows
        row_number += 1
        fr.data_rows += 1
        try:
            if len(raw) != len(header):
                raise Bad("wrong field count")
            if any("\x00" in v for v in raw):
                raise Bad("NUL")
            rec = {"_raw": {n: raw[i] for n, i in index.items()}}
            for name, _zh, kind, required, extra in spec:
                if name not in index:
                    rec[name] = None
                    continue
                value = raw[index[name]].strip(" ")
                if value == "":
                    if required:
                        raise Bad(f"{name} missing")
                    rec[name] = None
                    continue
                try:
                    rec[name] = parse_value(kind, value, extra)
                except Bad as e:
                    raise Bad(f"{name}: {e}") from None
            fr.rows.append((row_number, rec))
        except Bad as e:
            fr.bad[row_number] = str(e)
    return fr


TIME_COLUMNS = {e: [n for n, _, k, _, _ in cols if k in (TIME, DATE)] for e, cols in SPEC.items()}


def gate(fr: FileRead, threshold: float = 0.05) -> None:
    """The error-level gate of README: quarantine share, key unique in load, time range."""
    if fr.status != "published":
        return
    reasons = []
    if fr.data_rows and len(fr.bad) / fr.data_rows > threshold:
        reasons.append("quarantine_share")
    keys = Counter(tuple(r[k] for k in KEYS[fr.entity]) for _, r in fr.rows)
    if any(c > 1 for c in keys.values()):
        reasons.append("key_unique_in_load")
    lo, hi = (
        datetime(2000, 1, 1),
        datetime.combine(fr.export_date + timedelta(days=2), datetime.min.time()),
    )
    for _, r in fr.rows:
        for c in TIME_COLUMNS[fr.entity]:
            v = r[c]
            if v is None:
                continue
            v = v if isinstance(v, datetime) else datetime.combine(v, datetime.min.time())
            if v < lo or v >= hi:
                reasons.append(f"{c}_in_time_range")
    if reasons:
        fr.status, fr.reason = "blocked", ",".join(sorted(set(reasons)))


def read_landing(landing: Path, ledger=None, quarantine=None, threshold=0.05, earlier=()):
    """Every file of the landing, read per EXPORTS.md.

    ledger: optional {(entity, file_name, sha256): (status, sha256, load_order, load_id, ...)}
    of the warehouse; when given, only files it calls published are used (the oracle's own
    statuses are kept in `own_status` for comparison). quarantine: optional
    {load_id: {row_number}} of the warehouse; when given, exactly those rows are set aside.
    earlier: (entity, path) of earlier versions of landed files (same name, other bytes),
    read as loads before the landing's files.
    Returns (files, records by entity).
    """
    files = []
    seen_sha = {}
    paths = [(e, Path(p), True) for e, p in earlier]
    for entity in SPEC:
        folder = landing / entity
        if not folder.is_dir():
            continue
        paths += [
            (entity, p, False)
            for p in sorted(
                p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
            )
        ]
    for entity, path, _ in paths:
        fr = read_file(entity, path)
        if fr.status == "published":
            if fr.sha256 in seen_sha:
                fr.status, fr.reason = "duplicate", seen_sha[fr.sha256]
            else:
                seen_sha[fr.sha256] = fr.file_name
                gate(fr, threshold)
        files.append(fr)
    records = {e: [] for e in SPEC}
    for order_seq, fr in enumerate(files):
        fr.own_status = fr.status
        key = (fr.entity, fr.file_name, fr.sha256)
        load_id = None
        if ledger is not None:
            st = ledger.get(key)
            fr.status = st[0] if st else "unknown"
            seq = st[2] if st else order_seq
            load_id = st[3] if st else None
        else:
            seq = order_seq
        if fr.status != "published":
            continue
        rows = fr.rows
        if quarantine is not None:
            # take exactly the warehouse's quarantine (rows the oracle itself finds bad and the
            # warehouse loaded are reported by ledger_problems and left out here)
            q = quarantine.get(load_id, set())
            rows = [(n, r) for n, r in fr.rows if n not in q]
        for n, r in rows:
            r = dict(r)
            r["_rank"] = (fr.export_date, fr.file_name, seq, n)
            r["_file"] = fr.file_name
            r["_export_date"] = fr.export_date
            records[fr.entity].append(r)
    return files, records


def current(rows, key, version="updated_at"):
    best = {}
    for r in rows:
        k = tuple(r[c] for c in key)
        rank = ((r[version],) if version else ()) + r["_rank"]
        if k not in best or rank > best[k][0]:
            best[k] = (rank, r)
    return {k: v[1] for k, v in best.items()}


# ---------------------------------------------------------------------------------------
# Marts, per METRICS.md
# ---------------------------------------------------------------------------------------
def month_of(ts) -> date:
    return date(ts.year, ts.month, 1)


def months_between(a: date, b: date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def add_months(a: date, n: int) -> date:
    y, m = divmod(a.month - 1 + n, 12)
    return date(a.year + y, m + 1, 1)


def season_of(ts) -> tuple[int, str]:
    m = ts.month
    if m in (3, 4, 5):
        return ts.year, "spring"
    if m in (6, 7, 8):
        return ts.year, "summer"
    if m in (9, 10, 11):
        return ts.year, "autumn"
    return (ts.year if m == 12 else ts.year - 1), "winter"


def rate(a, b):
    return a / b


VALID = ("已付款", "已发货", "已完成")
COUNTED_REFUND = ("已同意", "已完成")


def compute(records, stores_seed=()):
    out = {}
    orders = current(records["orders"], ("order_id",))
    refunds = current(records["refunds"], ("refund_id",))
    violations = current(records["violations"], ("violation_id",))
    fans = current(records["fans"], KEYS["fans"], version=None)

    vp = [o for o in orders.values() if o["paid_at"] is not None and o["order_status"] in VALID]
    last_paid = max((o["paid_at"] for o in vp), default=None)
    last_month = month_of(last_paid) if last_paid else None

    # ---- cohorts
    def cohorts(group):
        months = defaultdict(set)  # (group, buyer) -> months
        for o in vp:
            months[(group(o), o["buyer_id"])].add(month_of(o["paid_at"]))
        cohort_buyers = defaultdict(set)
        for (g, b), ms in months.items():
            cohort_buyers[(g, min(ms))].add(b)
        rows = {}
        for (g, cm), buyers in cohort_buyers.items():
            for off in range(months_between(cm, last_month) + 1):
                target = add_months(cm, off)
                active = sum(1 for b in buyers if target in months[(g, b)])
                rows[(g, cm, off)] = (len(buyers), active, rate(active, len(buyers)))
        return rows

    out["store_cohort_retention"] = {
        (g, cm, off): v for (g, cm, off), v in cohorts(lambda o: o["store_id"]).items()
    }
    out["platform_cohort_retention"] = {
        (cm, off): v for (g, cm, off), v in cohorts(lambda o: None).items()
    }

    # ---- monthly repurchase
    def monthly(group, trust=False):
        by = defaultdict(list)
        first_month = {}
        for o in vp:
            g = group(o)
            by[(g, month_of(o["paid_at"]))].append(o)
            k = (g, o["buyer_id"])
            m = month_of(o["paid_at"])
            first_month[k] = min(first_month.get(k, m), m)
        rows = {}
        for (g, m), os_ in by.items():
            per_buyer = Counter(o["buyer_id"] for o in os_)
            buyers = len(per_buyer)
            gmv = sum((o["paid_amount"] for o in os_ if o["paid_amount"] is not None), Decimal("0"))
            repeat = sum(1 for c in per_buyer.values() if c >= 2)
            returning = sum(1 for b in per_buyer if first_month[(g, b)] < m)
            row = (
                buyers,
                len(os_),
                gmv,
                repeat,
                rate(repeat, buyers),
                returning,
                rate(returning, buyers),
            )
            if trust:
                tc = len({o["buyer_id"] for o in os_ if o["trust_card"] is True})
                row += (tc, rate(tc, buyers))
            rows[(g, m)] = row
        return rows

    out["store_monthly_repurchase"] = monthly(lambda o: o["store_id"])
    out["platform_monthly_repurchase"] = {
        (m,): v for (g, m), v in monthly(lambda o: None, trust=True).items()
    }

    # ---- live sessions
    sessions = defaultdict(list)
    for o in vp:
        if o["live_session_id"]:
            sessions[o["live_session_id"]].append(o)
    by_store_buyer = defaultdict(list)  # (store, buyer) -> paid_at list
    for o in vp:
        by_store_buyer[(o["store_id"], o["buyer_id"])].append(o["paid_at"])
    ls = {}
    ambiguous_sessions = []
    for sid, os_ in sessions.items():
        counts = Counter(o["store_id"] for o in os_)
        top = max(counts.values())
        winners = sorted(s for s, c in counts.items() if c == top)
        if len(counts) > 1:
            ambiguous_sessions.append((sid, dict(counts)))
        store = winners[0]  # tie: not defined by METRICS.md
        first = min(o["paid_at"] for o in os_)
        buyers = {o["buyer_id"] for o in os_}
        returning = sum(1 for b in buyers if any(p < first for p in by_store_buyer[(store, b)]))
        gmv = sum((o["paid_amount"] for o in os_ if o["paid_amount"] is not None), Decimal("0"))
        ls[(sid,)] = (
            store,
            first.date(),
            first,
            len(os_),
            len(buyers),
            gmv,
            returning,
            rate(returning, len(buyers)),
        )
    out["live_session_performance"] = ls
    out["_ambiguous_sessions"] = ambiguous_sessions

    # ---- refunds
    counted = [r for r in refunds.values() if r["refund_status"] in COUNTED_REFUND]
    refunds_of = defaultdict(list)
    for r in counted:
        refunds_of[r["order_id"]].append(r)
    by = defaultdict(list)
    for o in vp:
        by[(o["store_id"], month_of(o["paid_at"]))].append(o)
    rm = {}
    for k, os_ in by.items():
        refunded = [o for o in os_ if refunds_of.get(o["order_id"])]
        rs = [r for o in os_ for r in refunds_of.get(o["order_id"], [])]

        def typed(t, os_=os_):
            return sum(
                1
                for o in os_
                if any(r["refund_type"] == t for r in refunds_of.get(o["order_id"], []))
            )

        hours = [
            (r["resolved_at"] - r["requested_at"]).total_seconds() / 3600
            for r in rs
            if r["resolved_at"] is not None
        ]
        rm[k] = (
            len(os_),
            len(refunded),
            rate(len(refunded), len(os_)),
            typed("退款不退货"),
            typed("退货退款"),
            typed("仅退款"),
            sum((r["refund_amount"] or Decimal(0) for r in rs), Decimal("0")),
            sum((r["shipping_subsidy"] or Decimal(0) for r in rs), Decimal("0")),
            median(hours) if hours else None,
        )
    out["store_refunds_monthly"] = rm

    # ---- violations
    vm = defaultdict(lambda: [0, 0, 0, 0, 0, 0, Decimal("0"), 0])
    for v in violations.values():
        row = vm[(v["store_id"], month_of(v["detected_at"]))]
        if v["violation_status"] == "申诉成功":
            row[7] += 1
            continue
        row[0] += 1
        row[1] += v["violation_type"] == "虚假宣传"
        row[2] += v["violation_type"] == "售假"
        row[3] += v["source"] == "用户举报"
        row[4] += v["severity"] == "严重"
        row[5] += v["penalty_points"] or 0
        row[6] += v["penalty_amount"] or Decimal(0)
    out["store_violations_monthly"] = {k: tuple(v) for k, v in vm.items()}

    # ---- compliance
    stores = set(stores_seed)
    for e in SPEC:
        stores |= {r["store_id"] for r in records[e]}
    # first_order_at is not defined by METRICS.md; read as the store's first valid purchase
    # (its paid_at), as the warehouse does. (The earliest created_at of any order differs.)
    first_order = {}
    for o in vp:
        s = o["store_id"]
        first_order[s] = min(first_order.get(s, o["paid_at"]), o["paid_at"])
    cv = defaultdict(list)
    for v in violations.values():
        if v["violation_status"] != "申诉成功":
            cv[v["store_id"]].append(v["detected_at"])
    last_day = last_paid.date() if last_paid else None
    comp = {}
    for s in stores:
        fo = first_order.get(s)
        lv = max(cv[s]) if cv[s] else None
        since = max([t for t in (fo, lv) if t is not None], default=None)
        days = (last_day - since.date()).days if since and last_day else None
        if days is not None and days < 0:
            days = 0  # a violation after the last data day: not defined; warehouse clamps
        zero = None if fo is None else not any(t >= fo for t in cv[s])
        comp[(s,)] = (fo, lv, len(cv[s]), zero, days)
    out["store_compliance"] = comp

    # ---- seasonal gift list
    latest_snap = {}
    for s, _f, d in fans:
        latest_snap[s] = max(latest_snap.get(s, d), d)
    following = {
        (s, f) for (s, f, d), r in fans.items() if d == latest_snap[s] and r["is_following"] is True
    }
    net = defaultdict(lambda: Decimal("0"))
    for o in vp:
        sy, se = season_of(o["paid_at"])
        k = (o["store_id"], sy, se, o["buyer_id"])
        net[k] += o["paid_amount"] or Decimal(0)
        net[k] -= sum(
            (r["refund_amount"] or Decimal(0) for r in refunds_of.get(o["order_id"], [])),
            Decimal(0),
        )
    out["seasonal_gift_list"] = {
        k: (v,) for k, v in net.items() if v >= 500 and (k[0], k[3]) in following
    }
    return out


# ---------------------------------------------------------------------------------------
# Reading the warehouse and comparing
# ---------------------------------------------------------------------------------------
MART_COLUMNS = {
    "store_cohort_retention": (
        ["store_id", "cohort_month", "month_offset"],
        ["cohort_buyers", "active_buyers", "retention_rate"],
    ),
    "platform_cohort_retention": (
        ["cohort_month", "month_offset"],
        ["cohort_buyers", "active_buyers", "retention_rate"],
    ),
    "store_monthly_repurchase": (
        ["store_id", "month"],
        [
            "buyers",
            "orders",
            "gmv",
            "repeat_buyers",
            "repeat_purchase_rate",
            "returning_buyers",
            "returning_buyer_rate",
        ],
    ),
    "platform_monthly_repurchase": (
        ["month"],
        [
            "buyers",
            "orders",
            "gmv",
            "repeat_buyers",
            "repeat_purchase_rate",
            "returning_buyers",
            "returning_buyer_rate",
            "trust_card_buyers",
            "trust_card_coverage",
        ],
    ),
    "live_session_performance": (
        ["live_session_id"],
        [
            "store_id",
            "session_date",
            "first_paid_at",
            "orders",
            "buyers",
            "gmv",
            "returning_buyers",
            "session_repurchase_rate",
        ],
    ),
    "store_refunds_monthly": (
        ["store_id", "month"],
        [
            "orders",
            "refunded_orders",
            "refund_rate",
            "refund_without_return_orders",
            "return_and_refund_orders",
            "refund_only_orders",
            "refund_amount",
            "shipping_subsidy_amount",
            "median_resolution_hours",
        ],
    ),
    "store_violations_monthly": (
        ["store_id", "month"],
        [
            "violations",
            "false_advertising",
            "counterfeit",
            "user_reported",
            "severe",
            "penalty_points",
            "penalty_amount",
            "overturned",
        ],
    ),
    "store_compliance": (
        ["store_id"],
        [
            "first_order_at",
            "last_counted_violation_at",
            "counted_violations",
            "zero_violation_since_first_order",
            "days_without_violation",
        ],
    ),
    "seasonal_gift_list": (["store_id", "season_year", "season", "buyer_id"], ["net_spend"]),
}


def warehouse_marts(serving: Path):
    import duckdb

    got = {}
    with duckdb.connect(str(serving), read_only=True) as con:
        for mart, (keys, values) in MART_COLUMNS.items():
            rows = con.execute(f"select {', '.join(keys + values)} from marts.{mart}").fetchall()
            d = {}
            for r in rows:
                k = tuple(r[: len(keys)])
                if k in d:
                    d.setdefault("__dup__", []).append(k)
                d[k] = tuple(r[len(keys) :])
            got[mart] = d
        ledger = {}
        for entity, name, status, sha, _loaded_at, load_id, rr, rl, rq in con.execute(
            "select entity, file_name, status, file_sha256, loaded_at, load_id, rows_read, "
            "rows_loaded, rows_quarantined from quality.load_ledger order by loaded_at, load_id"
        ).fetchall():
            ledger[(entity, name, sha)] = (status, sha, len(ledger), load_id, rr, rl, rq)
        quarantine = defaultdict(set)
        for load_id, n in con.execute(
            "select load_id, row_number from quality.quarantine"
        ).fetchall():
            quarantine[load_id].add(n)
    return got, ledger, dict(quarantine)


def same(a, b):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= 1e-9
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return Decimal(a) == Decimal(b)
    return a == b


def compare(expected, got, limit=10):
    """{mart: [difference lines]}"""
    diffs = {}
    for mart, (_keys, values) in MART_COLUMNS.items():
        e, g = expected[mart], got[mart]
        lines = []
        if "__dup__" in g:
            lines.append(f"duplicate grain keys in warehouse: {g.pop('__dup__')[:5]}")
        for k in sorted(set(e) - set(g), key=repr):
            lines.append(f"missing in warehouse: {k} expected {e[k]}")
        for k in sorted(set(g) - set(e), key=repr):
            lines.append(f"extra in warehouse: {k} = {g[k]}")
        for k in sorted(set(e) & set(g), key=repr):
            for col, a, b in zip(values, e[k], g[k], strict=True):
                if not same(a, b):
                    lines.append(f"{k} {col}: oracle {a!r} warehouse {b!r}")
        if lines:
            diffs[mart] = lines
    return diffs


def ledger_problems(files, ledger, quarantine):
    """rows_read = rows_loaded + rows_quarantined = data rows; quarantine as EXPORTS.md."""
    lines = []
    for fr in files:
        key = (fr.entity, fr.file_name, fr.sha256)
        if key not in ledger:
            lines.append(f"{key[:2]}: not in ledger")
            continue
        status, _sha, _, load_id, rr, rl, rq = ledger[key]
        key = key[:2]
        if status != fr.own_status:
            lines.append(f"{key}: ledger status {status}, oracle {fr.own_status} ({fr.reason})")
        if status in ("published", "blocked"):
            if rr != fr.data_rows or rr != (rl or 0) + (rq or 0):
                lines.append(
                    f"{key}: rows_read {rr} loaded {rl} quarantined {rq}; "
                    f"oracle data rows {fr.data_rows}"
                )
            wq = quarantine.get(load_id, set())
            if wq != set(fr.bad):
                lines.append(
                    f"{key}: quarantined rows differ: warehouse-only "
                    f"{sorted(wq - set(fr.bad))}, oracle-only "
                    f"{ {n: fr.bad[n] for n in set(fr.bad) - wq} }"
                )
    return lines


def read_seed(repo: Path):
    with open(repo / "seeds" / "stores.csv", encoding="utf-8") as f:
        return [r["store_id"] for r in csv.DictReader(f)]


def check(landing: Path, serving: Path, repo: Path, use_warehouse_quarantine=True, earlier=()):
    got, ledger, quarantine = warehouse_marts(serving)
    files, records = read_landing(
        landing,
        ledger=ledger,
        quarantine=quarantine if use_warehouse_quarantine else None,
        earlier=earlier,
    )
    expected = compute(records, read_seed(repo))
    return expected, compare(expected, got), ledger_problems(files, ledger, quarantine)
