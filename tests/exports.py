"""Writing small export files for tests, the way the platform's back office does."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from dagster_project.defs.ingest.contract import ENTITIES


def order(order_id: str = "1000000001", **fields: str) -> dict[str, str]:
    """A valid paid live order; override any field."""
    row = {
        "order_id": order_id,
        "store_id": "S001",
        "store_name": "露露茶叶",
        "anchor_id": "A1",
        "buyer_id": "B1",
        "receiver_phone": "13812345678",
        "receiver_address": '浙江省杭州市西湖区文三路1号, "东"门',
        "item_id": "I1",
        "item_name": "大红袍",
        "category": "茶叶",
        "quantity": "1",
        "unit_price": "100.00",
        "paid_amount": "100.00",
        "order_status": "已付款",
        "channel": "直播",
        "live_session_id": "L1",
        "trust_card": "是",
        "fan_club_level": "3",
        "created_at": "2021-09-01 20:00:00",
        "paid_at": "2021-09-01 20:01:00",
        "updated_at": "2021-09-01 20:01:00",
    }
    row.update(fields)
    return row


def refund(refund_id: str = "R1", order_id: str = "1000000001", **fields: str) -> dict[str, str]:
    """An approved refund of 50 on order 1000000001; override any field."""
    row = {
        "refund_id": refund_id,
        "order_id": order_id,
        "store_id": "S001",
        "buyer_id": "B1",
        "refund_type": "仅退款",
        "reason": "七天无理由",
        "refund_amount": "50.00",
        "shipping_subsidy": "0",
        "refund_status": "已同意",
        "requested_at": "2021-09-02 10:00:00",
        "resolved_at": "2021-09-02 12:00:00",
        "updated_at": "2021-09-02 12:00:00",
    }
    row.update(fields)
    return row


def write_export(
    folder: Path,
    entity: str,
    file_name: str,
    rows: list[dict[str, str]],
    *,
    language: str = "en",
    encoding: str = "utf-8",
    columns: list[str] | None = None,
    newline: str = "\n",
    extra_lines: list[str] = (),
) -> Path:
    """Write rows under folder/entity/file_name with English or Chinese headers."""
    contract = ENTITIES[entity]
    names = columns or contract.column_names
    zh = {column.name: column.zh for column in contract.columns}
    header = [zh.get(name, name) if language == "zh" else name for name in names]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(name, "") for name in names])
    for line in extra_lines:
        buffer.write(line + newline)
    path = folder / entity / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path
