"""A source's rows in the department's own shape: its column names, codes, date formats and keys.

The layout comes from the catalog: one column per mapped field (``mapping.<field>.column``), plus
the connector's primary key and, for SQL, its watermark column when the mapping does not name them.
Dates are text in the department's local formats, mixed row by row as real exports are; catalog
codes are turned back into the department's codes (``bachelor`` -> ``学士``, ``llc`` -> ``1100``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from catalog_schemas.model import LicenseType, Source, SqlConnector
from sample_systems import defect
from sample_systems.population import People
from sample_systems.record import Records

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Objects = npt.NDArray[np.object_]
Dates = npt.NDArray[np.datetime64]

DateStyle = Literal["compact", "iso", "slash", "cjk"]
# Per source: the date formats its export uses and how often (20160323, 2016-03-23, 2016/3/23,
# 2016年3月23日). One row uses one format for all its dates, as one clerk's entry would.
DATE_STYLES: Final[dict[str, tuple[tuple[DateStyle, float], ...]]] = {
    "dca_marriage": (("compact", 0.6), ("iso", 0.25), ("cjk", 0.15)),
    "dlr_title": (("slash", 0.5), ("iso", 0.5)),
    "hrss_insurance": (("compact", 0.7), ("iso", 0.3)),
    "aic_business": (("iso", 0.4), ("slash", 0.3), ("cjk", 0.3)),
    "edu_degree": (("iso", 0.5), ("compact", 0.3), ("cjk", 0.2)),
}
DEFAULT_DATE_STYLE: Final[tuple[tuple[DateStyle, float], ...]] = (("iso", 1.0),)

_STRING_LENGTH: Final = {
    "date": 20,
    "code": 16,
    "resident_id": 32,
    "credit_code": 32,
    "holder_id": 32,
}


@dataclass(frozen=True)
class Column:
    """One column of the department's table or file."""

    name: str
    field: str | None  # the catalog field it maps to; None for a surrogate key or the watermark
    role: Literal["key", "field", "watermark"]


def columns_of(source: Source, license_type: LicenseType) -> list[Column]:
    """Key first (unless it is a mapped field), then the mapped fields in order, watermark last."""
    connector = source.connector
    mapped = [(f, c.column) for f, c in source.mapping.items() if c.column is not None]
    names = [column for _, column in mapped]
    columns: list[Column] = []
    if connector.primary_key not in names:
        columns.append(Column(connector.primary_key, None, "key"))
    columns += [Column(column, f, "field") for f, column in mapped]
    if isinstance(connector, SqlConnector) and connector.watermark not in names:
        columns.append(Column(connector.watermark, None, "watermark"))
    if len({c.name for c in columns}) != len(columns):
        raise ValueError(f"{source.name}: two fields map to the same column")
    return columns


def sql_table(source: Source, license_type: LicenseType, metadata: sa.MetaData) -> sa.Table:
    """The department's table: text dates, a DATETIME watermark, an index for keyset paging."""
    connector = source.connector
    if not isinstance(connector, SqlConnector) or connector.table is None:
        raise ValueError(f"{source.name} is not a SQL table source")
    columns: list[sa.Column[Any]] = []
    for column in columns_of(source, license_type):
        is_key = column.name == connector.primary_key
        if column.field is None:
            kind: sa.types.TypeEngine[Any] = (
                sa.BigInteger() if column.role == "key" else sa.DateTime()
            )
        else:
            kind = _sql_type(license_type, column.field)
        columns.append(
            sa.Column(
                column.name,
                kind,
                primary_key=is_key,
                autoincrement=False,
                nullable=not (is_key or column.role == "watermark"),
            )
        )
    table = sa.Table(connector.table, metadata, *columns)
    # Attached to the table: created with it, or after a bulk load (see export.write_table).
    sa.Index(
        f"ix_{connector.table}_{connector.watermark}",
        table.c[connector.watermark],
        table.c[connector.primary_key],
    )
    return table


def _sql_type(license_type: LicenseType, name: str) -> sa.types.TypeEngine[Any]:
    spec = license_type.field(name)
    if spec.type == "integer":
        return sa.Integer()
    if spec.type == "decimal":
        # SQLite has no decimal type; SQLAlchemy warns when it reads NUMERIC back there.
        return sa.Numeric(14, 2).with_variant(sa.Float(), "sqlite")
    return sa.String(_STRING_LENGTH.get(spec.type) or spec.max_length or 255)


