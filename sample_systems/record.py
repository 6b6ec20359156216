"""Clean records of each license type, in catalog terms, drawn from the shared population.

A builder returns :class:`Records`: one array per catalog field (text as ``str`` arrays, dates as
``datetime64[D]``, catalog codes such as ``bachelor``), plus, for every field that holds a
person's ID number, the index of that person (the number itself is filled in when the rows are
rendered, so defects can be applied to it). Rows come sorted by the license's valid-from date and
numbered in that order, the way a registry's sequence grows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from sample_systems.population import Companies, People, street_addresses
from sample_systems.region import RegionTable

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Strs = npt.NDArray[np.str_]
Dates = npt.NDArray[np.datetime64]
AnyArray = npt.NDArray[np.generic]

_DAY: Final = np.timedelta64(1, "D")


def _years(n: int) -> np.timedelta64:
    return np.timedelta64(round(n * 365.25), "D")


@dataclass(frozen=True)
class Context:
    """What a builder draws from: the population, the clock, the people that must appear."""

    rng: np.random.Generator
    people: People
    companies: Companies
    regions: RegionTable
    now: dt.datetime
    forced_people: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    forced_company: int | None = None
    since: dt.date | None = None  # earliest valid-from date (for rows inserted by mutate)
    start: int = 0  # sequence numbers continue after this one

    @property
    def today(self) -> np.datetime64:
        return np.datetime64(self.now.date().isoformat(), "D")

    def floor(self, default: str) -> np.datetime64:
        """The earliest event date: ``default``, or ``since`` when it is later."""
        lowest = np.datetime64(default, "D")
        if self.since is not None:
            lowest = max(lowest, np.datetime64(self.since.isoformat(), "D"))
        return lowest


@dataclass
class Records:
    """Rows of one license type before defects and rendering."""

    values: dict[str, AnyArray]
    persons: dict[str, I64]  # ID field -> person index per row, -1 where the holder is no person
    companies: I64  # company index per row, -1 where none appears

    @property
    def n(self) -> int:
        return int(self.companies.size)

    def take(self, order: I64) -> Records:
        """The rows in ``order``."""
        return Records(
            values={k: v[order] for k, v in self.values.items()},
            persons={k: v[order] for k, v in self.persons.items()},
            companies=self.companies[order],
        )


def _sample(rng: np.random.Generator, pool: I64, n: int, forced: I64, what: str) -> I64:
    """``n`` distinct members of ``pool``: all of ``forced`` plus random others, shuffled."""
    forced = forced[np.isin(forced, pool)]
    rest = pool[~np.isin(pool, forced)]
    if n < forced.size or n - forced.size > rest.size:
        raise ValueError(f"the population is too small for {n} {what}: raise `people`")
    chosen = np.concatenate((forced, rng.choice(rest, n - forced.size, replace=False)))
    shuffled: I64 = rng.permutation(chosen)
    return shuffled


def _between(rng: np.random.Generator, low: Dates, high: np.datetime64) -> Dates:
    """A uniform date in [low, high] per row (``high`` where ``low`` is later)."""
    span = np.maximum((high - low).astype(np.int64), 0) + 1
    days: Dates = low + np.floor(rng.random(low.size) * span).astype("timedelta64[D]")
    return np.minimum(days, high)


def _sorted(records: Records, event: AnyArray) -> tuple[Records, Dates]:
    order = np.argsort(event, kind="stable")
    ordered: Dates = event[order].astype("datetime64[D]")
    return records.take(order), ordered


def _serial(ctx: Context, n: int, width: int) -> Strs:
    serial: Strs = np.strings.zfill((ctx.start + np.arange(1, n + 1)).astype(f"U{width}"), width)
    return serial


def _year(dates: Dates) -> Strs:
    years: Strs = (dates.astype("datetime64[Y]").astype(np.int64) + 1970).astype("U4")
    return years


def _cat(*parts: AnyArray | str) -> Strs:
    out: Any = np.asarray(parts[0])
    for part in parts[1:]:
        piece: Any = part
        out = np.strings.add(out, piece)
    joined: Strs = out
    return joined


def _none(n: int) -> I64:
    return np.full(n, -1, dtype=np.int64)


# --- marriage certificates (dca) -----------------------------------------------------------------
def marriage_certificate(ctx: Context, n: int) -> Records:
    """``n`` couples; registered where the husband's household is."""
    rng, people, today = ctx.rng, ctx.people, ctx.today
    men = np.flatnonzero(people.male & (people.birth <= today - _years(23)))
    women = np.flatnonzero(~people.male & (people.birth <= today - _years(21)))
    forced = ctx.forced_people
    husband = _sample(rng, men, n, forced[people.male[forced]], "husbands")
    wife = _sample(rng, women, n, forced[~people.male[forced]], "wives")
    earliest = np.maximum(people.birth[husband] + _years(23), people.birth[wife] + _years(21))
    registered = _between(rng, np.maximum(earliest, ctx.floor("1985-01-01")), today - _DAY)
    office = people.region[husband]
    records = Records(
        values={
            "party_a_name": people.name[husband],
            "party_b_name": people.name[wife],
            "registration_date": registered,
            "registration_office": _cat(ctx.regions.place(office), "民政局婚姻登记处"),
            "office_code": ctx.regions.code[office].astype("U6"),
        },
        persons={"party_a_id": husband, "party_b_id": wife},
        companies=_none(n),
    )
    records, registered = _sorted(records, registered)
    code = records.values.pop("office_code")
    records.values["certificate_no"] = _cat(
        "J", code, "-", _year(registered), "-", _serial(ctx, n, 7)
    )
    return records


