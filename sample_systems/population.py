"""One synthetic population of people and companies, shared by every department's system.

Built column-wise with numpy: names from small surname and given-name arrays (Faker row by row
costs about a minute per million), unique resident ID numbers from division codes valid in the
birth year, and companies whose legal representatives are people of the population.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from sample_systems.identifier import credit_codes, resident_id_body, resident_ids
from sample_systems.region import RegionTable

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Strs = npt.NDArray[np.str_]
Dates = npt.NDArray[np.datetime64]

BIRTH_FIRST: Final = dt.date(1950, 1, 1)
BIRTH_LAST: Final = dt.date(2004, 12, 31)

# Common surnames, most frequent in Guangdong first; drawn with weights falling by rank.
_SURNAMES: Final = np.array(
    list(
        "陈李黄张梁林刘吴罗杨郑谢何许曾邓冯朱钟彭苏蔡卢叶潘王赖邱周胡陆肖郭徐余江廖莫谭"
        "温方孙姚高邹袁赵汤欧庄洪麦詹丘甘柯侯龙关马古严区宋杜石范沈"
    )
)
_SURNAME_WEIGHTS: Final = 1.0 / np.arange(1, _SURNAMES.size + 1) ** 0.9
_MALE_GIVEN: Final = np.array(
    list("伟强磊军勇杰涛明超华建国志文斌鹏辉俊浩宇峰海波龙成东洋鑫锋坚荣健")
)
_FEMALE_GIVEN: Final = np.array(
    list("芳娜敏静丽秀英燕霞玲婷雪慧琳颖欣怡佳梅莉红洁晶璐倩萍兰凤妍月")
)
_ANY_GIVEN: Final = np.array(list("嘉子文思雨家晓永宏海天安乐春秋少振德丹嘉锦咏"))

_TRADE: Final = np.array(list("恒通华达鑫源泰盛宏兴信利丰德安康永祥瑞嘉凯豪创博联远新金粤南海天"))
_INDUSTRY: Final = np.array(
    [
        "科技",
        "贸易",
        "实业",
        "电子",
        "建筑工程",
        "餐饮管理",
        "物流",
        "投资",
        "服装",
        "食品",
        "家具",
        "医药",
        "文化传播",
        "网络科技",
        "五金制品",
        "印刷",
        "陶瓷",
        "物业管理",
    ]
)
# catalog company_type code -> name suffix
COMPANY_TYPES: Final = ("llc", "jsc", "sole", "partnership")
_COMPANY_TYPE_WEIGHTS: Final = np.array([0.78, 0.05, 0.1, 0.07])
_COMPANY_SUFFIX: Final = np.array(["有限公司", "股份有限公司", "经营部", "合伙企业（有限合伙）"])

_STREETS: Final = np.array(
    [
        "中山路",
        "人民路",
        "解放路",
        "建设路",
        "新华路",
        "环城路",
        "东风路",
        "滨江路",
        "工业大道",
        "科技园路",
        "沿江路",
        "文明路",
        "体育路",
        "花园路",
        "金融街",
        "迎宾大道",
        "府前路",
        "朝阳路",
    ]
)


def _day(value: dt.date | dt.datetime) -> np.datetime64:
    return np.datetime64(value.isoformat()[:10], "D")


def _pick(rng: np.random.Generator, pool: Strs, n: int) -> Strs:
    picked: Strs = pool[rng.integers(0, pool.size, n)]
    return picked


def given_names(rng: np.random.Generator, male: Bools) -> Strs:
    """One- or two-character given names, the first character leaning to the person's sex."""
    n = male.size
    first = np.where(male, _pick(rng, _MALE_GIVEN, n), _pick(rng, _FEMALE_GIVEN, n))
    neutral = rng.random(n) < 0.3
    first = np.where(neutral, _pick(rng, _ANY_GIVEN, n), first)
    second = np.where(male, _pick(rng, _MALE_GIVEN, n), _pick(rng, _FEMALE_GIVEN, n))
    second = np.where(rng.random(n) < 0.7, second, "")
    names: Strs = np.strings.add(first, second)
    return names


def street_addresses(rng: np.random.Generator, n: int) -> Strs:
    """Street and number, e.g. ``人民路128号``."""
    number = rng.integers(1, 1000, n).astype("U4")
    address: Strs = np.strings.add(np.strings.add(_pick(rng, _STREETS, n), number), "号")
    return address


@dataclass(frozen=True)
class People:
    """The natural persons: index i is one person across every source."""

    resident_id: Strs
    name: Strs
    male: Bools
    birth: Dates
    region: I64

    def __len__(self) -> int:
        return int(self.resident_id.size)

    @property
    def birth_year(self) -> I64:
        years: I64 = self.birth.astype("datetime64[Y]").astype(np.int64) + 1970
        return years


