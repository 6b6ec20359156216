"""GB/T 2260 administrative division codes, with the years each code was in use.

The table is python-stdnum's ``stdnum/cn/loc.dat`` (transcribed from zh.wikipedia's lists of
division codes, historic codes included), read from the installed package, plus a small
supplement shipped in ``catalog_schemas/data/gbt2260_supplement.csv`` for current codes that
loc.dat lacks (see docs/identifiers.md). :func:`load_division_table` parses both once.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources

logger = logging.getLogger(__name__)

_PROVINCE_LINE = re.compile(r'^(\d{2}) province="([^"]*)"$')
_COUNTY_LINE = re.compile(r'^  (\d{4}) county="([^"]*)"$')
_DATED_NAME = re.compile(r"^\[(\d{4})?-(\d{4})?\](.+)$")
_CODE6 = re.compile(r"^\d{6}$")
_CODE2 = re.compile(r"^\d{2}$")

SUPPLEMENT_RESOURCE = "gbt2260_supplement.csv"


@dataclass(frozen=True, slots=True)
class DivisionPeriod:
    """One name a code carried, from ``valid_from`` to ``valid_to`` (years, both inclusive).

    ``None`` means open: since before the table's records, or still in use. A few loc.dat periods
    end before they start (e.g. 442401 梅州市 [1983-1982]); they are kept as published and cover no
    year, but their code still exists.
    """

    name: str
    valid_from: int | None
    valid_to: int | None

    def covers(self, year: int) -> bool:
        """Whether the code carried this name at some time in ``year``."""
        if self.valid_from is not None and year < self.valid_from:
            return False
        return self.valid_to is None or year <= self.valid_to


class DivisionTable:
    """Six-digit division codes with their dated names, and the two-digit provinces."""

    def __init__(
        self,
        provinces: Mapping[str, str],
        divisions: Mapping[str, Iterable[DivisionPeriod]],
    ) -> None:
        for prefix in provinces:
            if not _CODE2.match(prefix):
                raise ValueError(f"province prefix must be 2 digits, got {prefix!r}")
        self._provinces = dict(provinces)
        self._divisions: dict[str, tuple[DivisionPeriod, ...]] = {}
        for code, periods in divisions.items():
            if not _CODE6.match(code):
                raise ValueError(f"division code must be 6 digits, got {code!r}")
            if code[:2] not in self._provinces:
                raise ValueError(f"division code {code} lies in no province of the table")
            self._divisions[code] = tuple(periods)
            if not self._divisions[code]:
                raise ValueError(f"division code {code} has no name")

    @classmethod
    def parse_loc_dat(cls, text: str) -> DivisionTable:
        """Parse python-stdnum's loc.dat (``NN province=`` lines, indented ``NNNN county=``)."""
        provinces: dict[str, str] = {}
        divisions: dict[str, list[DivisionPeriod]] = {}
        province: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            if match := _PROVINCE_LINE.match(line):
                province = match.group(1)
                provinces[province] = match.group(2)
                continue
            match = _COUNTY_LINE.match(line)
            if match is None or province is None:
                raise ValueError(f"loc.dat line {number}: not a province or county line")
            code = province + match.group(1)
            if code in divisions:
                raise ValueError(f"loc.dat line {number}: code {code} listed twice")
            divisions[code] = [_parse_period(part, number) for part in match.group(2).split(",")]
        return cls(provinces, divisions)

    def with_supplement(self, rows: Iterable[Mapping[str, str]]) -> DivisionTable:
        """A copy with extra periods (``code,name,valid_from_year,valid_to_year`` rows) added."""
        divisions: dict[str, list[DivisionPeriod]] = {
            code: list(periods) for code, periods in self._divisions.items()
        }
        for row in rows:
            period = DivisionPeriod(
                name=row["name"],
                valid_from=_year(row.get("valid_from_year") or ""),
                valid_to=_year(row.get("valid_to_year") or ""),
            )
            divisions.setdefault(row["code"], []).append(period)
        return DivisionTable(self._provinces, divisions)

    def __len__(self) -> int:
        return len(self._divisions)

    def __iter__(self) -> Iterator[str]:
        return iter(self._divisions)

    def __contains__(self, code: object) -> bool:
        return code in self._divisions

    def periods(self, code: str) -> tuple[DivisionPeriod, ...]:
        """Every name ``code`` carried, oldest first; empty for an unknown code."""
        return self._divisions.get(code, ())

    def exists(self, code: str) -> bool:
        """Whether ``code`` is a division code at any time in the table (current or historic)."""
        return code in self._divisions

    def valid_in(self, code: str, year: int) -> bool:
        """Whether ``code`` was in use at some time during ``year``."""
        return any(period.covers(year) for period in self.periods(code))

    def is_current(self, code: str) -> bool:
        """Whether ``code`` is still in use (one of its periods has no end year)."""
        return any(period.valid_to is None for period in self.periods(code))

    def last_year(self, code: str) -> int | None:
        """The last year ``code`` was in use, ``None`` if it still is; ``KeyError`` if unknown."""
        periods = self._divisions[code]
        if any(period.valid_to is None for period in periods):
            return None
        return max(period.valid_to for period in periods if period.valid_to is not None)

    def name(self, code: str, year: int | None = None) -> str | None:
        """The name of ``code`` in ``year`` (default: its latest name); ``None`` if none."""
        periods = self.periods(code)
        if year is not None:
            periods = tuple(period for period in periods if period.covers(year))
        if not periods:
            return None
        # An open-ended period is the current name; otherwise the one that ended last.
        return max(periods, key=lambda p: (p.valid_to is None, p.valid_to or 0)).name

    def province_exists(self, prefix2: str) -> bool:
        """Whether the two-digit province (or provincial-level) prefix exists."""
        return prefix2 in self._provinces

    def province_name(self, prefix2: str) -> str | None:
        """The province's name as the table spells it; ``None`` if unknown."""
        return self._provinces.get(prefix2)


def _parse_period(part: str, line_number: int) -> DivisionPeriod:
    match = _DATED_NAME.match(part)
    if match is None:
        if not part or part.startswith("["):
            raise ValueError(f"loc.dat line {line_number}: bad county name {part!r}")
        return DivisionPeriod(name=part, valid_from=None, valid_to=None)
    return DivisionPeriod(
        name=match.group(3),
        valid_from=_year(match.group(1) or ""),
        valid_to=_year(match.group(2) or ""),
    )


def _year(text: str) -> int | None:
    return int(text) if text.strip() else None


@functools.cache
def load_division_table() -> DivisionTable:
    """The shipped table: installed python-stdnum's loc.dat plus OneHub's supplement (cached)."""
    loc_dat = (resources.files("stdnum.cn") / "loc.dat").read_text(encoding="utf-8")
    supplement = (resources.files("catalog_schemas") / "data" / SUPPLEMENT_RESOURCE).read_text(
        encoding="utf-8"
    )
    rows = list(csv.DictReader(io.StringIO(supplement)))
    table = DivisionTable.parse_loc_dat(loc_dat).with_supplement(rows)
    logger.debug(
        "loaded %d GB/T 2260 division codes (%d from the supplement)", len(table), len(rows)
    )
    return table