# --- degree certificates (edu) -------------------------------------------------------------------
INSTITUTIONS: Final = (
    ("10558", "中山大学"),
    ("10561", "华南理工大学"),
    ("10559", "暨南大学"),
    ("10574", "华南师范大学"),
    ("10564", "华南农业大学"),
    ("10570", "广州医科大学"),
    ("10572", "广州中医药大学"),
    ("11078", "广州大学"),
    ("10590", "深圳大学"),
    ("10560", "汕头大学"),
    ("11845", "广东工业大学"),
    ("11846", "广东外语外贸大学"),
    ("10592", "广东财经大学"),
    ("10566", "广东海洋大学"),
)
DISCIPLINES: Final = (
    "哲学",
    "经济学",
    "法学",
    "教育学",
    "文学",
    "历史学",
    "理学",
    "工学",
    "农学",
    "医学",
    "管理学",
    "艺术学",
)
# catalog degree code, level digit in the certificate number, typical age at award
_DEGREES: Final = (("bachelor", "4", 22), ("master", "3", 25), ("doctor", "2", 28))


def degree_certificate(ctx: Context, n: int) -> Records:
    """``n`` degrees, one per graduate, awarded in June or July at a typical age."""
    rng, people, today = ctx.rng, ctx.people, ctx.today
    year = people.birth_year
    eligible = np.flatnonzero((year >= 1955) & (people.birth <= today - _years(23)))
    graduate = _sample(rng, eligible, n, ctx.forced_people, "graduates")
    level = rng.choice(3, size=n, p=[0.75, 0.2, 0.05])
    age = np.array([d[2] for d in _DEGREES])[level] + rng.integers(0, 4, n)
    # Degrees have been awarded since 1982 (学位条例, 1981).
    award_year = np.maximum(year[graduate] + age, 1982)
    june = ((award_year - 1970) * 12 + 5).astype("datetime64[M]").astype("datetime64[D]")
    award = june + 19 + rng.integers(0, 21, n).astype("timedelta64[D]")
    award = np.clip(award, ctx.floor("1982-01-01"), today - _DAY)
    institution = rng.integers(0, len(INSTITUTIONS), n)
    records = Records(
        values={
            "graduate_name": people.name[graduate],
            "degree": np.array([d[0] for d in _DEGREES])[level],
            "discipline": np.array(DISCIPLINES)[rng.integers(0, len(DISCIPLINES), n)],
            "institution": np.array([i[1] for i in INSTITUTIONS])[institution],
            "award_date": award,
            "institution_code": np.array([i[0] for i in INSTITUTIONS])[institution],
            "level_digit": np.array([d[1] for d in _DEGREES])[level],
        },
        persons={"graduate_id": graduate},
        companies=_none(n),
    )
    records, award = _sorted(records, award)
    # 学位证书编号: institution code (5), level (1), year (4), sequence within those (6).
    inst = records.values.pop("institution_code")
    lvl = records.values.pop("level_digit")
    prefix = _cat(inst, lvl, _year(award))
    records.values["certificate_no"] = _cat(
        prefix, np.strings.zfill(_rank_within(prefix).astype("U6"), 6)
    )
    return records


