"""Chinese merchant names: one folded form, brand and branch, pinyin keys, and whether two records are one shop.

Merchant data from phones, imports and partners spells the same shop many ways: full-width and half-width forms
(`瑞幸咖啡（南京西路店）` / `瑞幸咖啡(南京西路店)`), traditional and simplified characters (`麥當勞` / `麦当劳`),
pinyin (`Ruixing Kafei`), an English name (`Luckin Coffee`), and the branch in brackets or not. A chain's
branches, on the other hand, share the brand and often the hotline but are different shops. So a name is compared
as brand plus branch, in every spelling we can derive (folded characters, pinyin, initials), and the verdict
weighs the name with the phone number and the distance, never the name alone. Pure functions: no database.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from opencc import OpenCC
from pypinyin import Style, lazy_pinyin
from rapidfuzz import fuzz

_TO_SIMPLIFIED = OpenCC("t2s")

# Brackets after NFKC folding (which already turns （） and ［］ into ASCII); the rest are CJK brackets NFKC keeps.
_OPEN = "([{【〔〖「『《<"
_CLOSE = ")]}】〕〗」』》>"
_TRAILING_BRANCH = re.compile(rf"[{re.escape(_OPEN)}]([^{re.escape(_OPEN + _CLOSE)}]+)[{re.escape(_CLOSE)}]\s*$")
# What a branch name ends with that says nothing about which branch it is.
_BRANCH_SUFFIX = re.compile(r"(分店|门店|旗舰店|专卖店|体验店|店|branch|store|shop|outlet)$")
_NOT_A_KEY_CHAR = re.compile(r"[\W_]+")
# Hotlines are shared by every branch of a chain: equal hotlines say nothing about one shop.
_HOTLINE = re.compile(r"^(400|800|95\d{3})")


@lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """The one form names are compared in: NFKC (full-width to half-width), simplified characters, case folded."""
    folded = unicodedata.normalize("NFKC", text)
    folded = _TO_SIMPLIFIED.convert(folded)
    return " ".join(folded.casefold().split())


@lru_cache(maxsize=65536)
def key(text: str) -> str:
    """A folded text without spaces and punctuation: `Luckin  Coffee!` and `luckincoffee` are one key."""
    return _NOT_A_KEY_CHAR.sub("", fold(text))


@lru_cache(maxsize=65536)
def pinyin_key(text: str) -> str:
    """The key in toneless pinyin (latin letters and digits pass through): `瑞幸咖啡` -> `ruixingkafei`."""
    return "".join(lazy_pinyin(key(text), errors="default"))


@lru_cache(maxsize=65536)
def initials_key(text: str) -> str:
    """First letters of each syllable: `瑞幸咖啡` -> `rxkf` (how people type a shop into a search box)."""
    return "".join(lazy_pinyin(key(text), style=Style.FIRST_LETTER, errors="default"))


@dataclass(frozen=True, slots=True)
class NameParts:
    brand: str
    branch: str | None  # folded, without its "店" suffix; None when the name does not say


@lru_cache(maxsize=65536)
def split_name(name: str) -> NameParts:
    """`瑞幸咖啡(南京西路店)` -> brand `瑞幸咖啡`, branch `南京西路`; `Luckin Coffee` -> no branch."""
    folded = fold(name)
    match = _TRAILING_BRANCH.search(folded)
    if match is None:
        return NameParts(brand=folded, branch=None)
    brand = folded[: match.start()].strip()
    branch = _BRANCH_SUFFIX.sub("", key(match.group(1)))
    if not brand:  # the whole name is in brackets: it is the name
        return NameParts(brand=key(match.group(1)), branch=None)
    return NameParts(brand=brand, branch=branch or None)


def phone_key(phone: str | None) -> str | None:
    """Digits only, without the country code: `+86 138-0013-8000` and `13800138000` are one number."""
    if not phone:
        return None
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", phone))
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) >= 10:
            digits = digits[len(prefix) :]
            break
    return digits if len(digits) >= 7 else None


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN_RUN = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=65536)
def _spellings(text: str, with_pinyin: bool) -> tuple[tuple[str, str], ...]:
    """(script, key) pairs a text may be compared by: its characters, their pinyin (only when the other text has
    no Chinese to compare characters with: pinyin is the costly part), and for a name that mixes scripts
    (`喜茶 HEYTEA`) each script's part alone."""
    k = key(text)
    if not _CJK.search(k):
        return (("latin", k),)
    spellings = [("cjk", k)]
    if with_pinyin:
        spellings.append(("pinyin", pinyin_key(text)))
    cjk_only = _LATIN_RUN.sub("", k)
    latin_only = "".join(_LATIN_RUN.findall(k))
    if cjk_only != k and cjk_only:
        spellings.append(("cjk", cjk_only))
    if len(latin_only) >= 3:
        spellings.append(("latin", latin_only))
    return tuple(spellings)


# Characters with characters, latin with latin, and latin with pinyin (a name typed in pinyin); never pinyin
# with pinyin, which would make homophones one shop.
_COMPARABLE = ({"cjk"}, {"latin"}, {"latin", "pinyin"})