@dataclass
class Rendered:
    """Rows ready to write: column -> Python values, plus the defects they carry."""

    columns: list[Column]
    data: dict[str, list[Any]]
    defects: list[defect.Defect]
    id_variants: list[str]
    persons: list[I64]  # the person indexes that appear, per ID field

    @property
    def n(self) -> int:
        return len(next(iter(self.data.values()))) if self.data else 0

    def keys(self, source: Source) -> list[Any]:
        return self.data[source.connector.primary_key]


def date_styles(rng: np.random.Generator, source: Source, n: int) -> I64:
    """A date format per row, index into :data:`DATE_STYLES` of the source."""
    styles = DATE_STYLES.get(source.name, DEFAULT_DATE_STYLE)
    weights = np.array([w for _, w in styles])
    chosen: I64 = rng.choice(len(styles), size=n, p=weights / weights.sum())
    return chosen


# Text of small numbers by lookup, much faster than converting each integer.
_PADDED: Final = np.array([f"{i:02d}" for i in range(100)])
_PLAIN: Final = np.array([str(i) for i in range(100)])
_YEAR_BASE: Final = 1800
_YEARS: Final = np.array([str(y) for y in range(_YEAR_BASE, 2400)])


def format_dates(source: Source, dates: Dates, style: I64) -> Objects:
    """Dates as the department's text; NaT becomes None."""
    styles = DATE_STYLES.get(source.name, DEFAULT_DATE_STYLE)
    present = ~np.isnat(dates)
    known = np.where(present, dates, np.datetime64("2000-01-01", "D"))
    year = known.astype("datetime64[Y]").astype(np.int64) + 1970
    month = known.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (known - known.astype("datetime64[M]")).astype(np.int64) + 1
    if year.size and (year.min() < _YEAR_BASE or year.max() >= _YEAR_BASE + _YEARS.size):
        raise ValueError("a date outside 1800-2399")
    out = np.full(dates.size, "", dtype="U12")
    for index, (name, _) in enumerate(styles):
        rows = style == index
        y, m, d = _YEARS[year[rows] - _YEAR_BASE], month[rows], day[rows]
        if name == "compact":
            text = _join(y, _PADDED[m], _PADDED[d])
        elif name == "iso":
            text = _join(y, "-", _PADDED[m], "-", _PADDED[d])
        elif name == "slash":
            text = _join(y, "/", _PLAIN[m], "/", _PLAIN[d])
        else:
            text = _join(y, "年", _PLAIN[m], "月", _PLAIN[d], "日")
        out[rows] = text
    values = out.astype(object)
    values[~present] = None
    return values


def _join(*parts: npt.NDArray[np.str_] | str) -> npt.NDArray[np.str_]:
    out = np.asarray(parts[0])
    for part in parts[1:]:
        out = np.strings.add(out, part)
    joined: npt.NDArray[np.str_] = out
    return joined


def watermarks(
    rng: np.random.Generator, event: Dates, now: dt.datetime, span_days: int = 365
) -> Dates:
    """Non-decreasing DATETIMEs over the last ``span_days``, never before the row's own event."""
    n = event.size
    end = np.datetime64(now.replace(microsecond=0).isoformat(), "s")
    span = span_days * 86_400
    stamps = (
        end - np.timedelta64(span, "s") + np.sort(rng.integers(0, span, n)).astype("timedelta64[s]")
    )
    written = event.astype("datetime64[s]") + rng.integers(8 * 3600, 18 * 3600, n).astype(
        "timedelta64[s]"
    )
    # Sorted, so keyset order (watermark, key) is row order. Rows are in event order, so the
    # i-th smallest value is still no earlier than row i's own event. Equal stamps can occur.
    ordered: Dates = np.minimum(np.sort(np.maximum(stamps, written)), end)
    return ordered