def _rank_within(keys: Strs) -> I64:
    """1-based position of each row among the rows with the same key, in row order."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    sizes = np.diff(np.concatenate((starts, [keys.size])))
    rank = np.empty(keys.size, dtype=np.int64)
    rank[order] = np.arange(keys.size) - np.repeat(starts, sizes) + 1
    if keys.size and rank.max() > 999_999:
        raise ValueError("more than 999999 degrees of one level from one institution in one year")
    return rank


# --- social insurance certificates (hrss) --------------------------------------------------------
_SCHEMES: Final = np.array(["pension", "medical", "unemployment", "work_injury"])


def social_insurance_certificate(ctx: Context, n: int) -> Records:
    """``n`` enrolment certificates issued in the last half year, valid for a year."""
    rng, people, today = ctx.rng, ctx.people, ctx.today
    eligible = np.flatnonzero(people.birth <= today - _years(19))
    insured = _sample(rng, eligible, n, ctx.forced_people, "insured people")
    if ctx.since is None:
        issued = today - rng.integers(1, 181, n).astype("timedelta64[D]")
    else:
        issued = _between(rng, np.full(n, ctx.floor("2000-01-01")), today - _DAY)
    started = (
        people.birth[insured] + _years(18) + rng.integers(0, 10 * 365, n).astype("timedelta64[D]")
    )
    started = np.clip(started, np.datetime64("1995-01-01"), issued - 30 * _DAY)
    months = (issued - started).astype(np.int64) // 30 - rng.integers(0, 25, n)
    records = Records(
        values={
            "insured_name": people.name[insured],
            "insurance_scheme": _SCHEMES[rng.choice(4, size=n, p=[0.45, 0.35, 0.1, 0.1])],
            "enrolled_since": started,
            "months_paid": np.clip(months, 0, 1200),
            "issue_date": issued,
            "valid_until": issued + 365 * _DAY,
        },
        persons={"insured_id": insured},
        companies=_none(n),
    )
    records, issued = _sorted(records, issued)
    # The number is also the registry's primary key: fixed width, so text order is row order.
    records.values["certificate_no"] = _cat("GDSB", _year(issued), _serial(ctx, n, 10))
    return records


# --- real-estate titles (dlr) --------------------------------------------------------------------
_USAGES: Final = np.array(["residential", "commercial", "industrial", "office"])


def real_estate_title(ctx: Context, n: int) -> Records:
    """``n`` titles registered since the 2015 unified registration, a fifth owned by companies."""
    rng, people, companies, today = ctx.rng, ctx.people, ctx.companies, ctx.today
    by_company = round(0.2 * n) if len(companies) else 0
    if ctx.forced_company is not None:
        by_company = max(by_company, 1)
    adults = np.flatnonzero(people.birth <= today - _years(20))
    owner = np.concatenate(
        (_sample(rng, adults, n - by_company, ctx.forced_people, "owners"), _none(by_company))
    )
    company = np.concatenate(
        (_none(n - by_company), rng.integers(0, max(len(companies), 1), by_company))
    )
    if ctx.forced_company is not None:
        company[n - by_company] = ctx.forced_company
    order = rng.permutation(n)
    owner, company = owner[order], company[order]
    is_person = owner >= 0
    usage = np.where(
        is_person,
        rng.choice(4, size=n, p=[0.85, 0.1, 0.0, 0.05]),
        rng.choice(4, size=n, p=[0.0, 0.3, 0.35, 0.35]),
    )
    area = np.where(usage == 0, rng.lognormal(4.45, 0.35, n), rng.lognormal(5.3, 0.8, n))
    place = ctx.regions.draw(rng, np.full(n, ctx.now.year, dtype=np.int64))
    building = _cat(
        rng.integers(1, 40, n).astype("U2"), "栋", rng.integers(101, 3300, n).astype("U4"), "房"
    )
    company_at = np.maximum(company, 0)
    records = Records(
        values={
            "owner_kind": np.where(is_person, "natural_person", "legal_person"),
            "owner_id": np.where(
                is_person, "", companies.credit_code[company_at] if len(companies) else ""
            ),
            "owner_name": np.where(
                is_person,
                people.name[np.maximum(owner, 0)],
                companies.name[company_at] if len(companies) else "",
            ),
            "location": _cat(ctx.regions.place(place), street_addresses(rng, n), building),
            "area_m2": np.round(np.clip(area, 15, 20_000), 2),
            "usage": _USAGES[usage],
            "issue_date": _between(rng, np.full(n, ctx.floor("2015-03-01")), today - _DAY),
            "city": ctx.regions.city[place],
        },
        persons={"owner_id": owner},
        companies=company,
    )
    records, issued = _sorted(records, records.values["issue_date"])
    city = records.values.pop("city")
    records.values["certificate_no"] = _cat(
        "粤（", _year(issued), "）", city, "不动产权第", _serial(ctx, n, 7), "号"
    )
    return records


# --- business licenses (aic) ---------------------------------------------------------------------
def business_license(ctx: Context, n: int) -> Records:
    """One license per company of the population (``n`` must be their number)."""
    companies, people = ctx.companies, ctx.people
    if n != len(companies):
        raise ValueError("business licenses are one per company")
    records = Records(
        values={
            "credit_code": companies.credit_code,
            "company_name": companies.name,
            "company_type": companies.company_type,
            "legal_rep_name": people.name[companies.legal_rep],
            "registered_capital": companies.registered_capital,
            "address": companies.address,
            "established_date": companies.established,
            "operating_until": companies.operating_until,
        },
        persons={"legal_rep_id": companies.legal_rep},
        companies=np.arange(n, dtype=np.int64),
    )
    return _sorted(records, companies.established)[0]


Builder = Callable[[Context, int], Records]
BUILDERS: Final[dict[str, Builder]] = {
    "marriage_certificate": marriage_certificate,
    "degree_certificate": degree_certificate,
    "social_insurance_certificate": social_insurance_certificate,
    "real_estate_title": real_estate_title,
    "business_license": business_license,
}


# --- updates (for mutate) ------------------------------------------------------------------------
# Each takes the current values of the fields it reads and the date each row is changed on, and
# returns new values of the fields it changes, in catalog terms; a changed row must stay clean
# (same holders, dates still in order).
Current = dict[str, list[object]]
Updater = Callable[[np.random.Generator, Current, Dates, Context], dict[str, AnyArray]]


def _update_marriage(
    rng: np.random.Generator, current: Current, when: Dates, ctx: Context
) -> dict[str, AnyArray]:
    # A corrected office name (e.g. after a district merger), the most common edit in the registry.
    place = ctx.regions.draw(rng, np.full(when.size, ctx.now.year, dtype=np.int64))
    return {"registration_office": _cat(ctx.regions.place(place), "民政局婚姻登记处")}


def _update_title(
    rng: np.random.Generator, current: Current, when: Dates, ctx: Context
) -> dict[str, AnyArray]:
    # A re-survey changes the recorded floor area by a few percent.
    area = np.array([float(str(a)) for a in current["area_m2"]], dtype=np.float64)
    return {"area_m2": np.round(area * rng.uniform(0.95, 1.05, when.size), 2)}


def _update_insurance(
    rng: np.random.Generator, current: Current, when: Dates, ctx: Context
) -> dict[str, AnyArray]:
    # The certificate is re-issued on the day of the change with the months paid since added.
    paid = np.array([int(str(m)) for m in current["months_paid"]], dtype=np.int64)
    return {
        "months_paid": np.clip(paid + rng.integers(1, 13, when.size), 0, 1200),
        "issue_date": when,
        "valid_until": when + 365 * _DAY,
    }


UPDATERS: Final[dict[str, tuple[tuple[str, ...], Updater]]] = {
    "marriage_certificate": ((), _update_marriage),
    "real_estate_title": (("area_m2",), _update_title),
    "social_insurance_certificate": (("months_paid",), _update_insurance),
}
