"""Word lists and place names for the demo data: people, merchant trades and brands, Shanghai districts and roads.

Everything is plain ASCII pinyin or English, so demo names sort, search (pg_trgm) and print the same everywhere.
Districts carry approximate centres so that a merchant's address names the district and roads where it really lies.
"""

from __future__ import annotations

from typing import NamedTuple

# The most common Chinese family names, in pinyin.
FAMILY_NAMES: tuple[str, ...] = (
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou",
    "Xu", "Sun", "Ma", "Zhu", "Hu", "Guo", "He", "Lin", "Gao", "Luo",
    "Zheng", "Liang", "Xie", "Song", "Tang", "Han", "Feng", "Deng", "Cao", "Peng",
    "Zeng", "Xiao", "Tian", "Dong", "Pan", "Yuan", "Cai", "Jiang", "Yu", "Du",
    "Ye", "Cheng", "Wei", "Su", "Lu", "Ding", "Ren", "Shen", "Yao", "Fang",
)  # fmt: skip

GIVEN_NAMES: tuple[str, ...] = (
    "Wei", "Fang", "Min", "Jing", "Li", "Qiang", "Lei", "Jun", "Yang", "Yong",
    "Yan", "Jie", "Tao", "Ming", "Chao", "Xiuying", "Xia", "Ping", "Gang", "Hui",
    "Jianguo", "Jianhua", "Guoqiang", "Haiyan", "Xiaoling", "Yuting", "Zihan", "Haoran", "Yifan", "Xinyi",
    "Mei", "Lan", "Hong", "Bin", "Dan", "Ning", "Kai", "Peng", "Rui", "Shu",
)  # fmt: skip

# A shop named after its owner: "Lao Wang Noodle House", "Xiao Li Fruit Shop", "Zhang Ji Wonton Shop".
OWNER_FORMS: tuple[str, ...] = ("Lao {}", "Xiao {}", "{} Ji", "{} Family", "Auntie {}", "Uncle {}")

