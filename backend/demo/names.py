"""Word lists and place names for the demo data: people, merchant trades and brands, Shanghai districts and roads.

The demo speaks Chinese: merchants, addresses and people are written in characters, as Shanghai's signs and
records are (`老王面馆`, `瑞幸咖啡(南京西路店)`, `静安区南京西路1266号`, `王伟`). Every word keeps its pinyin or
English beside it, so this file reads without Chinese; search finds them by characters, pinyin and initials
(backend/intake/names.py search_terms). Districts carry approximate centres so that a merchant's address names the
district and roads where it really lies.
"""

from __future__ import annotations

from typing import NamedTuple


class Word(NamedTuple):
    zh: str  # what the demo data says
    en: str  # its pinyin or English, for the reader


def _words(*pairs: tuple[str, str]) -> tuple[Word, ...]:
    return tuple(Word(zh, en) for zh, en in pairs)


# The most common Chinese family names.
FAMILY_NAMES: tuple[Word, ...] = _words(
    ("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen"), ("杨", "Yang"), ("黄", "Huang"),
    ("赵", "Zhao"), ("吴", "Wu"), ("周", "Zhou"), ("徐", "Xu"), ("孙", "Sun"), ("马", "Ma"), ("朱", "Zhu"),
    ("胡", "Hu"), ("郭", "Guo"), ("何", "He"), ("林", "Lin"), ("高", "Gao"), ("罗", "Luo"), ("郑", "Zheng"),
    ("梁", "Liang"), ("谢", "Xie"), ("宋", "Song"), ("唐", "Tang"), ("韩", "Han"), ("冯", "Feng"), ("邓", "Deng"),
    ("曹", "Cao"), ("彭", "Peng"), ("曾", "Zeng"), ("肖", "Xiao"), ("田", "Tian"), ("董", "Dong"), ("潘", "Pan"),
    ("袁", "Yuan"), ("蔡", "Cai"), ("蒋", "Jiang"), ("余", "Yu"), ("杜", "Du"), ("叶", "Ye"), ("程", "Cheng"),
    ("魏", "Wei"), ("苏", "Su"), ("卢", "Lu"), ("丁", "Ding"), ("任", "Ren"), ("沈", "Shen"), ("姚", "Yao"),
    ("方", "Fang"),
)  # fmt: skip

GIVEN_NAMES: tuple[Word, ...] = _words(
    ("伟", "Wei"), ("芳", "Fang"), ("敏", "Min"), ("静", "Jing"), ("丽", "Li"), ("强", "Qiang"), ("磊", "Lei"),
    ("军", "Jun"), ("洋", "Yang"), ("勇", "Yong"), ("艳", "Yan"), ("杰", "Jie"), ("涛", "Tao"), ("明", "Ming"),
    ("超", "Chao"), ("秀英", "Xiuying"), ("霞", "Xia"), ("平", "Ping"), ("刚", "Gang"), ("辉", "Hui"),
    ("建国", "Jianguo"), ("建华", "Jianhua"), ("国强", "Guoqiang"), ("海燕", "Haiyan"), ("晓玲", "Xiaoling"),
    ("雨婷", "Yuting"), ("子涵", "Zihan"), ("浩然", "Haoran"), ("一凡", "Yifan"), ("欣怡", "Xinyi"),
    ("梅", "Mei"), ("兰", "Lan"), ("红", "Hong"), ("斌", "Bin"), ("丹", "Dan"), ("宁", "Ning"), ("凯", "Kai"),
    ("鹏", "Peng"), ("瑞", "Rui"), ("淑", "Shu"),
)  # fmt: skip

# A shop named after its owner: 老王面馆 "Lao Wang Noodle House", 小李水果店, 张记馄饨店.
OWNER_FORMS: tuple[Word, ...] = _words(
    ("老{}", "Lao {}"), ("小{}", "Xiao {}"), ("{}记", "{} Ji"), ("{}家", "{} Family"), ("{}阿姨", "Auntie {}"),
    ("{}叔", "Uncle {}"),
)  # fmt: skip

