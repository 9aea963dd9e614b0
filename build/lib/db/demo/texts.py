"""Realistic Chinese event text for the demo generator (Qt-free, deterministic given an rng).

``TEMPLATES`` maps every leaf category code of ``resources/catalogue/categories.csv`` (and
``UNCLASSIFIED``) to (title, description) pairs written in the voice of residents, 12345 hotline
operators, grid workers and IoT platforms. Placeholders:

``{road}`` ``{estate}`` ``{junction}`` ``{shoreline}`` ``{station}`` location words, normally given
by the caller in ``fill``; ``{building}`` (楼号, "12幢"), ``{room}`` ("1203室"), ``{name}``,
``{phone}``, ``{count}``, ``{shop}``, ``{plate}`` (licence plate), ``{device}`` (sensor id) are
generated when ``fill`` does not give them.

All people, phone numbers, ID numbers, shops and plates are synthetic.
"""

from __future__ import annotations

import datetime as _dt
import random
import string

from db.catalogue import UNCLASSIFIED

TITLE_MAX = 40

# --- synthetic people -------------------------------------------------------------------------

PERSON_SURNAMES: tuple[str, ...] = tuple(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏付方邹孟熊秦邱江尹薛段雷侯史陶贺顾毛龚邵钱严"
    "戴施季缪瞿葛仇管"
)
GIVEN_CHARS: tuple[str, ...] = tuple(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌宁辉鹏飞丹玲凤海燕"
    "晓梅春雪琴云莲荣新俊峰波宇浩然子涵欣怡梓轩雨彤佳琪思远振东德福寿永祥根宝金凤美珍淑"
)

_MOBILE_PREFIXES: tuple[str, ...] = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
    "150", "151", "152", "153", "155", "156", "157", "158", "159",
    "166", "177", "180", "181", "182", "183", "185", "186", "187", "188", "189", "198", "199",
)

ID_REGION = "320613"
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def fake_name(rng: random.Random) -> str:
    """A synthetic 2–3 character Chinese name (about 70 % have two given characters)."""
    n_given = 2 if rng.random() < 0.7 else 1
    return rng.choice(PERSON_SURNAMES) + "".join(rng.choice(GIVEN_CHARS) for _ in range(n_given))


def fake_phone(rng: random.Random) -> str:
    """A synthetic 11-digit mainland mobile number (13x/15x/18x/…)."""
    return rng.choice(_MOBILE_PREFIXES) + "".join(rng.choice(string.digits) for _ in range(8))


