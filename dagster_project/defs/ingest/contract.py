"""The export contract of EXPORTS.md as data: one entry per export, read by every part of ingest.

Adding an export column or a whole export is an edit here, not a new code path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Column kinds: how a raw text field is parsed and which SQL type it lands as in `raw.*`.
TEXT = "text"
DIGITS = "digits"  # an id of 10-20 digits that must stay text (order_id)
INTEGER = "integer"
MONEY = "money"
TIMESTAMP = "timestamp"
DATE = "date"
BOOLEAN = "boolean"
ENUM = "enum"

SQL_TYPES = {
    TEXT: "varchar",
    DIGITS: "varchar",
    INTEGER: "integer",
    MONEY: "decimal(18,2)",
    TIMESTAMP: "timestamp",
    DATE: "date",
    BOOLEAN: "boolean",
    ENUM: "varchar",
}


@dataclass(frozen=True)
class Column:
    name: str
    zh: str
    kind: str = TEXT
    required: bool = False
    values: tuple[str, ...] = ()  # allowed labels of an ENUM
    min_value: int | None = None
    max_value: int | None = None
    personal: bool = False

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.kind]


@dataclass(frozen=True)
class Entity:
    name: str  # plural, as the landing folder: orders, refunds, fans, violations
    zh: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    description: str = ""
    version_column: str | None = "updated_at"  # newest version of a key wins
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)


ORDER_STATUS = ("待付款", "已付款", "已发货", "已完成", "已关闭")
CHANNEL = ("直播", "短视频", "货架")
REFUND_TYPE = ("仅退款", "退货退款", "退款不退货", "换货")
REFUND_STATUS = ("待处理", "已同意", "已拒绝", "已完成", "已撤销")
VIOLATION_TYPE = ("虚假宣传", "售假", "价格欺诈", "诱导站外交易", "不文明用语", "其他")
VIOLATION_SOURCE = ("平台巡查", "用户举报", "品牌方投诉")
SEVERITY = ("轻微", "一般", "严重")
VIOLATION_STATUS = ("已确认", "申诉中", "申诉成功")

ORDERS = Entity(
    name="orders",
    zh="订单",
    key=("order_id",),
    description="Orders exported from the seller back office; a re-export repeats an order "
    "with a newer updated_at.",
    columns=(
        Column("order_id", "订单编号", DIGITS, required=True),
        Column("store_id", "店铺ID", required=True),
        Column("store_name", "店铺名称"),
        Column("anchor_id", "主播ID"),
        Column("buyer_id", "买家ID", required=True),
        Column("receiver_phone", "收货人手机号", personal=True),
        Column("receiver_address", "收货地址", personal=True),
        Column("item_id", "商品ID"),
        Column("item_name", "商品名称"),
        Column("category", "商品类目"),
        Column("quantity", "商品数量", INTEGER, min_value=1),
        Column("unit_price", "商品单价", MONEY),
        Column("paid_amount", "实付金额", MONEY),
        Column("order_status", "订单状态", ENUM, required=True, values=ORDER_STATUS),
        Column("channel", "成交渠道", ENUM, values=CHANNEL),
        Column("live_session_id", "直播场次ID"),
        Column("trust_card", "信任卡用户", BOOLEAN),
        Column("fan_club_level", "粉丝团等级", INTEGER, min_value=0, max_value=20),
        Column("created_at", "下单时间", TIMESTAMP, required=True),
        Column("paid_at", "支付时间", TIMESTAMP),
        Column("updated_at", "更新时间", TIMESTAMP, required=True),
    ),
)

REFUNDS = Entity(
    name="refunds",
    zh="售后",
    key=("refund_id",),
    description="After-sales requests; may arrive before the order they refund.",
    columns=(
        Column("refund_id", "售后单号", required=True),
        Column("order_id", "订单编号", DIGITS, required=True),
        Column("store_id", "店铺ID", required=True),
        Column("buyer_id", "买家ID", required=True),
        Column("refund_type", "售后类型", ENUM, required=True, values=REFUND_TYPE),
        Column("reason", "售后原因"),
        Column("refund_amount", "退款金额", MONEY),
        Column("shipping_subsidy", "退货运费补贴", MONEY),
        Column("refund_status", "售后状态", ENUM, required=True, values=REFUND_STATUS),
        Column("requested_at", "申请时间", TIMESTAMP, required=True),
        Column("resolved_at", "完结时间", TIMESTAMP),
        Column("updated_at", "更新时间", TIMESTAMP, required=True),
    ),
)

FANS = Entity(
    name="fans",
    zh="粉丝",
    key=("store_id", "fan_id", "snapshot_date"),
    description="A snapshot of a store's followers on the export date.",
    version_column=None,
    columns=(
        Column("snapshot_date", "快照日期", DATE, required=True),
        Column("store_id", "店铺ID", required=True),
        Column("fan_id", "粉丝ID", required=True),
        Column("followed_at", "关注时间", TIMESTAMP),
        Column("is_following", "是否关注", BOOLEAN),
        Column("fan_club_level", "粉丝团等级", INTEGER, min_value=0, max_value=20),
        Column("fan_club_joined_at", "入团时间", TIMESTAMP),
    ),
)

VIOLATIONS = Entity(
    name="violations",
    zh="违规",
    key=("violation_id",),
    description="Governance desk's violation records of stores and streamers.",
    columns=(
        Column("violation_id", "违规单号", required=True),
        Column("store_id", "店铺ID", required=True),
        Column("anchor_id", "主播ID"),
        Column("live_session_id", "直播场次ID"),
        Column("violation_type", "违规类型", ENUM, required=True, values=VIOLATION_TYPE),
        Column("source", "发现来源", ENUM, values=VIOLATION_SOURCE),
        Column("severity", "严重程度", ENUM, values=SEVERITY),
        Column("penalty_points", "扣分", INTEGER, min_value=0),
        Column("penalty_amount", "罚款金额", MONEY),
        Column("violation_status", "处理状态", ENUM, required=True, values=VIOLATION_STATUS),
        Column("detected_at", "发现时间", TIMESTAMP, required=True),
        Column("updated_at", "更新时间", TIMESTAMP, required=True),
    ),
)

ENTITIES: dict[str, Entity] = {
    entity.name: entity for entity in (ORDERS, REFUNDS, FANS, VIOLATIONS)
}

# Lineage columns every raw row carries, after the contract's columns.
LINEAGE_COLUMNS = {
    "_load_id": "varchar",
    "_file_name": "varchar",
    "_export_date": "date",
    "_row_number": "bigint",
    "_loaded_at": "timestamp",
    "_extra": "json",
}