# A shop with an auspicious name: 金莲茶馆 "Golden Lotus Tea House".
FANCY_ADJECTIVES: tuple[Word, ...] = _words(
    ("金", "Golden"), ("玉", "Jade"), ("红", "Red"), ("福", "Lucky"), ("喜", "Happy"), ("春", "Spring"),
    ("和", "Harmony"), ("明珠", "Pearl"), ("银", "Silver"), ("富", "Fortune"), ("翠", "Green"), ("阳光", "Sunny"),
    ("老城", "Old Town"), ("外滩", "Bund"), ("大", "Grand"), ("东方", "Oriental"), ("长青", "Evergreen"),
    ("蓝天", "Blue Sky"), ("晨", "Morning"), ("平安", "Peace"),
)  # fmt: skip
FANCY_NOUNS: tuple[Word, ...] = _words(
    ("莲", "Lotus"), ("龙", "Dragon"), ("凤", "Phoenix"), ("竹", "Bamboo"), ("梅", "Plum Blossom"), ("鹤", "Crane"),
    ("兰", "Orchid"), ("牡丹", "Peony"), ("月", "Moon"), ("星", "Star"), ("园", "Garden"), ("桥", "Bridge"),
    ("河", "River"), ("松", "Pine"), ("茶花", "Camellia"), ("玉兰", "Magnolia"), ("灯笼", "Lantern"),
    ("柳", "Willow"), ("港", "Harbour"), ("桂花", "Osmanthus"),
)  # fmt: skip

# category -> relative weight, roughly the mix of street-level merchants a canvassing team meets in Shanghai.
# Values are the wire's category codes (^[a-z0-9_]+$).
CATEGORY_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("restaurant", 26),
    ("convenience_store", 9),
    ("tea_shop", 7),
    ("hair_salon", 7),
    ("fruit_shop", 6),
    ("coffee_shop", 5),
    ("pharmacy", 5),
    ("supermarket", 4),
    ("bakery", 4),
    ("tobacco_liquor", 4),
    ("snack_shop", 3),
    ("nail_salon", 3),
    ("phone_repair", 3),
    ("hardware", 3),
    ("laundry", 3),
    ("florist", 2),
    ("beauty_salon", 2),
    ("stationery", 2),
    ("optician", 1),
    ("pet_shop", 1),
)