def id_checksum(first17: str) -> str:
    """GB 11643 check character for the first 17 digits of a resident ID number."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need 17 digits")
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def is_valid_id_no(id_no: str) -> bool:
    """True when ``id_no`` is 18 characters with a valid date and check character."""
    if len(id_no) != 18 or not id_no[:17].isdigit():
        return False
    try:
        _dt.date(int(id_no[6:10]), int(id_no[10:12]), int(id_no[12:14]))
    except ValueError:
        return False
    return id_checksum(id_no[:17]) == id_no[17].upper()


def fake_id_no(rng: random.Random, birth_years: tuple[int, int] = (1935, 2005)) -> str:
    """A synthetic 18-character PRC resident ID: region 320613, plausible birth date, valid checksum."""
    start = _dt.date(birth_years[0], 1, 1).toordinal()
    end = _dt.date(birth_years[1], 12, 31).toordinal()
    born = _dt.date.fromordinal(rng.randint(start, end))
    first17 = f"{ID_REGION}{born:%Y%m%d}{rng.randint(1, 999):03d}"
    return first17 + id_checksum(first17)


# --- fallback place words (generic; the demo generator normally passes real places) -----------

_FALLBACK_ROADS = ("幸福路", "和平路", "建设路", "新华路", "文化路", "光明路", "团结路", "育才路", "胜利路", "友谊路")
_FALLBACK_ESTATES = ("幸福新村", "和平小区", "建设新村", "光明花苑", "文化里小区", "团结新村", "育才苑", "友谊小区")
_FALLBACK_SHORELINES = ("滨江步道", "沿江防汛堤", "江边旧码头", "入江河口", "江滩芦苇荡", "沿江绿带")
_SHOP_KINDS = ("面馆", "烧烤店", "水果店", "便利店", "理发店", "小吃店", "饭店", "五金店", "超市", "早餐店",
               "洗车店", "麻辣烫店", "烟酒店", "快餐店", "服装店", "干洗店")
_SHOP_WORDS = ("鑫源", "惠民", "家家乐", "好再来", "福满园", "兴隆", "聚源", "顺发", "万家", "百味")
_PLATE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def _fake_shop(rng: random.Random) -> str:
    style = rng.randrange(3)
    if style == 0:
        prefix = rng.choice(PERSON_SURNAMES) + "记"
    elif style == 1:
        prefix = "老" + rng.choice(PERSON_SURNAMES)
    else:
        prefix = rng.choice(_SHOP_WORDS)
    return prefix + rng.choice(_SHOP_KINDS)


def _generate(key: str, rng: random.Random) -> str:
    if key == "name":
        return fake_name(rng)
    if key == "phone":
        return fake_phone(rng)
    if key == "building":
        return f"{rng.randint(1, 48)}幢"
    if key == "room":
        return f"{rng.randint(1, 18)}{rng.randint(1, 4):02d}室"
    if key == "count":
        return str(rng.randint(2, 15))
    if key == "shop":
        return _fake_shop(rng)
    if key == "plate":
        return "苏F" + "".join(rng.choice(_PLATE_CHARS) for _ in range(5))
    if key == "device":
        return f"CC{rng.randint(0, 999999):06d}"
    if key == "road":
        return rng.choice(_FALLBACK_ROADS)
    if key == "estate":
        return rng.choice(_FALLBACK_ESTATES)
    if key == "junction":
        a, b = rng.sample(_FALLBACK_ROADS, 2)
        return f"{a}与{b}交叉口"
    if key == "shoreline":
        return "长江" + rng.choice(_FALLBACK_SHORELINES)
    if key == "station":
        return f"长江沿岸{rng.randint(1, 12)}号水质监测站"
    raise KeyError(f"no generator for placeholder {{{key}}}")


GENERATED_KEYS = frozenset({"name", "phone", "building", "room", "count", "shop", "plate", "device",
                            "road", "estate", "junction", "shoreline", "station"})

# --- templates --------------------------------------------------------------------------------

T = list[tuple[str, str]]

TEMPLATES: dict[str, T] = {
    UNCLASSIFIED: [
        ("市民来电反映{road}相关问题", "来电人反映{road}附近存在问题，具体情况表述不清，需进一步核实。联系电话{phone}。"),
        ("{estate}居民反映问题待核实", "{estate}居民通过网格通反映小区内有情况需要处理，描述不详，请网格长上门了解。"),
        ("网格员上报其他事项", "网格员巡查时在{road}发现一处情况，暂无法判断归属，请中心研判后分拨。"),
        ("群众咨询求助", "群众{name}来电咨询求助，诉求涉及多个部门，请中心先行受理后分类派遣。"),
    ],
    # 市容环境
    "ENV.GARBAGE": [
        ("{estate}垃圾桶满溢", "{estate}{building}旁边的垃圾桶已经满了，垃圾堆到地上，天热有异味，请尽快清运。"),
        ("{road}垃圾箱满溢未清运", "{road}沿线{count}个垃圾箱满溢，已有两天没人清运，影响市容。"),
        ("{estate}垃圾分类投放点满溢", "网格长巡查发现{estate}垃圾分类投放点满溢，周边散落垃圾，需环卫加派车辆清运。"),
        ("{shop}门口垃圾桶满溢", "{shop}门口垃圾桶满溢，苍蝇很多，居民{name}多次反映未解决，联系电话{phone}。"),
    ],
    "ENV.LITTER": [
        ("{road}路面垃圾较多", "{road}人行道上有较多纸屑、塑料袋等垃圾，请安排保洁。"),
        ("{junction}路面有油污", "{junction}路面有大片油污，雨天容易打滑，电动车经过很危险。"),
        ("{estate}门口道路脏乱", "{estate}南门口道路脏乱，落叶和垃圾无人清扫，居民意见较大。"),
        ("{road}公交站附近乱扔垃圾", "市民{name}反映{road}公交站附近经常有人乱扔垃圾，希望加强保洁和宣传，联系电话{phone}。"),
    ],
    "ENV.DEBRIS": [
        ("{estate}堆放装修垃圾", "{estate}{building}楼下堆放大量装修垃圾，已经一个多星期无人清理。"),
        ("{road}绿化带旁积存渣土", "{road}绿化带旁堆有约{count}方建筑渣土，没有遮盖，起风时扬尘严重。"),
        ("{estate}空地积存生活垃圾", "网格员巡查发现{estate}围墙边空地积存生活垃圾，面积较大，需要组织清理。"),
        ("{estate}大件垃圾无人清运", "{estate}{building}楼下丢弃旧沙发、床垫等大件垃圾，物业一直没清运，居民{name}反映，电话{phone}。"),
    ],
    "ENV.CARCASS": [
        ("{road}路面有动物尸体", "{road}非机动车道上有一只死猫，已被车辆碾压，请尽快清理。"),
        ("{estate}旁河道漂浮死鱼", "{estate}旁边小河里漂着不少死鱼，气味很大，居民{name}反映，联系电话{phone}。"),
        ("{estate}绿化带内有死狗", "{estate}{building}附近绿化带内有一只死狗，已有异味，请环卫处理。"),
    ],
    "ENV.TOILET": [
        ("{road}公厕脏乱有异味", "{road}公共厕所卫生差，地面积水，异味很大，洗手池没有水。"),
        ("{road}公厕门锁损坏", "{road}公厕女厕门锁坏了，隔间门关不上，请尽快维修。"),
        ("{estate}附近公厕未按时开放", "{estate}附近公厕早上7点还没开门，晨练老人如厕不便，市民{name}反映，电话{phone}。"),
    ],
    "ENV.DRYING": [
        ("{road}沿街晾晒衣物", "{road}沿街商铺在行道树之间拉绳晾晒衣物，影响市容。"),
        ("{estate}临街阳台晾挂被褥", "{estate}{building}临街一侧多户在防盗窗外晾挂被褥，影响市容，请城管劝导。"),
        ("{shop}门口晾晒杂物", "{shop}在门口人行道上晾晒腊货和拖把，影响行人通行。"),
        ("{road}人行道晾晒被子", "{road}沿街住户把被子晾在人行道护栏上，行人经过很不方便，市民{name}反映，电话{phone}。"),
    ],
    # 公用设施
    "FAC.MANHOLE": [
        ("{road}井盖缺失", "{road}人行道上一个窨井盖缺失，晚上看不清，容易有人掉下去，请尽快处理！"),
        ("{junction}井盖破损", "{junction}机动车道上井盖破裂，车辆经过时响声很大，存在安全隐患。"),
        ("{estate}小区内井盖松动", "{estate}{building}门口井盖松动翘起，已有老人绊倒，家属{name}反映，联系电话{phone}。"),
        ("{road}井盖下沉", "网格长巡查发现{road}井盖下沉约5厘米，已设置临时警示，请市政尽快修复。"),
    ],
    "FAC.STREETLIGHT": [
        ("{road}路灯不亮", "{road}有{count}盏路灯晚上不亮，路段很黑，行人和电动车通行不安全。"),
        ("{estate}门口路灯坏了", "{estate}东门口路灯坏了好几天了，晚上回家很黑，请尽快维修。"),
        ("{junction}路灯白天常亮", "{junction}路灯白天一直亮着，浪费电，请检查控制设备。"),
        ("{road}路灯杆倾斜", "{road}一根路灯杆被车撞后倾斜，灯罩掉落，存在倒伏隐患。"),
        ("{estate}旁小路路灯不亮", "{estate}旁边小路路灯不亮，晚上下班回家不安全，来电人{name}，电话{phone}。"),
    ],
    "FAC.WATERPIPE": [
        ("{road}自来水管爆裂", "{road}人行道下自来水管爆裂，水往外冒，路面已经积水。"),
        ("{estate}水表井漏水", "{estate}{building}楼下水表井漏水好几天了，浪费严重，居民{name}反映，联系电话{phone}。"),
        ("{junction}路面渗水", "{junction}路面持续渗水，怀疑地下供水管道破损，请供水部门检查。"),
    ],
    "FAC.DRAIN": [
        ("{road}下水道堵塞", "{road}路边下水道堵塞，一下雨就积水，污水漫到人行道上。"),
        ("{estate}窨井堵塞冒水", "{estate}{building}门口窨井堵塞，污水外溢，臭味很大。"),
        ("{road}雨水箅子被堵", "网格员巡查发现{road}雨水箅子被落叶和垃圾堵住，汛期前需要清掏。"),
        ("{estate}化粪池外溢", "{estate}{building}化粪池满溢，粪水流到路上，居民{name}反映，电话{phone}。"),
    ],
    "FAC.CABLE": [
        ("{road}线缆垂落", "{road}电杆上的通信线缆垂落到离地面不到两米，行人经过容易被绊到。"),
        ("{estate}外墙线缆杂乱", "{estate}{building}外墙通信线缆杂乱，有一根已经掉下来挂在窗户上。"),
        ("{junction}线缆横跨道路下垂", "{junction}有一根线缆横跨道路下垂，大货车经过可能挂断，请尽快处理。"),
    ],
    "FAC.POWERBOX": [
        ("{road}配电箱门敞开", "{road}路边配电箱柜门敞开，里面线路裸露，附近有小孩玩耍，很危险。"),
        ("{estate}变压器有异响", "{estate}{building}旁边的变压器有嗡嗡异响，居民担心安全，联系人{name}，电话{phone}。"),
        ("{road}电线杆倾斜", "{road}一根电线杆被车撞后倾斜，请供电部门尽快处理。"),
    ],
    # 道路交通
    "ROAD.SIGNAL": [
        ("{junction}信号灯看不清", "{junction}信号灯看不清，行人过马路很危险，请尽快处理。"),
        ("{junction}信号灯故障", "{junction}红绿灯不亮，路口车辆通行混乱。"),
        ("{junction}行人绿灯时间太短", "{junction}行人绿灯只有十几秒，老人过马路走不过去，建议延长。市民{name}，电话{phone}。"),
        ("{junction}信号灯被树枝遮挡", "{junction}东西方向的信号灯被树枝挡住，司机看不到。"),
    ],
    "ROAD.PAVEMENT": [
        ("{road}路面坑洼", "{road}机动车道上有一个大坑，下雨后积水看不见，电动车容易摔倒。"),
        ("{junction}路面破损", "{junction}路面大面积破损开裂，车辆经过颠簸严重。"),
        ("{estate}门口道路坑洼", "{estate}门口道路坑坑洼洼，下雨天全是积水，居民出行不便，{name}反映，电话{phone}。"),
        ("{road}路面拱起", "网格长巡查发现{road}路面拱起约10厘米，已影响车辆通行，请尽快修复。"),
    ],
    "ROAD.SIDEWALK": [
        ("{road}人行道板松动", "{road}人行道板松动，踩上去会溅水，已有行人摔倒。"),
        ("{road}盲道砖缺失", "{road}盲道砖缺失{count}块，盲人通行存在隐患。"),
        ("{estate}门口人行道破损", "{estate}门口人行道板破损翘起，老人推车经过很不方便。"),
        ("{road}人行道塌陷积水", "{road}人行道一段塌陷积水，老人推车只能走机动车道，来电人{name}，电话{phone}。"),
    ],
    "ROAD.SIGN": [
        ("{junction}交通标志牌倒了", "{junction}一块交通标志牌被撞倒在路边，请及时扶正。"),
        ("{road}斑马线模糊", "{road}学校门口斑马线模糊不清，车辆不减速，学生过马路不安全。"),
        ("{road}限速牌被遮挡", "{road}限速标志被广告横幅挡住，请相关部门处理。"),
        ("{road}缺少学校区域提示牌", "{road}学校附近缺少减速慢行提示牌，家长{name}希望尽快设置，电话{phone}。"),
    ],
    "ROAD.BUSSTOP": [
        ("{road}公交站亭玻璃破碎", "{road}公交站亭玻璃被打碎，碎片散落一地，容易伤人。"),
        ("{road}公交站牌信息过时", "{road}公交站牌上的线路信息已经过时，乘客容易坐错车，市民{name}反映，电话{phone}。"),
        ("{road}公交站座椅损坏", "{road}公交站的座椅损坏，老人候车没地方坐。"),
    ],
    # 园林绿化
    "GREEN.DAMAGE": [
        ("{estate}毁绿种菜", "{estate}{building}旁边的公共绿地被居民开垦种菜，还用粪水浇灌，气味难闻。"),
        ("{road}绿化带被踩踏", "{road}绿化带被行人踩出一条小路，绿植损毁严重。"),
        ("{estate}绿地被占用停车", "{estate}公共绿地被车辆碾压占用停车，草坪已经秃了，居民{name}反映，电话{phone}。"),
    ],
    "GREEN.TREE": [
        ("{road}行道树枯死", "{road}有{count}棵行道树已经枯死，树枝随时可能掉落砸到行人。"),
        ("{estate}大树倾斜", "{estate}{building}旁一棵大树严重倾斜，靠着居民楼，担心刮风时倒下。"),
        ("{road}树木倾斜压住电线", "{road}一棵树倾斜压住了电线，存在安全隐患，请尽快处理。"),
        ("{estate}枯树断枝砸车", "{estate}{building}旁枯树断枝掉落砸到车辆，车主{name}要求尽快处理，电话{phone}。"),
    ],
    "GREEN.PRUNE": [
        ("{estate}树枝遮挡窗户", "{estate}{building}楼前树木太高，遮挡低层住户采光，希望修剪，联系人{name}，电话{phone}。"),
        ("{junction}树枝遮挡监控", "{junction}树枝遮挡了路口监控探头和信号灯，请园林部门修剪。"),
        ("{road}树枝遮挡路灯", "{road}行道树枝叶茂密，把路灯全部挡住，晚上路面很暗。"),
    ],
    # 街面秩序
    "ORDER.EBIKE": [
        ("电瓶车占用{estate}道路", "电瓶车占用{estate}道路，影响正常通行。"),
        ("{road}人行道电瓶车乱停", "{road}人行道上停满电瓶车，行人只能走机动车道，很危险。"),
        ("{estate}{building}门口电瓶车堵路", "{estate}{building}门口停了{count}辆电瓶车，把单元门堵住了，老人进出困难。"),
        ("{shop}门口电瓶车占道", "{shop}门口电瓶车乱停，占用盲道，请城管劝导规范停放。市民{name}，电话{phone}。"),
    ],
    "ORDER.BIKE": [
        ("{road}共享单车乱停", "{road}地铁口共享单车堆放无序，占满人行道，行人无法通行。"),
        ("{junction}共享单车堆积", "{junction}共享单车堆积几十辆，有的倒在机动车道上。"),
        ("{estate}门口共享单车堵门", "{estate}门口共享单车乱停，堵住小区出入口，请运营企业清运。"),
        ("{road}公交站共享单车堵路", "{road}公交站台被共享单车堵住，乘客上下车困难，市民{name}反映，电话{phone}。"),
    ],
    "ORDER.VENDOR": [
        ("{road}流动摊贩占道", "{road}有流动摊贩占道卖水果，早晚高峰造成交通拥堵。"),
        ("{estate}门口早市占道", "{estate}门口每天早上有摊贩占道经营，垃圾遍地，居民出行不便。"),
        ("{junction}夜间烧烤摊占道", "{junction}夜间有烧烤摊占道经营，油烟大，桌椅摆到非机动车道上。"),
        ("{road}学校门口流动摊点", "{road}学校门口有{count}个流动摊点卖小吃，食品卫生没保障，家长{name}反映，电话{phone}。"),
    ],
    "ORDER.SHOPFRONT": [
        ("{shop}店外经营", "{shop}把货架摆到店门外人行道上经营，占道严重。"),
        ("{road}多家商铺出店经营", "网格长巡查发现{road}沿街{count}家商铺出店经营，已现场劝导，需城管跟进。"),
        ("{shop}门前洗车占道", "{shop}在门前人行道上洗车，污水横流，行人无法通过。"),
        ("{shop}占用人行道摆摊", "{shop}每天把桌椅摆到人行道上，行人只能绕行，居民{name}反映，电话{phone}。"),
    ],
    "ORDER.PARKING": [
        ("{road}机动车违停", "{road}机动车违停严重，双向车道只剩一条，公交车过不去。"),
        ("{estate}消防车道被私家车占用", "{estate}{building}前消防车道被私家车长期占用，车牌号{plate}。"),
        ("{junction}车辆违停影响通行", "{junction}有车辆违停在路口转弯处，遮挡视线，容易出事故。"),
        ("{shop}门口车辆乱停", "{shop}门口车辆乱停，堵住小区出入口，居民{name}反映，电话{phone}。"),
    ],
    "ORDER.ABANDONED": [
        ("{estate}僵尸车长期占用车位", "{estate}{building}楼下一辆车牌号{plate}的轿车一年多未移动，落满灰尘，轮胎瘪了。"),
        ("{road}路边僵尸车", "{road}路边有一辆无牌面包车长期停放，车内堆满杂物。"),
        ("{estate}废弃电动车堆放", "{estate}车棚内有{count}辆废弃电动车长期无人认领，占用空间，存在火灾隐患。"),
    ],
    # 宣传广告
    "AD.FLYER": [
        ("{estate}楼道小广告", "{estate}{building}楼道墙上贴满开锁、疏通管道的小广告，请清理。"),
        ("{road}电线杆小广告", "{road}电线杆和配电箱上贴满小广告，影响市容。"),
        ("{road}路口散发传单", "{road}有人在路口向行人散发传单，地上到处是传单。"),
        ("{estate}门缝塞满小广告", "{estate}{building}各家门缝经常被塞小广告，居民{name}担心有人借机踩点，电话{phone}。"),
    ],
    "AD.BILLBOARD": [
        ("{road}楼顶广告牌破损", "{road}楼顶广告牌面布破损，刮风时随风飘动，担心掉下来。"),
        ("{junction}违规设置广告牌", "{junction}路边新立了一块大型广告牌，遮挡行人视线，不知道有没有审批。"),
        ("{road}占道立式广告", "{road}多家店铺在人行道上摆放立式广告牌，影响行人通行。"),
    ],
    "AD.SIGNBOARD": [
        ("{shop}店招松动", "{shop}店招一侧固定螺丝松脱，招牌倾斜，下面就是人行道，很危险！"),
        ("{road}店招部分脱落", "{road}一家店铺的店招部分脱落悬挂在半空，请尽快处置。"),
        ("{shop}店招灯箱冒火花", "{shop}店招灯箱下雨时冒火花，怀疑漏电，路过的市民{name}反映，电话{phone}。"),
    ],
    # 施工管理
    "BUILD.DUST": [
        ("{road}工地扬尘", "{road}工地土方作业没有洒水，扬尘很大，附近居民不敢开窗。"),
        ("{estate}旁工地渣土未覆盖", "{estate}旁边工地渣土堆放未覆盖防尘网，刮风时灰尘漫天。"),
        ("{road}工地车辆带泥上路", "{road}工地出口没有冲洗设施，车辆带泥上路，路面全是泥土。"),
        ("{estate}旁拆迁工地扬尘", "{estate}旁边拆迁工地拆房不洒水，灰尘飘进家里，居民{name}反映，电话{phone}。"),
    ],
    "BUILD.NIGHT": [
        ("{estate}附近夜间施工扰民", "{estate}附近工地晚上11点后还在施工，机器声音很大，影响休息。居民{name}，电话{phone}。"),
        ("{road}凌晨施工噪音", "{road}凌晨2点还在打桩，噪音扰民，请核实是否办理夜间施工许可。"),
        ("{estate}旁工地夜间浇筑", "{estate}旁工地夜间混凝土浇筑，泵车声音很大，居民投诉较多。"),
    ],
    "BUILD.SPILL": [
        ("{road}渣土车撒漏", "{road}有渣土车沿途撒漏，路面泥土一长条，车牌号{plate}。"),
        ("{junction}渣土车未密闭", "{junction}渣土车车厢未密闭，转弯时泥土掉落。"),
        ("{road}路面泥浆", "{road}夜间渣土车撒漏，早上路面全是泥浆，电动车打滑。"),
        ("{junction}泥浆车漏浆", "{junction}泥浆车漏浆，路面又滑又脏，电动车摔倒，目击市民{name}，电话{phone}。"),
    ],
    "BUILD.DIGGING": [
        ("{road}违规开挖人行道", "{road}有施工队开挖人行道，没有围挡和警示标志，不知道是否经过审批。"),
        ("{junction}开挖后未恢复", "{junction}管线开挖后只简单回填，一直没有恢复路面，坑洼不平。"),
        ("{estate}门口道路被挖开", "{estate}门口道路被挖开一个多星期，居民进出只能绕行，市民{name}反映，电话{phone}。"),
    ],
    "BUILD.RENOVATION": [
        ("{estate}{building}装修拆改承重墙", "{estate}{building}{room}装修时拆除承重墙，楼下住户担心房屋安全。"),
        ("{estate}装修时间扰民", "{estate}{building}{room}装修周末早上7点就开始电钻，影响邻居休息。"),
        ("{estate}{building}违规外扩阳台", "{estate}{building}{room}装修时外扩阳台，已超出原建筑外墙。"),
        ("{estate}装修破坏防水层", "{estate}{building}住户{name}反映楼上{room}装修破坏防水层，家里天花板渗水，电话{phone}。"),
    ],
    # 突发事件
    "EMG.FIRE": [
        ("{estate}{building}起火", "{estate}{building}{room}冒出浓烟，有明火，楼内可能有人，请立即出警！"),
        ("{road}沿街商铺起火", "{road}一家沿街商铺起火，火势较大，已拨打119。"),
        ("{estate}车棚电瓶车起火", "{estate}{building}车棚内电瓶车起火，烟很大，居民正在用灭火器扑救。"),
        ("{road}垃圾堆起火", "网格长巡查发现{road}路边垃圾堆起火，已使用灭火器初步处置，请消防到场确认。"),
    ],
    "EMG.GASLEAK": [
        ("{estate}{building}燃气泄漏", "{estate}{building}楼道里有很浓的煤气味，怀疑燃气泄漏，居民已开窗通风。"),
        ("{shop}液化气罐泄漏", "{shop}后厨液化气罐阀门泄漏，已疏散店内人员，请燃气和消防立即到场。"),
        ("{road}燃气管道被挖断", "{road}施工时挖断燃气管道，大量燃气泄漏，周边需紧急疏散。"),
        ("{estate}独居老人家中燃气味浓", "{estate}{building}{room}独居老人{name}家中燃气味很浓，敲门无人应答，家属电话{phone}。"),
    ],
    "EMG.COLLAPSE": [
        ("{road}路面塌陷", "{road}机动车道路面突然塌陷，坑深约1米，已有车辆陷入，请立即处置！"),
        ("{junction}井盖塌陷", "{junction}窨井盖连同周边路面塌陷，已用锥桶临时围挡。"),
        ("{estate}小区道路塌陷", "{estate}{building}前道路出现塌陷坑，面积约{count}平方米，仍在扩大。"),
    ],
    "EMG.ACCIDENT": [
        ("{junction}发生交通事故", "{junction}一辆货车与电动车相撞，有人受伤倒地，已拨打120。"),
        ("{road}多车追尾", "{road}发生{count}车追尾事故，道路严重拥堵，有人员被困。"),
        ("{junction}渣土车侧翻", "{junction}一辆渣土车转弯时侧翻，压住路边护栏，请交警、消防到场。"),
    ],
    "EMG.VIOLENCE": [
        ("{shop}门口打架斗殴", "{shop}门口有多人打架，有人持械，已有人受伤，请立即出警！"),
        ("{estate}邻里冲突升级", "{estate}{building}两户邻居因纠纷发生肢体冲突，情绪激动，网格长已到场劝阻。"),
        ("{road}聚众斗殴", "{road}烧烤摊附近十几人聚众斗殴，场面混乱。"),
    ],
    "EMG.BUILDING": [
        ("{estate}{building}墙体开裂", "{estate}{building}外墙出现大面积裂缝，有墙皮掉落，居民担心房屋倒塌。"),
        ("{road}老房屋顶坍塌", "{road}一处老旧平房屋顶部分坍塌，屋内有老人居住，请尽快转移。"),
        ("{estate}阳台板断裂", "{estate}{building}{room}阳台板断裂下坠，下方为人行通道，急需封控。"),
    ],
    "EMG.HAZMAT": [
        ("{road}危化品车辆泄漏", "{road}一辆危化品运输车发生泄漏，现场有刺鼻气味，需疏散周边群众。"),
        ("{road}不明液体泄漏", "{road}路面有大片不明液体，气味刺鼻，附近居民感到头晕。"),
        ("{estate}附近仓库化学品泄漏", "{estate}附近一家企业仓库疑似化学品泄漏，冒出黄色烟雾。"),
    ],
    "EMG.ELEVATOR": [
        ("{estate}{building}电梯困人", "{estate}{building}电梯停在两层之间，里面困了{count}个人，有老人和小孩。"),
        ("{estate}电梯突然下坠", "{estate}{building}电梯运行中突然下坠后停住，有人被困，情绪紧张。"),
        ("{road}商场电梯困人", "{road}商场电梯故障困人，已联系维保单位尚未到场，被困人员{name}，电话{phone}。"),
    ],
    # 民生服务
    "LIVE.ELDERLY": [
        ("{estate}独居老人需要帮扶", "{estate}{building}独居老人{name}反映家中无人照料，需要上门帮扶，联系电话{phone}。"),
        ("{estate}独居老人行动不便", "{estate}{building}{room}独居老人腿脚不便，最近天冷，需要帮忙买菜配药。"),
        ("{estate}独居老人多日未出门", "邻居反映{estate}{building}独居老人两天没见出门，打电话无人接，请网格长上门查看。"),
        ("{estate}高龄老人助餐需求", "{estate}{building}一位93岁独居老人子女不在身边，希望社区提供助餐服务，家属{name}，电话{phone}。"),
    ],
    "LIVE.HARDSHIP": [
        ("{estate}困难家庭求助", "{estate}{building}{room}住户{name}家中有重病患者，生活困难，希望申请救助，联系电话{phone}。"),
        ("{estate}低保户房屋漏雨", "{estate}{building}一低保户家中屋顶漏雨，无力维修，请求帮助。"),
        ("{estate}失业家庭生活困难", "网格长走访发现{estate}一户居民夫妻均失业，孩子上学，生活困难，建议纳入临时救助。"),
    ],
    "LIVE.DISABLED": [
        ("{estate}残疾人出行困难", "{estate}{building}一名残疾居民坐轮椅，单元门口台阶无法通行，希望加装坡道。"),
        ("{estate}残疾人辅具申请", "{estate}残疾居民{name}希望申请适配辅助器具，不清楚办理流程，电话{phone}。"),
        ("{estate}重度残疾人照护困难", "网格长走访发现{estate}{building}一名重度残疾人家属年迈，照护困难，需要社会组织介入。"),
    ],
    "LIVE.VETERAN": [
        ("退役军人咨询优待政策", "{estate}退役军人{name}咨询优待证办理和相关优待政策，联系电话{phone}。"),
        ("{estate}退役军人生活困难", "网格长走访发现{estate}{building}一名退役军人因病致困，需要帮扶。"),
        ("退役军人就业创业咨询", "{estate}一名退役军人希望了解就业创业扶持政策，请相关部门联系。"),
    ],
    "LIVE.MINOR": [
        ("{estate}留守儿童需关爱", "{estate}{building}一名小学生父母在外地打工，与年迈奶奶生活，放学后无人辅导。"),
        ("{road}网吧接纳未成年人", "{road}一家网吧接纳未成年人上网，家长{name}反映，电话{phone}。"),
        ("{estate}未成年人深夜逗留", "网格员发现{estate}附近有几名未成年人深夜在外逗留，需社区和学校关注。"),
    ],
    # 矛盾纠纷
    "DISPUTE.NEIGHBOUR": [
        ("{estate}{building}邻里漏水纠纷", "{estate}{building}{room}楼上漏水，楼下多次协商无果，双方争吵，需要调解。"),
        ("{estate}邻里因停车起争执", "{estate}两户居民因停车位发生争执，情绪激动，请网格长到场调解。"),
        ("{estate}楼道堆物引发纠纷", "{estate}{building}邻居在楼道堆放杂物，多次沟通不听，居民{name}请求调解，电话{phone}。"),
        ("{estate}养鸽引发邻里矛盾", "{estate}{building}楼顶有居民养鸽子，粪便污染晾晒衣物，邻里矛盾较大。"),
    ],
    "DISPUTE.FAMILY": [
        ("{estate}家庭纠纷", "{estate}{building}{room}夫妻吵架声音很大，有摔东西的声音，邻居担心出事。"),
        ("{estate}赡养纠纷", "{estate}老人{name}反映子女不履行赡养义务，希望社区调解，联系电话{phone}。"),
        ("{estate}房产继承纠纷", "{estate}{building}兄弟姐妹因老房子继承问题产生矛盾，多次争吵，需人民调解介入。"),
    ],
    "DISPUTE.MEDICAL": [
        ("{road}附近医院医患纠纷苗头", "专属网格信息员反映{road}附近医院一名患者家属对治疗结果不满，在诊室吵闹，有激化苗头。"),
        ("患者家属医院门口聚集", "{road}附近医院门口有{count}名患者家属聚集，拉横幅讨说法，需要联动处置。"),
        ("{estate}附近诊所医疗纠纷", "{estate}附近诊所输液后患者出现不良反应，家属{name}要求赔偿，电话{phone}。"),
    ],
    "DISPUTE.PETITION": [
        ("{estate}居民拟集体上访", "网格长走访了解到{estate}部分居民因房屋质量问题准备集体上访，需提前介入化解。"),
        ("{estate}拆迁补偿诉求", "{estate}居民{name}对拆迁补偿标准有异议，多次表示要到上级上访，电话{phone}。"),
        ("{road}商户维权聚集苗头", "{road}部分商户因租金问题在微信群串联，计划到有关部门聚集。"),
    ],
    # 安全隐患
    "SAFETY.FIREEXIT": [
        ("{estate}{building}楼道搭棚堵消防通道", "{estate}{building}楼道内搭建棚子堵住消防通道。"),
        ("{estate}消防通道被占用", "{estate}消防通道被私家车和杂物占用，消防车无法通行。"),
        ("{shop}安全出口被锁", "{shop}安全出口被铁链锁住，里面还有顾客，存在严重隐患。"),
        ("{estate}业主拟在消防通道搭雨棚", "网格志愿信息员发现{estate}{building}一户业主装修时准备在消防通道搭建挡雨棚，已上报网格长。"),
    ],
    "SAFETY.ILLEGALBUILD": [
        ("{estate}{building}楼顶违章搭建", "{estate}{building}楼顶有住户搭建彩钢板房，面积较大，存在安全隐患。"),
        ("{estate}一楼住户私扩院子", "{estate}{building}一楼住户私自扩建院子，占用公共绿地，搭建围墙。"),
        ("{road}沿街违章搭建", "{road}沿街商户在店门口搭建雨棚和简易房，占用人行道。"),
        ("{estate}正在搭建违建", "居民{name}反映{estate}{building}有人正在搭建违建，请尽快制止，电话{phone}。"),
    ],
    "SAFETY.GAS": [
        ("{shop}液化气瓶违规使用", "{shop}后厨使用液化气瓶，与灶具距离过近，软管老化。"),
        ("{estate}燃气软管老化", "网格长入户排查发现{estate}{building}{room}燃气软管老化开裂，已提醒住户更换。"),
        ("{road}餐饮店私存气瓶", "{road}一家餐饮店在店内存放{count}个液化气瓶，未设置报警装置。"),
        ("{estate}燃气表箱锈蚀", "{estate}{building}燃气表箱严重锈蚀，居民{name}担心漏气，电话{phone}。"),
    ],
    "SAFETY.EBIKECHARGE": [
        ("{estate}{building}飞线充电", "{estate}{building}有住户从窗口拉电线下来给电瓶车充电，电线横穿通道。"),
        ("{estate}电瓶车进楼充电", "{estate}{building}有电瓶车停在楼道里充电，晚上一直插着，担心着火。"),
        ("{estate}电瓶车推进电梯", "{estate}{building}有人把电瓶车推进电梯带回家充电，居民{name}反映，电话{phone}。"),
        ("{estate}充电桩不足", "{estate}充电桩只有{count}个，远远不够，居民只能飞线充电，建议增设。"),
    ],
    "SAFETY.CORRIDOR": [
        ("{estate}{building}楼道堆放杂物", "{estate}{building}楼道堆满纸箱和旧家具，影响通行，一旦着火很危险。"),
        ("{estate}楼道停放自行车", "{estate}{building}楼道里停放多辆自行车，老人上下楼不方便。"),
        ("{estate}楼梯间堆放易燃物", "网格员巡查发现{estate}{building}楼梯间堆放泡沫板等易燃物，已通知物业清理。"),
        ("{estate}楼道被邻居堆物堵塞", "{estate}{building}{room}门口堆满废品，楼道只剩一人宽，居民{name}反映，电话{phone}。"),
    ],
    "SAFETY.WIRING": [
        ("{estate}私拉电线到车库", "{estate}{building}有住户从楼道电表箱私拉电线到车库，线路裸露。"),
        ("{road}商铺私拉乱接", "{road}沿街商铺私拉电线到门外经营，电线挂在树上。"),
        ("{estate}车库住人私拉电线", "{estate}车库有人居住，私拉电线做饭取暖，存在隐患，居民{name}反映，电话{phone}。"),
    ],
    "SAFETY.PRODUCTION": [
        ("{road}小作坊安全隐患", "{road}一处小作坊无证生产，车间内电线杂乱，未配备灭火器。"),
        ("{road}企业高处作业无防护", "网格长巡查发现{road}一家企业高处作业未系安全带，已现场提醒。"),
        ("{road}仓库堆放超高", "{road}一处仓库货物堆放超高，消防通道不畅，员工{name}反映，电话{phone}。"),
    ],
    # 治安
    "SEC.THEFT": [
        ("{estate}电瓶车被盗", "{estate}{building}楼下的电瓶车昨晚被偷了，车主{name}，电话{phone}。"),
        ("{estate}入室盗窃", "{estate}{building}{room}家中被盗，门锁被撬，请派出所上门。"),
        ("{road}路灯电缆被盗", "{road}路灯电缆被盗，整段路灯不亮。"),
    ],
    "SEC.FRAUD": [
        ("{estate}老人疑似遭遇保健品骗局", "{estate}{building}独居老人近期频繁参加保健品讲座，花费数万元，子女{name}反映，电话{phone}。"),
        ("{road}疑似非法集资宣传", "{road}有人在商铺里宣传高息理财项目，承诺月息5%，疑似非法集资。"),
        ("{estate}居民接到诈骗电话", "网格长走访发现{estate}有居民接到冒充客服的诈骗电话，已劝阻未转账，建议加强宣传。"),
    ],
    "SEC.GAMBLING": [
        ("{estate}附近棋牌室聚众赌博", "{estate}附近棋牌室每天晚上聚集很多人，赌资较大，居民{name}反映，电话{phone}。"),
        ("{road}麻将馆疑似涉赌", "{road}一家麻将馆通宵营业，疑似涉赌。"),
        ("{estate}车库内赌博", "{estate}{building}车库内经常有人聚在一起打牌赌钱，吵闹到深夜。"),
    ],
    "SEC.SUSPICIOUS": [
        ("{estate}有可疑人员徘徊", "{estate}{building}附近有陌生人连续几天在楼下徘徊，查看电瓶车和门锁。"),
        ("{road}有人冒充燃气公司上门", "{road}有人冒充燃气公司上门检查推销，居民怀疑是骗子。"),
        ("{estate}居民被陌生人尾随", "{estate}居民{name}反映晚上回家时被陌生人尾随，电话{phone}。"),
    ],
    "SEC.RAILWAY": [
        ("{road}铁路沿线有人翻越护栏", "网格员巡查发现{road}铁路沿线有人翻越护栏穿越铁路。"),
        ("{road}铁路旁焚烧垃圾", "{road}铁路护网旁有人焚烧垃圾，浓烟影响行车瞭望。"),
        ("{road}铁路护网破损", "{road}铁路护网被剪开一个缺口，有人从这里进出。"),
    ],
    # 生态环境（长江）
    "ECO.FISHING": [
        ("{shoreline}非法捕捞", "{shoreline}有人在长江禁捕水域使用地笼捕鱼，现场有{count}个地笼。"),
        ("{shoreline}夜间电鱼", "长江生态眼监测到{shoreline}有人夜间使用电鱼工具捕鱼，请渔政到场。"),
        ("{shoreline}违规垂钓", "{shoreline}有人使用多竿多钩垂钓，违反长江禁捕规定，市民{name}举报，电话{phone}。"),
        ("江面可疑渔船", "{shoreline}江面有一艘小渔船夜间作业，疑似非法捕捞。"),
    ],
    "ECO.SAND": [
        ("{shoreline}疑似非法采砂", "长江生态眼发现{shoreline}江面有采砂船停靠作业，未见许可公示。"),
        ("{shoreline}夜间偷采江砂", "{shoreline}夜间有船只偷采江砂，机器轰鸣，请水务和公安联合处置。"),
        ("{shoreline}岸边新增砂堆", "{shoreline}岸边新增大量砂堆，疑似非法采砂后转运，群众{name}举报，电话{phone}。"),
    ],
    "ECO.DUMPING": [
        ("{shoreline}倾倒垃圾", "{shoreline}江滩上有人倾倒建筑垃圾和生活垃圾，已堆了好几车。"),
        ("{shoreline}江滩垃圾堆积", "网格员巡查发现{shoreline}江滩堆积大量塑料垃圾，需组织清理。"),
        ("{shoreline}车辆偷倒渣土", "长江生态眼监测到{shoreline}有车辆夜间偷倒渣土，车牌号{plate}。"),
    ],
    "ECO.WATERQ": [
        ("{station}氨氮超标", "{station}自动监测数据显示氨氮浓度超过III类水质标准，请核查周边排口。"),
        ("{station}溶解氧偏低", "{station}溶解氧持续偏低，水质降为IV类，需排查原因。"),
        ("{station}化学需氧量超标", "{station}化学需氧量连续{count}小时超标，请生态环境部门核查。"),
        ("{estate}旁河道水体发黑", "{estate}旁边河道水体发黑发臭，有很多死鱼，居民{name}反映，电话{phone}。"),
    ],
    "ECO.DISCHARGE": [
        ("{road}企业偷排污水", "{road}附近一家企业夜间往雨水管偷排污水，河里有异味和泡沫。"),
        ("{road}洗车店污水直排", "{road}洗车店污水直接排入雨水井，流进附近河道。"),
        ("{shoreline}排口异常排放", "长江生态眼发现{shoreline}排口有黄色污水排出，请生态环境部门核查。"),
    ],
    "ECO.BURNING": [
        ("{road}露天焚烧垃圾", "{road}空地上有人焚烧垃圾，浓烟很大，附近居民不敢开窗。"),
        ("{estate}附近焚烧落叶", "{estate}附近有人焚烧树叶和秸秆，烟味呛人。"),
        ("{shoreline}焚烧废旧轮胎", "{shoreline}有人焚烧废旧轮胎和电线，黑烟滚滚，群众{name}举报，电话{phone}。"),
    ],
    # 物联感知
    "IOT.DOOR": [
        ("智能门磁报警：{estate}{building}", "智能门磁报警：{estate}{building}独居老人家门超过24小时未开启。"),
        ("智能门磁报警：{estate}{building}{room}", "智能门磁报警：{estate}{building}{room}门磁超过36小时无开关记录，请网格长上门查看。"),
        ("智能门磁异常开启：{estate}", "智能门磁报警：{estate}{building}{room}凌晨门磁异常开启，住户为独居老人，请核实情况。"),
    ],
    "IOT.MANHOLE": [
        ("智能井盖倾斜报警：{road}", "智能井盖倾斜报警：{road}，设备编号{device}，倾斜角度超过阈值。"),
        ("智能井盖位移报警：{junction}", "智能井盖位移报警：{junction}井盖发生位移，疑似被车辆碾压翘起。"),
        ("智能井盖水位报警：{road}", "智能井盖水位报警：{road}，设备编号{device}，井内水位超过警戒值。"),
        ("智能井盖开启报警：{estate}", "智能井盖开启报警：{estate}{building}附近井盖被打开，未收到作业报备。"),
    ],
    "IOT.THROWING": [
        ("高空抛物监测：{estate}{building}", "高空抛物监测：{estate}{building}有物品坠落。"),
        ("高空抛物监测：{estate}{building}", "高空抛物监测：{estate}{building}约{count}楼有物体坠落，落点位于单元门口，请核查。"),
        ("高空抛物告警：{estate}", "高空抛物监测：{estate}{building}连续两天有垃圾袋从高层坠落，请物业和派出所调取录像。"),
    ],
    "IOT.SMOKE": [
        ("智能烟感报警：{estate}{building}{room}", "智能烟感报警：{estate}{building}{room}烟雾浓度超标，住户电话无人接听。"),
        ("智能烟感报警：{shop}", "智能烟感报警：{shop}烟雾报警，店铺已打烊，请立即到场核实。"),
        ("智能烟感报警：{estate}{building}", "智能烟感报警：{estate}{building}楼道烟感报警，设备编号{device}。"),
    ],
    "IOT.CAMERA": [
        ("视频告警：{junction}人员聚集", "雪亮视频AI识别{junction}人员聚集，已持续{count}分钟以上，请核实。"),
        ("视频告警：{road}占道经营", "雪亮视频AI识别{road}存在占道经营行为，已持续30分钟。"),
        ("视频告警：{road}垃圾暴露", "视频AI识别{road}有暴露垃圾，设备编号{device}。"),
        ("视频告警：{estate}消防通道占用", "雪亮视频AI识别{estate}消防通道有车辆停放超过20分钟。"),
    ],
    # 疫情防控
    "EPI.CHECKPOINT": [
        ("{road}防疫卡口人手不足", "{road}防疫卡口车辆排队较长，值守人员不足，请求增派力量。"),
        ("{estate}出入口查验不到位", "网格长巡查发现{estate}出入口扫码测温查验不到位，已提醒物业整改。"),
        ("{road}卡口防疫物资短缺", "{road}防疫卡口口罩和消毒液不足，请相关部门补充。"),
    ],
    "EPI.QUARANTINE": [
        ("{estate}隔离人员生活物资需求", "{estate}{building}{room}居家隔离人员{name}需要代购生活物资，联系电话{phone}。"),
        ("{estate}隔离户垃圾清运", "{estate}{building}居家隔离户生活垃圾需专人上门收运。"),
        ("{estate}隔离老人配药需求", "{estate}{building}居家隔离老人有慢性病，药快吃完了，需要协助配药。"),
    ],
    "EPI.VENUE": [
        ("{shop}未落实扫码测温", "{shop}未落实扫码测温，店内人员聚集，未佩戴口罩。"),
        ("{road}商场防疫措施不到位", "{road}商场入口无人查验，顾客{name}反映，电话{phone}。"),
        ("{shop}超员经营", "{shop}店内人员超过限流要求，请市场监管部门检查。"),
    ],
    # 防汛防台
    "FLOOD.WATERLOG": [
        ("{junction}积水严重", "{junction}积水严重，深约30厘米，电动车熄火，车辆无法通行。"),
        ("{road}下穿通道积水", "{road}下穿通道积水较深，已有车辆被困，需要设置警戒。"),
        ("{estate}门口积水", "{estate}门口道路积水没过脚踝，居民出入困难，居民{name}反映，电话{phone}。"),
    ],
    "FLOOD.INUNDATION": [
        ("{estate}地下车库进水", "{estate}地下车库进水，水位快速上涨，有车辆被淹，请求排涝支援。"),
        ("{estate}一楼住户家中进水", "{estate}{building}一楼{count}户居民家中进水，有老人被困，需要转移。"),
        ("{estate}配电房进水", "{estate}配电房进水，可能导致整个小区停电，请立即抽排。"),
        ("{estate}低洼住户家中进水", "{estate}{building}{room}家中进水没过床脚，家中有行动不便老人，家属{name}求助，电话{phone}。"),
    ],
    "FLOOD.TREE": [
        ("{road}大树倒伏", "{road}一棵大树被台风刮倒，横在路中间，车辆无法通行。"),
        ("{estate}树木倒伏压住车辆", "{estate}{building}门口大树倒伏，压住了两辆汽车。"),
        ("{junction}树木倒伏压住电线", "{junction}树木倒伏压住电线，路口信号灯不亮，请尽快清理。"),
    ],
    "FLOOD.DYKE": [
        ("{shoreline}堤防渗水", "{shoreline}堤脚出现渗水点，水流浑浊，疑似管涌，请立即组织抢险。"),
        ("{shoreline}江堤出现裂缝", "巡堤人员发现{shoreline}江堤出现纵向裂缝，长约{count}米。"),
        ("{shoreline}护坡坍塌", "{shoreline}江堤护坡部分坍塌，潮位上涨，险情可能扩大。"),
    ],
    # 12345 诉求
    "HOTLINE.NOISE": [
        ("{shop}音响噪音扰民", "{shop}门口音响声音很大，从早放到晚，附近居民无法休息。"),
        ("{estate}广场舞噪音扰民", "{estate}旁边广场舞音乐太响，晚上9点以后还在跳。来电人{name}，电话{phone}。"),
        ("{estate}商铺空调外机噪音", "{estate}{building}楼下商铺空调外机噪音很大，晚上影响睡觉。"),
        ("{road}酒吧深夜噪音扰民", "{road}酒吧深夜噪音扰民，凌晨还有人在门口喧哗。"),
    ],
    "HOTLINE.FUME": [
        ("{shop}油烟扰民", "{shop}油烟直排，没有安装油烟净化设备，楼上居民家里全是油烟味。"),
        ("{road}烧烤店油烟大", "{road}烧烤店油烟很大，排烟口正对居民窗户。来电人{name}，电话{phone}。"),
        ("{estate}底商餐饮油烟", "{estate}{building}底层商铺开餐馆，油烟管道直接排在楼道口。"),
    ],
    "HOTLINE.PROPERTY": [
        ("{estate}物业服务差", "{estate}物业不作为，楼道灯坏了一个月没人修，垃圾也不及时清运。"),
        ("{estate}物业上调停车费", "{estate}物业上调停车费没有公示，业主{name}认为不合理，电话{phone}。"),
        ("{estate}业委会与物业纠纷", "{estate}业主委员会与物业公司因合同续签发生纠纷，部分业主拒交物业费。"),
        ("{estate}电梯大修费用分摊纠纷", "{estate}{building}电梯大修费用分摊业主意见不一，请社区协调。"),
    ],
    "HOTLINE.WAGE": [
        ("{road}工地拖欠农民工工资", "{road}工地拖欠{count}名农民工工资，已有三个月没发。来电人{name}，电话{phone}。"),
        ("{shop}老板失联拖欠工资", "{shop}关门后老板失联，拖欠员工两个月工资，员工{name}，电话{phone}。"),
        ("{road}企业欠薪员工聚集", "{road}一家企业拖欠员工工资，员工在门口聚集讨薪。"),
        ("{estate}装修工人讨薪", "{estate}{building}装修工程完工后包工头拖欠工人工资，工人在小区门口讨薪。"),
    ],
    "HOTLINE.FOOD": [
        ("{shop}出售过期食品", "{shop}出售过期食品，市民{name}购买后发现，电话{phone}。"),
        ("{shop}后厨卫生差", "{shop}后厨卫生很差，有老鼠出没，食材随地摆放。"),
        ("{road}无证小餐馆", "{road}有一家无证经营的小餐馆，食品卫生没保障。"),
    ],
    "HOTLINE.CONSUMER": [
        ("{shop}预付卡退费难", "{shop}突然关门，办的预付卡无法退费，消费者{name}，电话{phone}。"),
        ("{shop}缺斤短两", "{shop}卖菜缺斤短两，秤有问题，请市场监管部门核查。"),
        ("{shop}疑似价格欺诈", "{shop}标价与结账价格不一致，消费者投诉价格欺诈。"),
    ],
    "HOTLINE.WATERCUT": [
        ("{estate}突然停水", "{estate}从早上开始停水，没有提前通知，居民生活不便。来电人{name}，电话{phone}。"),
        ("{estate}{building}水压不足", "{estate}{building}高层水压不足，热水器打不着火。"),
        ("{estate}自来水发黄", "{estate}自来水发黄有异味，居民担心水质问题。"),
    ],
    "HOTLINE.DOG": [
        ("{estate}遛狗不牵绳", "{estate}经常有人遛狗不牵绳，小孩被吓哭，居民{name}反映，电话{phone}。"),
        ("{estate}犬只深夜吠叫", "{estate}{building}{room}养的狗深夜一直叫，邻居无法休息。"),
        ("{road}流浪狗追咬行人", "{road}有流浪狗追咬行人，已有人被咬伤。"),
        ("{estate}大型犬出门不戴嘴套", "{estate}有住户饲养大型犬，出门不戴嘴套，居民害怕。"),
    ],
    "HOTLINE.SUGGEST": [
        ("建议{road}增设非机动车停车点", "建议{road}地铁口增设非机动车停车点，解决乱停问题。来电人{name}，电话{phone}。"),
        ("建议{estate}加装电梯", "{estate}{building}老人较多，建议推进老旧小区加装电梯。"),
        ("建议{junction}增设红绿灯", "{junction}车流量大，没有信号灯，建议增设红绿灯。"),
    ],
    # 交办事项
    "ASSIGN.SUPERIOR": [
        ("上级交办：{road}沿线环境整治", "区指挥中心交办：{road}沿线环境整治，请于规定时限内完成并反馈整改照片。"),
        ("上级交办：{estate}群众诉求办理", "上级交办件：{estate}居民反映问题，请核实办理并答复来电人{name}，电话{phone}。"),
        ("上级交办：{estate}安全隐患排查", "区指挥中心交办：对{estate}老旧小区开展安全隐患排查，形成台账上报。"),
    ],
    "ASSIGN.CAMPAIGN": [
        ("专项整治：{road}电瓶车乱停", "电瓶车乱停放专项整治任务：{road}沿线，请组织城管和网格力量集中整治。"),
        ("专项整治：{estate}楼道堆物", "消防安全专项整治：{estate}楼道堆物清理，请于本周内完成。"),
        ("专项整治：{road}违章搭建", "违章搭建专项整治：{road}沿线违建拆除，请街道牵头组织实施。"),
        ("专项整治：{estate}群租房排查", "群租房专项整治：对{estate}出租房屋开展排查，涉及{count}户。"),
    ],
    "ASSIGN.LEADER": [
        ("领导批示：{road}交通拥堵", "领导批示件：{road}早晚高峰拥堵问题群众反映强烈，请交警、交通部门研究解决。"),
        ("领导批示：{estate}积水问题", "领导批示件：{estate}多年积水问题，请水务部门拿出方案，限期解决。"),
        ("领导批示：{estate}加装电梯", "领导批示件：{estate}加装电梯进度慢，请住建部门协调推进。"),
    ],
    "ASSIGN.VISIT": [
        ("走访排查：{estate}独居老人", "对{estate}独居老人开展入户走访，核实健康和生活状况，更新网格台账。"),
        ("走访排查：{estate}出租房屋", "对{estate}出租房屋及流动人口开展走访登记，核实{count}户信息。"),
        ("走访排查：{estate}燃气安全", "对{estate}{building}开展燃气安全入户排查，重点关注独居老人和餐饮商户。"),
    ],
}

# --- rendering --------------------------------------------------------------------------------

_FORMATTER = string.Formatter()


def placeholders(template: str) -> set[str]:
    """Placeholder names used in ``template``."""
    return {field for _, field, _, _ in _FORMATTER.parse(template) if field}


def templates_for(code: str) -> T:
    """Templates for ``code``; a group code gets its children's, an unknown code ``UNCLASSIFIED``'s."""
    if code in TEMPLATES:
        return TEMPLATES[code]
    prefix = f"{code}."
    children = [pair for key in sorted(TEMPLATES) if key.startswith(prefix) for pair in TEMPLATES[key]]
    return children or TEMPLATES[UNCLASSIFIED]


def _clip(title: str) -> str:
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1] + "…"


def render(code: str, rng: random.Random, fill: dict[str, str] | None = None) -> tuple[str, str]:
    """Pick a template for ``code`` and format it: (title ≤ 40 chars, description).

    ``fill`` supplies placeholder values (road, estate, junction, shoreline, station, and
    optionally name, phone, …); any placeholder it lacks is generated from ``rng``.
    """
    title_t, desc_t = rng.choice(templates_for(code))
    values = {k: str(v) for k, v in (fill or {}).items() if v is not None and str(v) != ""}
    for key in sorted(placeholders(title_t) | placeholders(desc_t)):
        if key not in values:
            values[key] = _generate(key, rng)
    return _clip(title_t.format_map(values)), desc_t.format_map(values)