def similarity(a: str, b: str) -> float:
    """0..1: the best agreement of two texts compared in the same script.

    Two Chinese names are compared by their characters, not their pinyin: `老王面馆` and `老李面馆` differ in the
    one character that matters, and pinyin would make them 86% alike. Pinyin speaks only across scripts (`Ruixing
    Kafei` against `瑞幸咖啡`); initials only as a whole name of 3+ letters (`RXKF`).
    """
    ka, kb = key(a), key(b)
    if not ka or not kb:
        return 0.0
    if ka == kb:
        return 1.0
    chinese_a, chinese_b = bool(_CJK.search(ka)), bool(_CJK.search(kb))
    best = 0.0
    for kind_a, text_a in _spellings(a, not chinese_b):
        for kind_b, text_b in _spellings(b, not chinese_a):
            if {kind_a, kind_b} in _COMPARABLE:
                best = max(best, fuzz.ratio(text_a, text_b) / 100.0)
    if chinese_a != chinese_b:  # a Chinese name typed by its initials (`RXKF`)
        chinese, latin = (a, kb) if chinese_a else (b, ka)
        initials = initials_key(chinese)
        if len(initials) >= 3 and initials == latin:
            best = max(best, 0.9)
    return best


class Verdict(StrEnum):
    SAME = "same"  # one shop: safe to merge
    LIKELY = "likely"  # probably one shop: a person decides (the review queue)
    DIFFERENT = "different"


@dataclass(frozen=True, slots=True)
class MerchantRecord:
    name: str
    phone: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    name_similarity: float
    reasons: tuple[str, ...]


# Thresholds, in metres and 0..1 similarity. Shops of one mall sit 5-20 m apart; a geocoded address of one shop
# lands within ~100 m of its phone-captured location; a chain rarely has two branches within 300 m.
SAME_NAME = 0.92
SIMILAR_NAME = 0.8
SAME_BRANCH = 0.9
NEAR_M = 150.0
CLOSE_M = 50.0
CHAIN_SPACING_M = 1000.0


def judge(a: MerchantRecord, b: MerchantRecord, distance_m: float | None) -> Judgement:
    """Are `a` and `b` one shop? Symmetric; every verdict carries the reasons it rests on."""
    parts_a, parts_b = split_name(a.name), split_name(b.name)
    phone_a, phone_b = phone_key(a.phone), phone_key(b.phone)
    same_phone = phone_a is not None and phone_a == phone_b and not _HOTLINE.match(phone_a)
    reasons: list[str] = []
    if parts_a.branch is not None and parts_b.branch is not None:
        # Both name a branch: the brand must agree and so must the branch.
        brand_sim = similarity(parts_a.brand, parts_b.brand)
        if brand_sim >= SIMILAR_NAME:
            branch_sim = similarity(parts_a.branch, parts_b.branch)
            if branch_sim < SAME_BRANCH and not same_phone:
                reasons += [f"brand similarity {brand_sim:.2f}", f"branch similarity {branch_sim:.2f}"]
                reasons.append("same brand, different branch")
                return Judgement(Verdict.DIFFERENT, min(brand_sim, branch_sim), tuple(reasons))
            name_sim = min(brand_sim, branch_sim)
        else:
            name_sim = max(brand_sim, similarity(a.name, b.name) if same_phone else 0.0)
    else:
        # One side names no branch: `瑞幸咖啡` against `瑞幸咖啡(南京西路店)` agrees on the brand.
        name_sim = max(similarity(a.name, b.name), similarity(parts_a.brand, parts_b.brand))
    reasons.insert(0, f"name similarity {name_sim:.2f}")
    if distance_m is not None:
        reasons.append(f"{distance_m:.0f} m apart")
    if same_phone:
        reasons.append("same phone number")

    near = distance_m is None or distance_m <= NEAR_M
    if name_sim >= SAME_NAME:
        if near or same_phone:
            return Judgement(Verdict.SAME, name_sim, tuple(reasons))
        if distance_m is not None and distance_m <= CHAIN_SPACING_M:
            reasons.append("same name a short walk apart: one shop or two branches")
            return Judgement(Verdict.LIKELY, name_sim, tuple(reasons))
        reasons.append("same name far apart: a chain's other branch")
        return Judgement(Verdict.DIFFERENT, name_sim, tuple(reasons))
    if same_phone:
        if near and name_sim >= SIMILAR_NAME:
            return Judgement(Verdict.SAME, name_sim, tuple(reasons))
        # Different spellings (an English name, a typo) of one shop with its own number: a person decides.
        return Judgement(Verdict.LIKELY, name_sim, tuple(reasons))
    if name_sim >= SIMILAR_NAME and distance_m is not None and distance_m <= CLOSE_M:
        return Judgement(Verdict.LIKELY, name_sim, tuple(reasons))
    return Judgement(Verdict.DIFFERENT, name_sim, tuple(reasons))


def search_terms(name: str, address: str | None = None) -> str:
    """The text a name search matches against: folded name and address, their pinyin and the name's initials.

    `q=rxkf`, `q=ruixing`, `q=瑞幸` and `q=南京西路` all find `瑞幸咖啡（南京西路店）`.
    """
    parts = [key(name), pinyin_key(name), initials_key(name)]
    if address:
        parts += [key(address), pinyin_key(address)]
    return " ".join(dict.fromkeys(p for p in parts if p))