# category -> what the sign says after the owner's or the fancy name.
TRADES: dict[str, tuple[Word, ...]] = {
    "restaurant": _words(
        ("面馆", "Noodle House"),
        ("饺子馆", "Dumpling House"),
        ("馄饨店", "Wonton Shop"),
        ("生煎", "Shengjian Bao"),
        ("小笼包", "Xiaolongbao"),
        ("火锅", "Hotpot"),
        ("烧烤", "BBQ"),
        ("小厨", "Kitchen"),
        ("食堂", "Canteen"),
        ("米粉", "Rice Noodles"),
        ("川菜馆", "Sichuan Kitchen"),
        ("湘菜馆", "Hunan Kitchen"),
        ("兰州拉面", "Lanzhou Lamian"),
        ("麻辣烫", "Malatang"),
        ("粥铺", "Congee House"),
        ("煲仔饭", "Claypot Rice"),
        ("本帮菜", "Benbang Cuisine"),
        ("海鲜酒家", "Seafood Restaurant"),
        ("点心", "Dim Sum"),
        ("炒饭", "Fried Rice"),
    ),
    "convenience_store": _words(
        ("便利店", "Convenience Store"),
        ("小超市", "Mini Mart"),
        ("杂货店", "General Store"),
        ("24小时便利店", "24h Store"),
    ),
    "tea_shop": _words(
        ("茶馆", "Tea House"),
        ("奶茶", "Milk Tea"),
        ("茶叶店", "Tea Shop"),
        ("茶吧", "Tea Bar"),
        ("珍珠奶茶", "Bubble Tea"),
        ("水果茶", "Fruit Tea"),
    ),
    "hair_salon": _words(
        ("美发店", "Hair Salon"), ("发型工作室", "Hair Studio"), ("理发店", "Barber Shop"), ("发型设计", "Hair Design")
    ),
    "fruit_shop": _words(
        ("水果店", "Fruit Shop"), ("鲜果", "Fresh Fruit"), ("水果摊", "Fruit Stall"), ("果蔬", "Fruit & Veg")
    ),
    "coffee_shop": _words(
        ("咖啡", "Coffee"), ("咖啡馆", "Cafe"), ("咖啡烘焙", "Coffee Roasters"), ("意式咖啡", "Espresso Bar")
    ),
    "pharmacy": _words(
        ("药房", "Pharmacy"), ("大药房", "Drugstore"), ("药店", "Medicine Shop"), ("健康药房", "Health Pharmacy")
    ),
    "supermarket": _words(("超市", "Supermarket"), ("生鲜超市", "Fresh Market"), ("食品店", "Grocery")),
    "bakery": _words(("面包房", "Bakery"), ("面包坊", "Bread House"), ("蛋糕店", "Cake Shop"), ("西点", "Pastry")),
    "tobacco_liquor": _words(
        ("烟酒店", "Tobacco & Liquor"), ("名酒行", "Wine & Spirits"), ("烟酒行", "Tobacco & Wine")
    ),
    "snack_shop": _words(
        ("零食店", "Snacks"), ("炒货", "Nuts & Dried Fruit"), ("小吃店", "Snack Shop"), ("糖果店", "Sweets")
    ),
    "nail_salon": _words(("美甲", "Nail Studio"), ("美甲店", "Nail Bar"), ("美甲美睫", "Nails & Lashes")),
    "phone_repair": _words(
        ("手机维修", "Phone Repair"),
        ("手机快修", "Mobile Repair"),
        ("手机诊所", "Phone Clinic"),
        ("数码维修", "Digital Repair"),
    ),
    "hardware": _words(
        ("五金店", "Hardware"),
        ("五金工具", "Hardware & Tools"),
        ("开锁配钥匙", "Locks & Keys"),
        ("电料行", "Electrical Supplies"),
    ),
    "laundry": _words(
        ("洗衣店", "Laundry"), ("干洗店", "Dry Cleaning"), ("洗衣熨烫", "Wash & Press"), ("自助洗衣", "Laundromat")
    ),
    "florist": _words(("花店", "Florist"), ("鲜花店", "Flower Shop"), ("鲜花", "Flowers")),
    "beauty_salon": _words(("美容院", "Beauty Salon"), ("护肤中心", "Skin Care"), ("水疗馆", "Spa")),
    "stationery": _words(("文具店", "Stationery"), ("书店文具", "Books & Stationery"), ("图文打印", "Print Shop")),
    "optician": _words(("眼镜", "Optical"), ("眼镜店", "Eyewear"), ("眼镜行", "Glasses Shop")),
    "pet_shop": _words(("宠物店", "Pet Shop"), ("宠物美容", "Pet Grooming"), ("宠物用品", "Pet Supplies")),
}

# category -> chains whose branches are named after their road, the branch in brackets: 全家(延安中路店).
CHAINS: dict[str, tuple[Word, ...]] = {
    "convenience_store": _words(
        ("全家", "FamilyMart"),
        ("罗森", "Lawson"),
        ("7-Eleven便利店", "7-Eleven"),
        ("好德便利", "Alldays"),
        ("可的便利", "Kedi"),
        ("快客便利", "Quik"),
    ),
    "tea_shop": _words(
        ("喜茶", "Heytea"),
        ("奈雪的茶", "Nayuki"),
        ("蜜雪冰城", "Mixue"),
        ("霸王茶姬", "Chagee"),
        ("CoCo都可", "CoCo"),
        ("沪上阿姨", "Auntea Jenny"),
    ),
    "coffee_shop": _words(
        ("瑞幸咖啡", "Luckin Coffee"),
        ("Manner咖啡", "Manner Coffee"),
        ("星巴克", "Starbucks"),
        ("库迪咖啡", "Cotti Coffee"),
    ),
    "pharmacy": _words(
        ("雷允上药房", "Leiyunshang Pharmacy"),
        ("益丰大药房", "Yifeng Pharmacy"),
        ("老百姓大药房", "LBX Pharmacy"),
        ("华氏大药房", "Huashi Pharmacy"),
    ),
    "supermarket": _words(
        ("联华超市", "Lianhua Supermarket"),
        ("盒马鲜生", "Hema Fresh"),
        ("家乐福", "Carrefour"),
        ("大润发", "RT-Mart"),
        ("City Shop城市超市", "City Shop"),
    ),
    "bakery": _words(("克莉丝汀", "Christine Bakery"), ("巴黎贝甜", "Paris Baguette"), ("好利来", "Holiland")),
    "fruit_shop": _words(("百果园", "Pagoda Fruit"), ("鲜丰水果", "Xianfeng Fruit")),
    "snack_shop": _words(("来伊份", "Laiyifen"), ("三只松鼠", "Three Squirrels"), ("良品铺子", "Bestore")),
    "optician": _words(("宝岛眼镜", "Baodao Optical"), ("精度眼镜", "Jingdu Optical")),
    "restaurant": _words(
        ("海底捞", "Haidilao"),
        ("呷哺呷哺", "Xiabuxiabu"),
        ("吉野家", "Yoshinoya"),
        ("肯德基", "KFC"),
        ("麦当劳", "McDonald's"),
        ("Wagas沃歌斯", "Wagas"),
    ),
}