def make_people(
    rng: np.random.Generator,
    n: int,
    *,
    regions: RegionTable,
    now: dt.datetime,
    exclude: Strs | None = None,
) -> People:
    """``n`` people with unique resident ID numbers (none of ``exclude``), born 1950-2004."""
    last = min(_day(BIRTH_LAST), _day(now) - np.timedelta64(16 * 366, "D"))
    span = int((last - _day(BIRTH_FIRST)).astype(np.int64)) + 1
    if span <= 0:
        raise ValueError("now is too early for a population born from 1950")
    taken = (
        np.zeros(0, dtype=np.int64) if exclude is None else exclude.astype("U17").astype(np.int64)
    )
    bodies = np.zeros(0, dtype=np.int64)
    regions_of = np.zeros(0, dtype=np.int64)
    births = np.zeros(0, dtype="datetime64[D]")
    while bodies.size < n:
        # Draw a little more than needed, drop collisions, and draw again in the rare short case.
        want = n - bodies.size
        size = want + want // 50 + 16
        birth = _day(BIRTH_FIRST) + rng.integers(0, span, size).astype("timedelta64[D]")
        year = birth.astype("datetime64[Y]").astype(np.int64) + 1970
        region = regions.draw(rng, year)
        body = resident_id_body(regions.code[region], birth, rng.integers(1, 1000, size))
        _, first = np.unique(np.concatenate((bodies, body)), return_index=True)
        fresh = np.sort(first[first >= bodies.size]) - bodies.size
        fresh = fresh[~np.isin(body[fresh], taken)][:want]
        bodies = np.concatenate((bodies, body[fresh]))
        regions_of = np.concatenate((regions_of, region[fresh]))
        births = np.concatenate((births, birth[fresh]))
    male = (bodies % 2) == 1  # GB 11643: an odd sequence number is a man
    surname = rng.choice(_SURNAMES, size=n, p=_SURNAME_WEIGHTS / _SURNAME_WEIGHTS.sum())
    return People(
        resident_id=resident_ids(bodies),
        name=np.strings.add(surname, given_names(rng, male)),
        male=male,
        birth=births,
        region=regions_of,
    )


@dataclass(frozen=True)
class Companies:
    """The legal persons; ``legal_rep`` indexes :class:`People`."""

    credit_code: Strs
    name: Strs
    company_type: Strs
    legal_rep: I64
    registered_capital: F64
    address: Strs
    established: Dates
    operating_until: Dates
    region: I64

    def __len__(self) -> int:
        return int(self.credit_code.size)


def make_companies(
    rng: np.random.Generator,
    n: int,
    *,
    people: People,
    regions: RegionTable,
    now: dt.datetime,
    exclude: Strs | None = None,
) -> Companies:
    """``n`` companies with unique credit codes, each led by an adult of ``people``."""
    today = _day(now)
    adults = np.flatnonzero(people.birth <= today - np.timedelta64(23 * 366, "D"))
    if adults.size == 0:
        raise ValueError("the population has no adult to be a legal representative")
    codes = np.zeros(0, dtype="U18")
    region = np.zeros(0, dtype=np.int64)
    while codes.size < n:
        want = n - codes.size
        size = want + want // 50 + 16
        # Companies are registered where a county-level code is current today.
        drawn = regions.draw(rng, np.full(size, now.year, dtype=np.int64))
        fresh_codes = credit_codes("91", regions.code[drawn], rng.integers(0, 10**8, size))
        merged = np.concatenate((codes, fresh_codes))
        _, first = np.unique(merged, return_index=True)
        fresh = np.sort(first[first >= codes.size]) - codes.size
        if exclude is not None:
            fresh = fresh[~np.isin(fresh_codes[fresh], exclude)]
        fresh = fresh[:want]
        codes = np.concatenate((codes, fresh_codes[fresh]))
        region = np.concatenate((region, drawn[fresh]))
    rep = adults[rng.integers(0, adults.size, n)]
    kind = rng.choice(len(COMPANY_TYPES), size=n, p=_COMPANY_TYPE_WEIGHTS)
    trade = np.strings.add(_pick(rng, _TRADE, n), _pick(rng, _TRADE, n))
    city = np.strings.replace(regions.city[region], "市", "")
    name = np.strings.add(
        np.strings.add(np.strings.add(city, trade), _pick(rng, _INDUSTRY, n)), _COMPANY_SUFFIX[kind]
    )
    # Established once the representative is 22 and not before 1990, at the latest yesterday.
    earliest = np.maximum(
        people.birth[rep] + np.timedelta64(22 * 366, "D"), np.datetime64("1990-01-01")
    )
    latest = today - np.timedelta64(1, "D")
    span = np.maximum((latest - earliest).astype(np.int64), 0) + 1
    established = earliest + np.floor(rng.random(n) * span).astype("timedelta64[D]")
    years = np.array([10, 20, 30, 50])[rng.integers(0, 4, n)] * 365
    until = established + years.astype("timedelta64[D]")
    # A term that ran out was extended (变更登记) in 20-year steps: licenses on file are current.
    overdue = np.maximum((today - until).astype(np.int64), 0)
    until = until + (np.ceil(overdue / (20 * 365)) * 20 * 365).astype("timedelta64[D]")
    until = np.where(rng.random(n) < 0.4, np.datetime64("NaT"), until)  # 长期: no end date
    capital = np.round(np.exp(rng.normal(5.0, 1.6, n)), 0).clip(3, 500_000)
    address = np.strings.add(
        np.strings.add("广东省", regions.place(region)), street_addresses(rng, n)
    )
    return Companies(
        credit_code=codes,
        name=name,
        company_type=np.array(COMPANY_TYPES)[kind],
        legal_rep=rep,
        registered_capital=capital.astype(np.float64),
        address=address,
        established=established,
        operating_until=until,
        region=region,
    )