# A shop with an auspicious name: "Golden Lotus Tea House".
FANCY_ADJECTIVES: tuple[str, ...] = (
    "Golden", "Jade", "Red", "Lucky", "Happy", "Spring", "Harmony", "Pearl", "Silver", "Fortune",
    "Green", "Sunny", "Old Town", "Bund", "Grand", "Oriental", "Evergreen", "Blue Sky", "Morning", "Peace",
)  # fmt: skip
FANCY_NOUNS: tuple[str, ...] = (
    "Lotus", "Dragon", "Phoenix", "Bamboo", "Plum Blossom", "Crane", "Orchid", "Peony", "Moon", "Star",
    "Garden", "Bridge", "River", "Pine", "Camellia", "Magnolia", "Lantern", "Willow", "Harbour", "Osmanthus",
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
TRADES: dict[str, tuple[str, ...]] = {
    "restaurant": (
        "Noodle House",
        "Dumpling House",
        "Wonton Shop",
        "Shengjian Bao",
        "Xiaolongbao",
        "Hotpot",
        "BBQ",
        "Kitchen",
        "Canteen",
        "Rice Noodles",
        "Sichuan Kitchen",
        "Hunan Kitchen",
        "Lanzhou Lamian",
        "Malatang",
        "Congee House",
        "Claypot Rice",
        "Benbang Cuisine",
        "Seafood Restaurant",
        "Dim Sum",
        "Fried Rice",
    ),
    "convenience_store": ("Convenience Store", "Mini Mart", "General Store", "24h Store"),
    "tea_shop": ("Tea House", "Milk Tea", "Tea Shop", "Tea Bar", "Bubble Tea", "Fruit Tea"),
    "hair_salon": ("Hair Salon", "Hair Studio", "Barber Shop", "Hair Design"),
    "fruit_shop": ("Fruit Shop", "Fresh Fruit", "Fruit Stall", "Fruit & Veg"),
    "coffee_shop": ("Coffee", "Cafe", "Coffee Roasters", "Espresso Bar"),
    "pharmacy": ("Pharmacy", "Drugstore", "Medicine Shop", "Health Pharmacy"),
    "supermarket": ("Supermarket", "Fresh Market", "Grocery"),
    "bakery": ("Bakery", "Bread House", "Cake Shop", "Pastry"),
    "tobacco_liquor": ("Tobacco & Liquor", "Wine & Spirits", "Tobacco & Wine"),
    "snack_shop": ("Snacks", "Nuts & Dried Fruit", "Snack Shop", "Sweets"),
    "nail_salon": ("Nail Studio", "Nail Bar", "Nails & Lashes"),
    "phone_repair": ("Phone Repair", "Mobile Repair", "Phone Clinic", "Digital Repair"),
    "hardware": ("Hardware", "Hardware & Tools", "Locks & Keys", "Electrical Supplies"),
    "laundry": ("Laundry", "Dry Cleaning", "Wash & Press", "Laundromat"),
    "florist": ("Florist", "Flower Shop", "Flowers"),
    "beauty_salon": ("Beauty Salon", "Skin Care", "Spa"),
    "stationery": ("Stationery", "Books & Stationery", "Print Shop"),
    "optician": ("Optical", "Eyewear", "Glasses Shop"),
    "pet_shop": ("Pet Shop", "Pet Grooming", "Pet Supplies"),
}

# category -> chains whose branches are named after their road: "FamilyMart Yan'an Rd".
CHAINS: dict[str, tuple[str, ...]] = {
    "convenience_store": ("FamilyMart", "Lawson", "7-Eleven", "Alldays", "Kedi", "Quik"),
    "tea_shop": ("Heytea", "Nayuki", "Mixue", "Chagee", "CoCo", "Auntea Jenny"),
    "coffee_shop": ("Luckin Coffee", "Manner Coffee", "Starbucks", "Cotti Coffee"),
    "pharmacy": ("Leiyunshang Pharmacy", "Yifeng Pharmacy", "LBX Pharmacy", "Huashi Pharmacy"),
    "supermarket": ("Lianhua Supermarket", "Hema Fresh", "Carrefour", "RT-Mart", "City Shop"),
    "bakery": ("Christine Bakery", "Paris Baguette", "Holiland"),
    "fruit_shop": ("Pagoda Fruit", "Xianfeng Fruit"),
    "snack_shop": ("Laiyifen", "Three Squirrels", "Bestore"),
    "optician": ("Baodao Optical", "Jingdu Optical"),
    "restaurant": ("Haidilao", "Xiabuxiabu", "Yoshinoya", "KFC", "McDonald's", "Wagas"),
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
    name: str
    centres: tuple[tuple[float, float], ...]  # (lat, lon) of the district's main areas
    roads: tuple[str, ...]  # real roads of the district, without the "Rd"


# Shanghai's districts within ~35 km of People's Square; big districts have several centres so that "nearest
# centre" approximates their borders well enough for demo addresses.
DISTRICTS: tuple[District, ...] = (
    District(
        "Huangpu",
        ((31.2317, 121.4846), (31.2200, 121.4780), (31.2050, 121.4700)),
        (
            "Nanjing East",
            "Henan Middle",
            "Xizang Middle",
            "Fuzhou",
            "Jinling East",
            "Huaihai Middle",
            "Ruijin No.2",
            "Sinan",
            "Madang",
            "Jiangxi Middle",
            "Fangbang Middle",
            "Zhongshan South",
            "Fuxing Middle",
        ),
    ),
    District(
        "Jing'an",
        ((31.2285, 121.4480), (31.2480, 121.4560), (31.2750, 121.4600)),
        (
            "Nanjing West",
            "Yan'an Middle",
            "Changde",
            "Xikang",
            "Jiangning",
            "Shaanxi North",
            "Tongren",
            "Datian",
            "Gonghexin",
            "Tianmu West",
            "Beijing West",
            "Wanhangdu",
            "Yanchang Middle",
        ),
    ),
    District(
        "Xuhui",
        ((31.1955, 121.4365), (31.1700, 121.4450), (31.1500, 121.4500)),
        (
            "Hengshan",
            "Zhaojiabang",
            "Caoxi North",
            "Tianyaoqiao",
            "Wukang",
            "Yongkang",
            "Longhua Middle",
            "Wanping South",
            "Guilin",
            "Yishan",
            "Kaixuan South",
            "Xietu",
            "Longwu",
        ),
    ),
    District(
        "Changning",
        ((31.2205, 121.4200), (31.2100, 121.3900), (31.2050, 121.3600)),
        (
            "Yuyuan",
            "Changning",
            "Tianshan",
            "Xianxia",
            "Hongqiao",
            "Zunyi",
            "Loushanguan",
            "Gubei",
            "Dingxi",
            "Jiangsu",
            "Fahuazhen",
            "Wuyi",
        ),
    ),
    District(
        "Putuo",
        ((31.2490, 121.4150), (31.2500, 121.3850), (31.2450, 121.3500)),
        (
            "Changshou",
            "Caoyang",
            "Zhenping",
            "Tongchuan",
            "Lanxi",
            "Zhongshan North",
            "Wuning",
            "Meichuan",
            "Zhenbei",
            "Qilianshan South",
        ),
    ),
    District(
        "Hongkou",
        ((31.2645, 121.4950), (31.2800, 121.4800)),
        ("Sichuan North", "Quyang", "Dalian", "Siping", "Ouyang", "Duolun", "Zhoujiazui", "Haining", "Tiantong"),
    ),
    District(
        "Yangpu",
        ((31.2850, 121.5220), (31.3050, 121.5100), (31.2700, 121.5400)),
        (
            "Handan",
            "Guoding",
            "Zhengli",
            "Huangxing",
            "Kongjiang",
            "Yangshupu",
            "Changyang",
            "Songhu",
            "Guoquan",
            "Zhengtong",
            "Siping",
        ),
    ),
    District(
        "Pudong",
        (
            (31.2380, 121.5080),
            (31.1900, 121.5050),
            (31.2100, 121.5550),
            (31.2050, 121.5950),
            (31.1500, 121.5100),
            (31.2700, 121.5750),
            (31.3300, 121.6000),
            (31.1900, 121.7000),
            (31.1100, 121.5700),
            (31.1400, 121.6200),
            (31.0500, 121.6000),
            (31.1500, 121.8000),
            (31.2300, 121.6500),
        ),
        (
            "Zhangyang",
            "Pudong South",
            "Dongfang",
            "Yincheng Middle",
            "Weifang",
            "Shangcheng",
            "Zuchongzhi",
            "Keyuan",
            "Jinke",
            "Yanggao South",
            "Pujian",
            "Dongming",
            "Fangdian",
            "Zhangheng",
            "Chuanqiao",
            "Jinqiao",
            "Huamu",
            "Xiuyan",
            "Chuansha",
            "Zhoupu",
        ),
    ),
    District(
        "Minhang",
        (
            (31.1110, 121.3850),
            (31.1550, 121.3500),
            (31.1300, 121.4200),
            (31.1950, 121.3200),
            (31.0300, 121.4500),
            (31.0800, 121.3300),
        ),
        (
            "Humin",
            "Qixin",
            "Hongxin",
            "Dushi",
            "Lianhua South",
            "Wuzhong",
            "Gudai",
            "Hongmei South",
            "Xinsong",
            "Jianchuan",
            "Shenchang",
            "Xinzhen",
        ),
    ),
    District(
        "Baoshan",
        ((31.3900, 121.4890), (31.3200, 121.4200), (31.3500, 121.3800), (31.4100, 121.4300)),
        ("Youyi", "Mudanjiang", "Gongkang", "Tongji", "Hutai", "Shuichan", "Mizhi", "Gonghexin", "Xinhu"),
    ),
    District(
        "Jiading",
        ((31.3750, 121.2650), (31.2900, 121.1600), (31.3300, 121.2500), (31.4200, 121.2000)),
        ("Bole", "Huancheng", "Tacheng", "Qinghe", "Chengzhong", "Jiasong North", "Caoan", "Moyu"),
    ),
    District(
        "Songjiang",
        ((31.0320, 121.2270), (31.1200, 121.3000), (31.0500, 121.1500), (31.0000, 121.3000)),
        ("Zhongshan Middle", "Renmin North", "Xinsongjiang", "Songzhen", "Wenhui", "Sixian", "Rongle"),
    ),
    District(
        "Qingpu",
        ((31.1500, 121.1240), (31.1800, 121.2600), (31.2200, 121.2000)),
        ("Gongyuan", "Huaqing", "Waiqingsong", "Huazhi", "Chengzhong East", "Panlong"),
    ),
    District(
        "Fengxian",
        ((30.9180, 121.4740), (30.9500, 121.4000), (30.9500, 121.5800)),
        ("Nanqiao", "Jiefang East", "Baiqi", "Huancheng West", "Yunhe North"),
    ),
)