def render(
    source: Source,
    license_type: LicenseType,
    records: Records,
    *,
    rng: np.random.Generator,
    people: People,
    dirty_rate: float,
    now: dt.datetime,
    key_start: int,
    protected: Bools,
    file_output: bool,
) -> Rendered:
    """Fill in ID numbers, apply defects, and convert every field to the department's form."""
    n = records.n
    columns = columns_of(source, license_type)
    text: dict[str, Objects] = {}
    dates: dict[str, Dates] = {}
    numbers: dict[str, npt.NDArray[Any]] = {}
    for column in columns:
        if column.field is None:
            continue
        name, spec = column.field, license_type.field(column.field)
        if name not in records.values and name not in records.persons:
            raise ValueError(f"{source.name}: no values for field {name!r}")
        if spec.type == "date":
            dates[name] = records.values[name].astype("datetime64[D]").copy()
        elif spec.type in ("integer", "decimal"):
            numbers[name] = records.values[name]
        elif name in records.persons:
            index = records.persons[name]
            base = records.values.get(name, np.full(n, "", dtype="U1")).astype(object)
            base[index >= 0] = people.resident_id[index[index >= 0]].astype(object)
            text[name] = base
        else:
            text[name] = records.values[name].astype(object)

    connector = source.connector
    is_sql = isinstance(connector, SqlConnector)
    mark: Dates | None = None
    if is_sql:
        event_field = license_type.valid_from_field or next(iter(dates))
        mark = watermarks(rng, records.values[event_field].astype("datetime64[D]"), now)

    kinds = defect.applicable_kinds(source, license_type)
    counts = defect.planned_counts(n, kinds, dirty_rate)
    defects = defect.plan(
        rng,
        n=n,
        counts=counts,
        persons=records.persons,
        birth_year=people.birth_year,
        protected=protected,
        name_fields=defect.required_name_fields(license_type),
        date_pairs=license_type.date_order,
        license_field=license_type.license_no_field,
        batch_size=connector.batch_size,
        what=source.name,
    )
    variants = defect.apply(
        rng, defects, text=text, dates=dates, date_pairs=license_type.date_order, watermark=mark
    )

    style = date_styles(rng, source, n)
    data: dict[str, list[Any]] = {}
    for column in columns:
        if column.role == "key" and column.field is None:
            data[column.name] = list(range(key_start + 1, key_start + n + 1))
        elif column.role == "watermark":
            assert mark is not None
            data[column.name] = mark.astype("datetime64[us]").astype(object).tolist()
        else:
            assert column.field is not None
            data[column.name] = _field_values(
                source, license_type, column.field, text, dates, numbers, style, file_output
            )
    return Rendered(
        columns=columns,
        data=data,
        defects=defects,
        id_variants=variants,
        persons=list(records.persons.values()),
    )


def _field_values(
    source: Source,
    license_type: LicenseType,
    name: str,
    text: dict[str, Objects],
    dates: dict[str, Dates],
    numbers: dict[str, npt.NDArray[Any]],
    style: I64,
    file_output: bool,
) -> list[Any]:
    if name in dates:
        values: list[Any] = format_dates(source, dates[name], style).tolist()
        return values
    if name in numbers:
        return _numbers(license_type, name, numbers[name], file_output)
    return _codes(source, name, text[name].tolist())


def _numbers(
    license_type: LicenseType, name: str, values: npt.NDArray[Any], file_output: bool
) -> list[Any]:
    if license_type.field(name).type == "decimal" and file_output:
        return [f"{v:.2f}" for v in values.tolist()]
    return list(values.tolist())


def _codes(source: Source, name: str, values: list[Any]) -> list[Any]:
    codes = source.mapping[name].codes
    if not codes:
        return values
    back = {catalog: own for own, catalog in codes.items()}
    if len(back) != len(codes):
        raise ValueError(f"{source.name}.{name}: two department codes map to one catalog code")
    return [None if v is None else back[v] for v in values]


def department_values(
    source: Source, license_type: LicenseType, name: str, values: npt.NDArray[Any], style: I64
) -> list[Any]:
    """New values of one field (catalog terms) in the department's form, for a SQL update.

    ``style`` is the date format per row (see :func:`date_styles`): one per row for all its dates.
    """
    spec = license_type.field(name)
    if spec.type == "date":
        formatted: list[Any] = format_dates(source, values.astype("datetime64[D]"), style).tolist()
        return formatted
    if spec.type in ("integer", "decimal"):
        return _numbers(license_type, name, values, file_output=False)
    return _codes(source, name, values.astype(object).tolist())
