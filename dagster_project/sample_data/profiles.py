"""Who the sample stores are: the merchant archetypes of MISSION.md as numbers and catalogues.

The store seed (seeds/stores.csv) says who joined the trust program and when; this module adds
how each store sells: its share of orders, live schedule, loyalty, refund habits, violation
risk and items. Everything here is plain data, read by `build.py`.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

STORES_CSV = Path(__file__).resolve().parents[2] / "seeds" / "stores.csv"


@dataclass(frozen=True)
class Item:
    name: str
    price: float
    weight: float
    category: str | None = None  # None: the store's primary category
    fan_only: bool = False  # new releases only for fan-club level >= 5 (露露's rule)


@dataclass(frozen=True)
class Profile:
    order_share: float  # share of all orders
    live_share: float  # share of orders sold in a live session
    video_share: float  # share sold from a short video; the rest is shelf (货架)
    live_day_rate: float  # share of days with a live session
    live_start: str  # HH:MM
    live_minutes: int
    returning_share: float  # share of a late month's orders placed by earlier buyers
    refund_rate: float  # share of paid orders with an after-sales request
    refund_mix: tuple[float, float, float, float]  # 仅退款, 退货退款, 退款不退货, 换货
    subsidy: tuple[int, ...]  # return-shipping subsidy amounts in yuan
    multi_buy: float  # chance of buying more than one piece
    club_threshold: float  # loyalty needed to join the fan club
    club_rate: float  # fan-club levels gained per month of membership at full loyalty
    follow_rate: float  # chance that a buyer follows the store
    non_buyer_fans: float  # followers who never bought, per order
    false_ads: float  # false-advertising violations per month at scale 1
    other_violations: float  # other violations per month at scale 1
    anchors: tuple[str, ...]
    items: tuple[Item, ...]
    short_order_ids: bool = False  # an older order system with 16-digit order ids
    punctual: bool = False  # live sessions start on the minute, every time
    growth_after_refund_without_return: tuple[float, ...] = ()  # order volume by month after
    late_refund_share: float = 0.0  # refunds requested months after delivery
    allergy_share: float = 0.0  # refunds for an allergic reaction (cosmetics, oils)


PROFILES: dict[str, Profile] = {
    # 露露: tea of all six kinds, a loyal fan base, new releases for fan-club level >= 5.
    "S001": Profile(
        order_share=0.13,
        live_share=0.86,
        video_share=0.08,
        live_day_rate=0.6,
        live_start="19:30",
        live_minutes=180,
        returning_share=0.9,
        refund_rate=0.08,
        refund_mix=(0.30, 0.45, 0.20, 0.05),
        subsidy=(10, 12),
        multi_buy=0.25,
        club_threshold=0.25,
        club_rate=1.8,
        follow_rate=0.8,
        non_buyer_fans=0.12,
        false_ads=0.6,
        other_violations=0.3,
        anchors=("91000101", "91000102"),
        items=(
            Item("明前西湖龙井 特级 250g", 368.00, 10),
            Item('福鼎白茶 白牡丹"老树"饼 357g', 268.00, 8),
            Item("安吉白茶 125g", 198.00, 8),
            Item("君山银针 黄茶 50g", 428.00, 4),
            Item("武夷岩茶 大红袍 礼盒装, 2罐", 788.00, 4),
            Item("安溪铁观音 浓香型 500g", 158.00, 10),
            Item("正山小种 红茶 250g", 128.00, 12),
            Item("祁门红茶 200g", 98.00, 10),
            Item("云南普洱熟茶 七子饼 357g", 228.00, 8),
            Item("安化黑茶 金花茯砖 1kg", 168.00, 6),
            Item("露露茶样 六大茶类尝鲜装", 59.90, 10),
            Item("新品首发 | 高山单丛 鸭屎香 100g", 598.00, 6, fan_only=True),
            Item("新品首发 | 头采金骏眉 礼盒", 799.00, 4, fan_only=True),
        ),
    ),
    # 盼姐: low-price cosmetics, refunds any order for any reason.
    "S002": Profile(
        order_share=0.30,
        live_share=0.80,
        video_share=0.12,
        live_day_rate=0.95,
        live_start="20:00",
        live_minutes=240,
        returning_share=0.72,
        refund_rate=0.13,
        refund_mix=(0.35, 0.35, 0.25, 0.05),
        subsidy=(8, 10),
        multi_buy=0.45,
        club_threshold=0.7,
        club_rate=0.8,
        follow_rate=0.35,
        non_buyer_fans=0.06,
        false_ads=5.0,
        other_violations=2.5,
        anchors=("92000201", "92000202", "92000203"),
        late_refund_share=0.06,
        allergy_share=0.15,
        items=(
            Item("氨基酸洗面奶 120g", 39.90, 12),
            Item("玻尿酸补水面膜 10片", 59.00, 12),
            Item('哑光口红"小金条" #316', 79.00, 8),
            Item("持妆粉底液 30ml", 89.00, 8),
            Item("卸妆水 500ml", 49.90, 10),
            Item("眼影盘 12色, 大地色", 69.00, 6),
            Item("防晒霜 SPF50+ 50ml", 99.00, 8),
            Item("烟酰胺精华水 150ml", 129.00, 6),
            Item("双头眉笔", 19.90, 10),
            Item("定妆散粉", 59.90, 8),
            Item("身体乳 400ml", 45.00, 6),
            Item("护手霜 3支装", 29.90, 6),
        ),
    ),
    # 大迪迪: plus-size women's wear for mothers, 50-400 yuan, return shipping subsidised.
    "S003": Profile(
        order_share=0.22,
        live_share=0.85,
        video_share=0.09,
        live_day_rate=0.9,
        live_start="19:00",
        live_minutes=240,
        returning_share=0.70,
        refund_rate=0.15,
        refund_mix=(0.20, 0.50, 0.12, 0.18),
        subsidy=(12, 15, 18),
        multi_buy=0.3,
        club_threshold=0.65,
        club_rate=1.0,
        follow_rate=0.45,
        non_buyer_fans=0.08,
        false_ads=2.5,
        other_violations=1.5,
        anchors=("93000301", "93000302"),
        items=(
            Item("大码连衣裙 200斤可穿", 199.00, 10),
            Item("大码高腰牛仔裤 显瘦", 129.00, 10),
            Item('大码羊毛大衣 "妈妈款"', 399.00, 5),
            Item("大码纯棉T恤, 3件装", 99.00, 12),
            Item("大码针织开衫", 159.00, 8),
            Item("大码阔腿裤", 79.00, 10),
            Item("大码加绒卫衣", 139.00, 8),
            Item("大码羽绒马甲", 259.00, 5),
            Item("大码打底衫", 59.00, 10),
        ),
    ),
    # 鑫鑫: women's wear at 50-80 yuan, live daily from 12:00 for about 4 h, zero violations.
    "S004": Profile(
        order_share=0.15,
        live_share=0.92,
        video_share=0.05,
        live_day_rate=1.0,
        live_start="12:00",
        live_minutes=240,
        returning_share=0.68,
        refund_rate=0.12,
        refund_mix=(0.20, 0.50, 0.12, 0.18),
        subsidy=(10, 12),
        multi_buy=0.3,
        club_threshold=0.6,
        club_rate=1.0,
        follow_rate=0.5,
        non_buyer_fans=0.08,
        false_ads=0.0,
        other_violations=0.0,
        anchors=("94000401",),
        punctual=True,
        items=(
            Item("法式碎花连衣裙", 79.00, 10),
            Item("百搭白衬衫", 59.00, 10),
            Item("高腰直筒裤", 69.00, 10),
            Item('针织开衫 "温柔风"', 75.00, 8),
            Item("A字半身裙, 中长款", 65.00, 8),
            Item("纯棉短袖T恤", 52.00, 12),
            Item("小西装外套", 79.90, 6),
            Item("宽松卫衣", 69.90, 8),
        ),
    ),
    # 晴姐: tea-tree oil; GMV x3 within two months of enabling refund without return.
    "S005": Profile(
        order_share=0.06,
        live_share=0.70,
        video_share=0.18,
        live_day_rate=0.5,
        live_start="20:30",
        live_minutes=120,
        returning_share=0.64,
        refund_rate=0.10,
        refund_mix=(0.30, 0.35, 0.30, 0.05),
        subsidy=(8, 10),
        multi_buy=0.35,
        club_threshold=0.7,
        club_rate=0.8,
        follow_rate=0.4,
        non_buyer_fans=0.06,
        false_ads=3.0,
        other_violations=0.8,
        anchors=("95000501",),
        growth_after_refund_without_return=(1.6, 2.3, 3.0),
        allergy_share=0.15,
        items=(
            Item("澳洲茶树精油 10ml", 59.00, 12),
            Item("茶树精油祛痘凝胶 20g", 49.00, 10),
            Item("茶树洗面奶 100g", 39.90, 10),
            Item('茶树精油 "大瓶装" 30ml', 129.00, 5),
            Item("茶树爽肤水 200ml", 69.00, 8),
            Item("茶树沐浴露 500ml, 家庭装", 59.90, 6),
        ),
    ),
    # 振富: tea, wine and fresh food for about 10k fans, repurchase 94%.
    "S006": Profile(
        order_share=0.06,
        live_share=0.75,
        video_share=0.12,
        live_day_rate=0.6,
        live_start="18:30",
        live_minutes=150,
        returning_share=0.9,
        refund_rate=0.09,
        refund_mix=(0.35, 0.15, 0.45, 0.05),
        subsidy=(10,),
        multi_buy=0.3,
        club_threshold=0.35,
        club_rate=1.2,
        follow_rate=0.75,
        non_buyer_fans=0.1,
        false_ads=1.5,
        other_violations=1.0,
        anchors=("96000601", "96000602"),
        items=(
            Item("阳澄湖大闸蟹礼券 8只", 398.00, 5),
            Item("赣南脐橙 5kg", 49.90, 12),
            Item("五常大米 10kg", 89.00, 8),
            Item("散养土鸡蛋 30枚", 39.90, 10),
            Item("武夷肉桂 岩茶 250g", 168.00, 6, category="茶叶"),
            Item('绍兴黄酒 "十年陈" 500ml×6', 198.00, 5, category="酒水"),
            Item("高山云雾绿茶 250g", 88.00, 6, category="茶叶"),
            Item("冰鲜三文鱼 500g", 129.00, 6),
            Item("阿克苏冰糖心苹果 5kg", 59.90, 10),
        ),
    ),
    # 阿强: a snack shop that never joined the trust program.
    "S007": Profile(
        order_share=0.08,
        live_share=0.60,
        video_share=0.25,
        live_day_rate=0.4,
        live_start="21:00",
        live_minutes=120,
        returning_share=0.45,
        refund_rate=0.08,
        refund_mix=(0.45, 0.45, 0.0, 0.10),
        subsidy=(8,),
        multi_buy=0.4,
        club_threshold=0.85,
        club_rate=0.5,
        follow_rate=0.25,
        non_buyer_fans=0.04,
        false_ads=3.0,
        other_violations=2.0,
        anchors=("97000701",),
        short_order_ids=True,
        items=(
            Item("麻辣牛肉干 200g", 39.90, 10),
            Item("每日坚果 30袋", 99.00, 8),
            Item('靖江猪肉脯 "蜜汁" 258g', 29.90, 10),
            Item("辣条大礼包, 50包", 25.90, 10),
            Item("手撕面包 2kg", 32.90, 8),
            Item("卤味鸭脖组合", 45.00, 8),
        ),
    ),
}

# Pieces of realistic receiver addresses; some carry ASCII commas and quotes on purpose.
REGIONS = (
    "北京市北京市朝阳区",
    "北京市北京市海淀区",
    "上海市上海市浦东新区",
    "上海市上海市闵行区",
    "天津市天津市南开区",
    "重庆市重庆市渝北区",
    "广东省广州市天河区",
    "广东省深圳市南山区",
    "广东省东莞市南城街道",
    "广东省佛山市顺德区",
    "浙江省杭州市西湖区",
    "浙江省宁波市鄞州区",
    "浙江省温州市鹿城区",
    "江苏省南京市鼓楼区",
    "江苏省苏州市吴中区",
    "江苏省无锡市滨湖区",
    "山东省济南市历下区",
    "山东省青岛市黄岛区",
    "山东省临沂市兰山区",
    "河南省郑州市金水区",
    "河南省洛阳市西工区",
    "河北省石家庄市长安区",
    "湖北省武汉市洪山区",
    "湖南省长沙市岳麓区",
    "四川省成都市武侯区",
    "四川省绵阳市涪城区",
    "福建省福州市鼓楼区",
    "福建省厦门市思明区",
    "安徽省合肥市蜀山区",
    "江西省南昌市红谷滩区",
    "陕西省西安市雁塔区",
    "辽宁省沈阳市和平区",
    "吉林省长春市朝阳区",
    "黑龙江省哈尔滨市南岗区",
    "云南省昆明市五华区",
    "广西壮族自治区南宁市青秀区",
    "贵州省贵阳市观山湖区",
    "山西省太原市小店区",
    "内蒙古自治区呼和浩特市赛罕区",
    "新疆维吾尔自治区乌鲁木齐市天山区",
)
STREETS = (
    "人民路",
    "建设路",
    "解放路",
    "中山路",
    "文化路",
    "和平街",
    "朝阳路",
    "长江路",
    "黄河路",
    "新华街",
    "青年路",
    "胜利路",
    "光明路",
    "幸福大道",
    "科技园路",
    "滨江大道",
    "学府路",
    "工业园区创业路",
    "迎宾大道",
    "府前街",
)
COMMUNITIES = (
    "阳光花园",
    '"幸福里"小区',
    "锦绣江南, 三期",
    "翠苑新村",
    "碧桂园",
    "万科城",
    "金色家园",
    "御景湾",
    "绿地世纪城",
    "春晓苑",
    "和谐家园",
    "保利香槟国际",
    "东方明珠苑",
    "滨湖新城",
    "职工宿舍",
    "世纪华庭",
)
ADDRESS_NOTES = (
    "",
    "",
    "",
    "",
    "",
    ", 放门口",
    '（"菜鸟驿站"代收）',
    ", 丰巢快递柜",
    ", 工作日送公司",
)
PHONE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "176",
    "177",
    "178",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "199",
)

REFUND_REASONS = {  # reasons per refund type, most likely first
    "仅退款": ("七天无理由", "物流问题", "其他", "与描述不符"),
    "退货退款": ("七天无理由", "质量问题", "与描述不符", "其他"),
    "退款不退货": ("质量问题", "物流问题", "与描述不符", "其他"),
    "换货": ("质量问题", "七天无理由", "与描述不符", "其他"),
}


@dataclass(frozen=True)
class Store:
    num: int  # 1-based position in the seed
    store_id: str
    store_name: str
    category: str
    trust_joined: date | None
    refund_without_return: date | None
    shipping_subsidy: date | None
    civility_signed: date | None
    profile: Profile


def _date(text: str) -> date | None:
    return date.fromisoformat(text) if text.strip() else None


def load_stores(path: Path = STORES_CSV) -> list[Store]:
    """The store seed joined to its archetype; stores without a profile are not generated."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    stores = []
    for num, row in enumerate(rows, start=1):
        profile = PROFILES.get(row["store_id"])
        if profile is None:
            continue
        stores.append(
            Store(
                num=num,
                store_id=row["store_id"],
                store_name=row["store_name"],
                category=row["primary_category"],
                trust_joined=_date(row["trust_program_joined_date"]),
                refund_without_return=_date(row["refund_without_return_enabled_date"]),
                shipping_subsidy=_date(row["shipping_subsidy_enabled_date"]),
                civility_signed=_date(row["civility_convention_signed_date"]),
                profile=profile,
            )
        )
    return stores


def item_id(store: Store, index: int) -> str:
    """A stable 19-digit product id, independent of the seed."""
    digest = int(hashlib.sha1(f"{store.store_id}/{index}".encode()).hexdigest(), 16)
    return f"3{store.num:02d}{index:03d}{digest % 10**13:013d}"