# category -> the share of its merchants that are chain branches (the rest are independents).
CHAIN_SHARE: dict[str, float] = {
    "convenience_store": 0.7,
    "coffee_shop": 0.5,
    "supermarket": 0.5,
    "pharmacy": 0.5,
    "tea_shop": 0.4,
    "bakery": 0.3,
    "fruit_shop": 0.25,
    "snack_shop": 0.3,
    "optician": 0.3,
    "restaurant": 0.06,
}

CONTACT_ROLES: tuple[str, ...] = ("owner", "owner", "owner", "manager", "manager", "cashier")

# Mobile prefixes of China's three carriers.
MOBILE_PREFIXES: tuple[str, ...] = (
    "130", "131", "133", "135", "136", "137", "138", "139", "150", "151",
    "152", "158", "159", "177", "180", "181", "186", "187", "188", "189",
)  # fmt: skip


class District(NamedTuple):
    name: str  # pinyin, for the reader and the logs
    name_zh: str  # what addresses say: 静安区
    centres: tuple[tuple[float, float], ...]  # (lat, lon) of the district's main areas
    roads: tuple[Word, ...]  # real roads of the district: 南京西路 "Nanjing West Rd"


# Shanghai's districts within ~35 km of People's Square; big districts have several centres so that "nearest
# centre" approximates their borders well enough for demo addresses.
DISTRICTS: tuple[District, ...] = (
    District(
        "Huangpu",
        "黄浦区",
        ((31.2317, 121.4846), (31.22, 121.4780), (31.205, 121.4700)),
        _words(
            ("南京东路", "Nanjing East Rd"),
            ("河南中路", "Henan Middle Rd"),
            ("西藏中路", "Xizang Middle Rd"),
            ("福州路", "Fuzhou Rd"),
            ("金陵东路", "Jinling East Rd"),
            ("淮海中路", "Huaihai Middle Rd"),
            ("瑞金二路", "Ruijin No.2 Rd"),
            ("思南路", "Sinan Rd"),
            ("马当路", "Madang Rd"),
            ("江西中路", "Jiangxi Middle Rd"),
            ("方浜中路", "Fangbang Middle Rd"),
            ("中山南路", "Zhongshan South Rd"),
            ("复兴中路", "Fuxing Middle Rd"),
        ),
    ),
    District(
        "Jing'an",
        "静安区",
        ((31.2285, 121.4480), (31.248, 121.4560), (31.275, 121.4600)),
        _words(
            ("南京西路", "Nanjing West Rd"),
            ("延安中路", "Yan'an Middle Rd"),
            ("常德路", "Changde Rd"),
            ("西康路", "Xikang Rd"),
            ("江宁路", "Jiangning Rd"),
            ("陕西北路", "Shaanxi North Rd"),
            ("铜仁路", "Tongren Rd"),
            ("大田路", "Datian Rd"),
            ("共和新路", "Gonghexin Rd"),
            ("天目西路", "Tianmu West Rd"),
            ("北京西路", "Beijing West Rd"),
            ("万航渡路", "Wanhangdu Rd"),
            ("延长中路", "Yanchang Middle Rd"),
        ),
    ),
    District(
        "Xuhui",
        "徐汇区",
        ((31.1955, 121.4365), (31.17, 121.4450), (31.15, 121.4500)),
        _words(
            ("衡山路", "Hengshan Rd"),
            ("肇嘉浜路", "Zhaojiabang Rd"),
            ("漕溪北路", "Caoxi North Rd"),
            ("天钥桥路", "Tianyaoqiao Rd"),
            ("武康路", "Wukang Rd"),
            ("永康路", "Yongkang Rd"),
            ("龙华中路", "Longhua Middle Rd"),
            ("宛平南路", "Wanping South Rd"),
            ("桂林路", "Guilin Rd"),
            ("宜山路", "Yishan Rd"),
            ("凯旋南路", "Kaixuan South Rd"),
            ("斜土路", "Xietu Rd"),
            ("龙吴路", "Longwu Rd"),
        ),
    ),
    District(
        "Changning",
        "长宁区",
        ((31.2205, 121.4200), (31.21, 121.3900), (31.205, 121.3600)),
        _words(
            ("愚园路", "Yuyuan Rd"),
            ("长宁路", "Changning Rd"),
            ("天山路", "Tianshan Rd"),
            ("仙霞路", "Xianxia Rd"),
            ("虹桥路", "Hongqiao Rd"),
            ("遵义路", "Zunyi Rd"),
            ("娄山关路", "Loushanguan Rd"),
            ("古北路", "Gubei Rd"),
            ("定西路", "Dingxi Rd"),
            ("江苏路", "Jiangsu Rd"),
            ("法华镇路", "Fahuazhen Rd"),
            ("武夷路", "Wuyi Rd"),
        ),
    ),
    District(
        "Putuo",
        "普陀区",
        ((31.249, 121.4150), (31.25, 121.3850), (31.245, 121.3500)),
        _words(
            ("长寿路", "Changshou Rd"),
            ("曹杨路", "Caoyang Rd"),
            ("镇坪路", "Zhenping Rd"),
            ("铜川路", "Tongchuan Rd"),
            ("兰溪路", "Lanxi Rd"),
            ("中山北路", "Zhongshan North Rd"),
            ("武宁路", "Wuning Rd"),
            ("梅川路", "Meichuan Rd"),
            ("真北路", "Zhenbei Rd"),
            ("祁连山南路", "Qilianshan South Rd"),
        ),
    ),
    District(
        "Hongkou",
        "虹口区",
        ((31.2645, 121.4950), (31.28, 121.4800)),
        _words(
            ("四川北路", "Sichuan North Rd"),
            ("曲阳路", "Quyang Rd"),
            ("大连路", "Dalian Rd"),
            ("四平路", "Siping Rd"),
            ("欧阳路", "Ouyang Rd"),
            ("多伦路", "Duolun Rd"),
            ("周家嘴路", "Zhoujiazui Rd"),
            ("海宁路", "Haining Rd"),
            ("天潼路", "Tiantong Rd"),
        ),
    ),
    District(
        "Yangpu",
        "杨浦区",
        ((31.285, 121.5220), (31.305, 121.5100), (31.27, 121.5400)),
        _words(
            ("邯郸路", "Handan Rd"),
            ("国定路", "Guoding Rd"),
            ("政立路", "Zhengli Rd"),
            ("黄兴路", "Huangxing Rd"),
            ("控江路", "Kongjiang Rd"),
            ("杨树浦路", "Yangshupu Rd"),
            ("长阳路", "Changyang Rd"),
            ("淞沪路", "Songhu Rd"),
            ("国权路", "Guoquan Rd"),
            ("政通路", "Zhengtong Rd"),
            ("四平路", "Siping Rd"),
        ),
    ),
    District(
        "Pudong",
        "浦东新区",
        (
            (31.238, 121.5080),
            (31.19, 121.5050),
            (31.21, 121.5550),
            (31.205, 121.5950),
            (31.15, 121.5100),
            (31.27, 121.5750),
            (31.33, 121.6000),
            (31.19, 121.7000),
            (31.11, 121.5700),
            (31.14, 121.6200),
            (31.05, 121.6000),
            (31.15, 121.8000),
            (31.23, 121.6500),
        ),
        _words(
            ("张杨路", "Zhangyang Rd"),
            ("浦东南路", "Pudong South Rd"),
            ("东方路", "Dongfang Rd"),
            ("银城中路", "Yincheng Middle Rd"),
            ("潍坊路", "Weifang Rd"),
            ("商城路", "Shangcheng Rd"),
            ("祖冲之路", "Zuchongzhi Rd"),
            ("科苑路", "Keyuan Rd"),
            ("金科路", "Jinke Rd"),
            ("杨高南路", "Yanggao South Rd"),
            ("浦建路", "Pujian Rd"),
            ("东明路", "Dongming Rd"),
            ("芳甸路", "Fangdian Rd"),
            ("张衡路", "Zhangheng Rd"),
            ("川桥路", "Chuanqiao Rd"),
            ("金桥路", "Jinqiao Rd"),
            ("花木路", "Huamu Rd"),
            ("秀沿路", "Xiuyan Rd"),
            ("川沙路", "Chuansha Rd"),
            ("周浦路", "Zhoupu Rd"),
        ),
    ),
    District(
        "Minhang",
        "闵行区",
        (
            (31.111, 121.3850),
            (31.155, 121.3500),
            (31.13, 121.4200),
            (31.195, 121.3200),
            (31.03, 121.4500),
            (31.08, 121.3300),
        ),
        _words(
            ("沪闵路", "Humin Rd"),
            ("七莘路", "Qixin Rd"),
            ("虹莘路", "Hongxin Rd"),
            ("都市路", "Dushi Rd"),
            ("莲花南路", "Lianhua South Rd"),
            ("吴中路", "Wuzhong Rd"),
            ("顾戴路", "Gudai Rd"),
            ("虹梅南路", "Hongmei South Rd"),
            ("莘松路", "Xinsong Rd"),
            ("剑川路", "Jianchuan Rd"),
            ("申长路", "Shenchang Rd"),
            ("新镇路", "Xinzhen Rd"),
        ),
    ),
    District(
        "Baoshan",
        "宝山区",
        ((31.39, 121.4890), (31.32, 121.4200), (31.35, 121.3800), (31.41, 121.4300)),
        _words(
            ("友谊路", "Youyi Rd"),
            ("牡丹江路", "Mudanjiang Rd"),
            ("共康路", "Gongkang Rd"),
            ("同济路", "Tongji Rd"),
            ("沪太路", "Hutai Rd"),
            ("水产路", "Shuichan Rd"),
            ("密智路", "Mizhi Rd"),
            ("共和新路", "Gonghexin Rd"),
            ("新沪路", "Xinhu Rd"),
        ),
    ),
    District(
        "Jiading",
        "嘉定区",
        ((31.375, 121.2650), (31.29, 121.1600), (31.33, 121.2500), (31.42, 121.2000)),
        _words(
            ("博乐路", "Bole Rd"),
            ("环城路", "Huancheng Rd"),
            ("塔城路", "Tacheng Rd"),
            ("清河路", "Qinghe Rd"),
            ("城中路", "Chengzhong Rd"),
            ("嘉松北路", "Jiasong North Rd"),
            ("曹安路", "Caoan Rd"),
            ("墨玉路", "Moyu Rd"),
        ),
    ),
    District(
        "Songjiang",
        "松江区",
        ((31.032, 121.2270), (31.12, 121.3000), (31.05, 121.1500), (31.0, 121.3000)),
        _words(
            ("中山中路", "Zhongshan Middle Rd"),
            ("人民北路", "Renmin North Rd"),
            ("新松江路", "Xinsongjiang Rd"),
            ("松镇路", "Songzhen Rd"),
            ("文汇路", "Wenhui Rd"),
            ("思贤路", "Sixian Rd"),
            ("荣乐路", "Rongle Rd"),
        ),
    ),
    District(
        "Qingpu",
        "青浦区",
        ((31.15, 121.1240), (31.18, 121.2600), (31.22, 121.2000)),
        _words(
            ("公园路", "Gongyuan Rd"),
            ("华青路", "Huaqing Rd"),
            ("外青松路", "Waiqingsong Rd"),
            ("华志路", "Huazhi Rd"),
            ("城中东路", "Chengzhong East Rd"),
            ("盘龙路", "Panlong Rd"),
        ),
    ),
    District(
        "Fengxian",
        "奉贤区",
        ((30.918, 121.4740), (30.95, 121.4000), (30.95, 121.5800)),
        _words(
            ("南桥路", "Nanqiao Rd"),
            ("解放东路", "Jiefang East Rd"),
            ("百齐路", "Baiqi Rd"),
            ("环城西路", "Huancheng West Rd"),
            ("运河北路", "Yunhe North Rd"),
        ),
    ),
)
