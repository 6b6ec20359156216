"""Reading the sample department systems back the way a department's consumer would.

Independent of the generator's writers: CSV through the csv module in the declared encoding, SQL
tables through reflection, dates parsed by the four local formats.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from stdnum.iso7064 import mod_11_2

from catalog_schemas.catalog import shipped_catalog
from catalog_schemas.model import Source, SqlConnector
from sample_systems import DEFAULT_NOW, Manifest, generate

_DATE_FORMATS = (
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
    re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$"),
)


def parse_date(text: str) -> dt.date:
    """A date in one of the departments' formats; AssertionError otherwise."""
    for pattern in _DATE_FORMATS:
        match = pattern.match(text)
        if match:
            return dt.date(*(int(g) for g in match.groups()))
    raise AssertionError(f"not a department date: {text!r}")


def date_format(text: str) -> int:
    """Which of the four formats ``text`` uses."""
    for index, pattern in enumerate(_DATE_FORMATS):
        if pattern.match(text):
            return index
    raise AssertionError(f"not a department date: {text!r}")


@dataclass
class Row:
    ref: str
    values: dict[str, Any]  # source column -> value; empty CSV fields are None


def source_url(out_dir: Path, source: Source, sql_urls: dict[str, str] | None = None) -> str:
    connection = source.connector.connection
    if sql_urls and connection in sql_urls:
        return sql_urls[connection]
    return f"sqlite:///{out_dir / f'{connection}.db'}"


def read_rows(
    out_dir: Path, manifest: Manifest, name: str, sql_urls: dict[str, str] | None = None
) -> list[Row]:
    """Every row of a generated source, in keyset order for SQL and file order for CSV."""
    source = shipped_catalog().source(name)
    connector = source.connector
    if isinstance(connector, SqlConnector):
        engine = sa.create_engine(source_url(out_dir, source, sql_urls))
        try:
            table = sa.Table(connector.table, sa.MetaData(), autoload_with=engine)
            query = sa.select(table).order_by(
                table.c[connector.watermark], table.c[connector.primary_key]
            )
            with engine.connect() as conn:
                rows = [dict(r) for r in conn.execute(query).mappings()]
        finally:
            engine.dispose()
        return [Row(f"pk={r[connector.primary_key]}", r) for r in rows]
    out: list[Row] = []
    for file_name in manifest.sources[name].files:
        path = out_dir / connector.connection / file_name
        with path.open(encoding=connector.encoding, newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            for line, record in enumerate(reader, start=2):
                values = {k: (v if v != "" else None) for k, v in zip(header, record, strict=True)}
                out.append(Row(f"{file_name}:{line}", values))
    return out


def column(source: Source, field: str) -> str:
    """The source column of a catalog field."""
    name = source.mapping[field].column
    assert name is not None
    return name


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    """The default sample (1000 people, 200 companies, 3 % dirty), generated once per module."""
    out_dir = tmp_path_factory.mktemp("sample")
    return out_dir, generate(out_dir=out_dir)


_FULLWIDTH = re.compile("[\uff10-\uff19\uff38]")


def person_id_columns(source: Source) -> list[tuple[str, str | None, str | None]]:
    """(ID column, kind column, department code for natural person) per natural-person holder."""
    license_type = shipped_catalog().license_type(source.license_type)
    out: list[tuple[str, str | None, str | None]] = []
    for holder in license_type.holders:
        if "natural_person" not in holder.kinds:
            continue
        if holder.kind_field is None:
            out.append((column(source, holder.id_field), None, None))
            continue
        codes = source.mapping[holder.kind_field].codes or {}
        person_code = next(own for own, catalog in codes.items() if catalog == "natural_person")
        out.append(
            (column(source, holder.id_field), column(source, holder.kind_field), person_code)
        )
    return out


def observe(name: str, rows: list[Row]) -> dict[str, list[str]]:
    """The defects visible in the data alone, per row ref (rows without any are left out)."""
    source = shipped_catalog().source(name)
    license_type = shipped_catalog().license_type(source.license_type)
    number = column(source, license_type.license_no_field)
    seen: dict[Any, int] = {}
    for row in rows:
        seen[row.values[number]] = seen.get(row.values[number], 0) + 1
    names = [h.name_field for h in license_type.holders if h.name_field]
    required = [column(source, n) for n in names if license_type.field(n).required]
    found: dict[str, list[str]] = {}
    for row in rows:
        kinds: list[str] = []
        for id_column, kind_column, person_code in person_id_columns(source):
            value = row.values[id_column]
            if kind_column is not None and row.values[kind_column] != person_code:
                continue
            if _FULLWIDTH.search(value):
                kinds.append("fullwidth_digits")
            elif len(value) == 15:
                kinds.append("legacy_15_digit")
            elif mod_11_2.calc_check_digit(value[:17]) != value[17]:
                kinds.append("wrong_check_char")
        if any(row.values[c] in (None, "") for c in required):
            kinds.append("missing_required")
        for earlier, later in license_type.date_order:
            a, b = row.values[column(source, earlier)], row.values[column(source, later)]
            if a and b and parse_date(a) > parse_date(b):
                kinds.append("date_order")
        if seen[row.values[number]] > 1:
            kinds.append("duplicate_license_no")
        if kinds:
            found[row.ref] = kinds
    return found


class Reader:
    """The helpers above, handed to tests as the ``reader`` fixture (no importing conftest)."""

    now = DEFAULT_NOW
    parse_date = staticmethod(parse_date)
    date_format = staticmethod(date_format)
    read_rows = staticmethod(read_rows)
    column = staticmethod(column)
    source_url = staticmethod(source_url)
    observe = staticmethod(observe)
    person_id_columns = staticmethod(person_id_columns)


@pytest.fixture
def reader() -> Reader:
    return Reader()
