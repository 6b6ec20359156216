"""Generate the department systems the shipped catalog's sources read, and change them later.

:func:`generate` builds one population and writes every source: SQL tables (SQLite files under the
output folder unless ``sql_urls`` names another database) and CSV drop files in each source's
declared encoding, with a known share of dirty rows, then ``manifest.json``. :func:`mutate` updates
and adds rows in the SQL sources with newer watermarks, for incremental runs.

Everything is drawn from numpy generators seeded by ``(seed, purpose)``, so the same arguments give
the same rows and byte-identical files, and one source's rows do not depend on which other
sources are generated.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import logging
import math
import zlib
from collections import Counter
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from catalog_schemas.catalog import Catalog, shipped_catalog
from catalog_schemas.model import FileConnector, LicenseType, Source, SqlConnector
from sample_systems import export
from sample_systems.defect import QUARANTINED_KINDS
from sample_systems.manifest import (
    DemoCompany,
    DemoHolders,
    DemoPerson,
    DirtyRow,
    Manifest,
    Mutation,
    SourceManifest,
)
from sample_systems.population import Companies, People, make_companies, make_people
from sample_systems.record import BUILDERS, UPDATERS, Context, Records
from sample_systems.region import region_table
from sample_systems.table import Rendered, date_styles, department_values, render, sql_table

logger = logging.getLogger(__name__)

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

# Used when no clock is given, so that a seed alone fixes the output.
DEFAULT_NOW: Final = dt.datetime(2026, 1, 1, 9, 0, 0)
CHINA_STANDARD_TIME: Final = dt.timezone(dt.timedelta(hours=8), "CST")
DEMO_PEOPLE: Final = 3
# People who hold every kind of personal license, so also both service items' materials.
_PERSONAL_TYPES: Final = (
    "degree_certificate",
    "social_insurance_certificate",
    "marriage_certificate",
    "real_estate_title",
)


def _rng(seed: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(purpose.encode())])


def _local(now: dt.datetime | None) -> dt.datetime:
    """The department clock: naive China Standard Time, whole seconds (DATETIME(0) columns)."""
    if now is None:
        return DEFAULT_NOW
    if now.tzinfo is not None:
        now = now.astimezone(CHINA_STANDARD_TIME).replace(tzinfo=None)
    return now.replace(microsecond=0)


def row_count(license_type: str, *, people: int, companies: int) -> int:
    """How many rows the source of ``license_type`` gets for a population of this size."""
    sizes = {
        "marriage_certificate": people // 4,
        "degree_certificate": people // 2,
        "social_insurance_certificate": round(0.6 * people),
        "real_estate_title": people // 2,
        "business_license": companies,
    }
    if license_type not in sizes:
        raise ValueError(f"no sample generator for license type {license_type!r}")
    return sizes[license_type]


def _selected(catalog: Catalog, sources: Collection[str] | None) -> list[Source]:
    names = sorted(catalog.sources) if sources is None else sorted(set(sources))
    unknown = [n for n in names if n not in catalog.sources]
    if unknown:
        raise ValueError(f"unknown sources {unknown}; the catalog has {sorted(catalog.sources)}")
    chosen = [catalog.source(n) for n in names]
    for source in chosen:
        if source.license_type not in BUILDERS:
            raise ValueError(
                f"{source.name}: no sample generator for license type {source.license_type!r}"
            )
    return chosen


def _sql_url(out_dir: Path, connection: str, sql_urls: Mapping[str, str] | None) -> tuple[str, str]:
    """The database URL and how the manifest names it (masked URL, or the file name)."""
    if sql_urls and connection in sql_urls:
        url = sql_urls[connection]
        return url, sa.make_url(url).render_as_string(hide_password=True)
    path = (out_dir / f"{connection}.db").resolve()
    return f"sqlite:///{path}", f"{connection}.db"


def _check_urls(catalog: Catalog, sql_urls: Mapping[str, str] | None) -> None:
    if not sql_urls:
        return
    known = {
        s.connector.connection
        for s in catalog.sources.values()
        if isinstance(s.connector, SqlConnector)
    }
    unknown = sorted(set(sql_urls) - known)
    if unknown:
        raise ValueError(
            f"sql_urls names unknown SQL connections {unknown}; known: {sorted(known)}"
        )


def _demo_holders(
    rng: np.random.Generator, people: People, companies: Companies, now: dt.datetime
) -> tuple[I64, int]:
    """A few people old enough for every license type, and one company."""
    year = people.birth_year
    eligible = np.flatnonzero((year >= 1965) & (year <= now.year - 31))
    if eligible.size < DEMO_PEOPLE:
        raise ValueError("the population is too small to pick demo holders: raise `people`")
    chosen = np.sort(rng.choice(eligible, DEMO_PEOPLE, replace=False))
    return chosen, int(rng.integers(0, len(companies)))


def _protected(records: Records, demo_people: I64, demo_company: int | None) -> Bools:
    mask = np.zeros(records.n, dtype=bool)
    for index in records.persons.values():
        mask |= np.isin(index, demo_people)
    if demo_company is not None:
        mask |= records.companies == demo_company
    return mask


def _row_refs(source: Source, rendered: Rendered, file_name: str | None) -> list[str]:
    if file_name is None:
        return [f"pk={key}" for key in rendered.keys(source)]
    # Line 1 is the header, so row i (0-based) is on line i + 2.
    return [f"{file_name}:{row + 2}" for row in range(rendered.n)]


def _source_manifest(
    source: Source,
    rendered: Rendered,
    *,
    location: str,
    file_name: str | None,
) -> SourceManifest:
    refs = _row_refs(source, rendered, file_name)
    dirty = [
        DirtyRow(
            row_ref=refs[d.row], kind=d.kind, field=d.field, quarantined=d.kind in QUARANTINED_KINDS
        )
        for d in rendered.defects
    ]
    quarantined = [d.row_ref for d in dirty if d.quarantined]
    connector = source.connector
    watermark = None
    if isinstance(connector, SqlConnector) and rendered.n:
        watermark = max(rendered.data[connector.watermark]).isoformat()
    return SourceManifest(
        name=source.name,
        license_type=source.license_type,
        connector=connector.kind,
        connection=connector.connection,
        location=location,
        table=connector.table if isinstance(connector, SqlConnector) else None,
        files=[file_name] if file_name else [],
        rows=rendered.n,
        expected_loaded=rendered.n - len(quarantined),
        expected_quarantined=len(quarantined),
        dirty=dict(sorted(Counter(d.kind for d in dirty).items())),
        quarantined=quarantined,
        dirty_rows=dirty,
        max_watermark=watermark,
    )


def _write(
    source: Source,
    license_type: LicenseType,
    rendered: Rendered,
    *,
    out_dir: Path,
    sql_urls: Mapping[str, str] | None,
    now: dt.datetime,
) -> SourceManifest:
    connector = source.connector
    if isinstance(connector, SqlConnector):
        url, location = _sql_url(out_dir, connector.connection, sql_urls)
        engine = sa.create_engine(url)
        try:
            export.write_table(engine, sql_table(source, license_type, sa.MetaData()), rendered)
        finally:
            engine.dispose()
        return _source_manifest(source, rendered, location=location, file_name=None)
    assert isinstance(connector, FileConnector)
    if connector.format != "csv":
        raise ValueError(
            f"{source.name}: only csv drop files are generated, not {connector.format}"
        )
    folder = out_dir / connector.connection
    folder.mkdir(parents=True, exist_ok=True)
    for old in sorted(folder.glob(f"{source.name}_*.csv")):
        old.unlink()  # our own earlier output: one run, one set of files
    name = f"{source.name}_{now:%Y%m%d}.csv"
    export.write_csv(folder / name, rendered, encoding=connector.encoding)
    return _source_manifest(source, rendered, location=f"{connector.connection}/", file_name=name)


def generate(
    *,
    out_dir: Path,
    seed: int = 2016,
    people: int = 1000,
    companies: int = 200,
    dirty_rate: float = 0.03,
    sql_urls: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
    sources: Collection[str] | None = None,
    catalog: Catalog | None = None,
) -> Manifest:
    """Write every (or the named) source's department system under ``out_dir``; see the module doc.

    ``sql_urls`` maps a connection id to a database URL (default ``sqlite:///<out_dir>/<id>.db``);
    ``now`` is the department clock (naive = China Standard Time; default a fixed 2026-01-01 09:00
    so that output depends on the arguments only).
    """
    catalog = catalog or shipped_catalog()
    if people < 40 or companies < 1:
        raise ValueError("need at least 40 people and 1 company")
    if not 0 <= dirty_rate <= 0.5:
        raise ValueError("dirty_rate must be between 0 and 0.5")
    if seed < 0:
        raise ValueError("seed must be non-negative")
    _check_urls(catalog, sql_urls)
    chosen = _selected(catalog, sources)
    clock = _local(now)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    regions = region_table()
    population = make_people(_rng(seed, "people"), people, regions=regions, now=clock)
    firms = make_companies(
        _rng(seed, "companies"), companies, people=population, regions=regions, now=clock
    )
    demo_people, demo_company = _demo_holders(_rng(seed, "demo"), population, firms, clock)

    used = np.zeros(len(population), dtype=bool)
    variants: list[str] = []
    manifests: dict[str, SourceManifest] = {}
    for source in chosen:
        license_type = catalog.license_type(source.license_type)
        n = row_count(license_type.code, people=people, companies=companies)
        rng = _rng(seed, source.name)
        ctx = Context(
            rng=rng,
            people=population,
            companies=firms,
            regions=regions,
            now=clock,
            forced_people=demo_people,
            forced_company=demo_company,
        )
        records = BUILDERS[license_type.code](ctx, n)
        rendered = render(
            source,
            license_type,
            records,
            rng=rng,
            people=population,
            dirty_rate=dirty_rate,
            now=clock,
            key_start=0,
            protected=_protected(records, demo_people, demo_company),
            file_output=isinstance(source.connector, FileConnector),
        )
        for index in rendered.persons:
            used[index[index >= 0]] = True
        variants += rendered.id_variants
        manifests[source.name] = _write(
            source, license_type, rendered, out_dir=out_dir, sql_urls=sql_urls, now=clock
        )
        entry = manifests[source.name]
        logger.info(
            "generated %s: %d rows, %d to quarantine",
            source.name,
            entry.rows,
            entry.expected_quarantined,
        )
        if entry.rows and entry.expected_quarantined / entry.rows > source.quarantine_threshold:
            # Small samples still get one row of each defect; the hub then refuses the batch.
            logger.warning(
                "%s: %d of %d rows are to be quarantined, above its threshold %.0f%%; "
                "raise the sizes or lower dirty_rate",
                source.name,
                entry.expected_quarantined,
                entry.rows,
                100 * source.quarantine_threshold,
            )

    held = {s.license_type for s in chosen}
    manifest = Manifest(
        seed=seed,
        people=people,
        companies=companies,
        dirty_rate=dirty_rate,
        now=clock.isoformat(),
        sources=manifests,
        resident_ids=sorted(population.resident_id[used].tolist()),
        id_variants=sorted(variants),
        demo_holders=DemoHolders(
            people=[
                DemoPerson(
                    resident_id=str(population.resident_id[i]),
                    name=str(population.name[i]),
                    license_types=[t for t in _PERSONAL_TYPES if t in held],
                )
                for i in demo_people.tolist()
            ],
            company=DemoCompany(
                credit_code=str(firms.credit_code[demo_company]),
                name=str(firms.name[demo_company]),
                license_types=[t for t in ("business_license", "real_estate_title") if t in held],
            ),
        ),
    )
    manifest.save(out_dir)
    return manifest


def mutate(
    *,
    out_dir: Path,
    manifest: Manifest,
    seed: int,
    updates: int,
    inserts: int,
    now: dt.datetime,
    sql_urls: Mapping[str, str] | None = None,
    sources: Collection[str] | None = None,
    catalog: Catalog | None = None,
) -> Manifest:
    """Edit ``updates`` clean rows and add ``inserts`` clean rows in each SQL source.

    Every changed or new row gets a watermark after the table's newest and not after ``now``; dirty
    rows are left alone, so the manifest's expectations stay true. Returns the updated manifest
    (also saved); the run's row refs are in its last ``mutations`` entry.
    """
    catalog = catalog or shipped_catalog()
    if updates < 0 or inserts < 0:
        raise ValueError("updates and inserts must be non-negative")
    _check_urls(catalog, sql_urls)
    clock = _local(now)
    out_dir = Path(out_dir)
    names = [n for n, s in sorted(manifest.sources.items()) if s.connector == "sql"]
    if sources is not None:
        names = [n for n in names if n in set(sources)]
    result = copy.deepcopy(manifest)
    regions = region_table()
    # New people and companies for the new rows (marriages need two people a row).
    new_people = make_people(
        _rng(seed, "mutate-people"),
        max(40, 3 * inserts),
        regions=regions,
        now=clock,
        exclude=np.array(manifest.resident_ids, dtype="U18"),
    )
    new_firms = make_companies(
        _rng(seed, "mutate-companies"),
        max(1, inserts // 4),
        people=new_people,
        regions=regions,
        now=clock,
    )
    record = Mutation(seed=seed, now=clock.isoformat(), updated={}, inserted={})
    used = np.zeros(len(new_people), dtype=bool)
    for name in names:
        source = catalog.source(name)
        license_type = catalog.license_type(source.license_type)
        rng = _rng(seed, f"mutate:{name}")
        ctx = Context(
            rng=rng,
            people=new_people,
            companies=new_firms,
            regions=regions,
            now=clock,
            since=(clock - dt.timedelta(days=30)).date(),
        )
        updated, inserted, persons = _mutate_source(
            source,
            license_type,
            result.sources[name],
            ctx,
            out_dir=out_dir,
            sql_urls=sql_urls,
            updates=updates,
            inserts=inserts,
        )
        for index in persons:
            used[index[index >= 0]] = True
        entry = result.sources[name]
        entry.rows += len(inserted)
        entry.expected_loaded += len(inserted)
        entry.max_watermark = clock.isoformat() if updated or inserted else entry.max_watermark
        record.updated[name] = updated
        record.inserted[name] = inserted
    result.resident_ids = sorted(
        set(result.resident_ids) | set(new_people.resident_id[used].tolist())
    )
    result.mutations.append(record)
    result.save(out_dir)
    return result


def _mutate_source(
    source: Source,
    license_type: LicenseType,
    entry: SourceManifest,
    ctx: Context,
    *,
    out_dir: Path,
    sql_urls: Mapping[str, str] | None,
    updates: int,
    inserts: int,
) -> tuple[list[str], list[str], list[I64]]:
    connector = source.connector
    assert isinstance(connector, SqlConnector)
    if updates and license_type.code not in UPDATERS:
        raise ValueError(f"{source.name}: no sample update for license type {license_type.code!r}")
    url, _ = _sql_url(out_dir, connector.connection, sql_urls)
    table = sql_table(source, license_type, sa.MetaData())
    key, mark = table.c[connector.primary_key], table.c[connector.watermark]
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            newest = conn.execute(sa.select(sa.func.max(mark))).scalar_one()
            if newest is not None and ctx.now <= newest:
                raise ValueError(f"{source.name}: now must be after the newest watermark {newest}")
            count = int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
            dirty = {d.row_ref for d in entry.dirty_rows}
            keys = [
                k
                for k in conn.execute(sa.select(key).order_by(key)).scalars()
                if f"pk={k}" not in dirty
            ]
            if updates > len(keys):
                raise ValueError(f"{source.name}: only {len(keys)} clean rows to update")
            stamps = _stamps(newest, ctx.now, updates + inserts)
            chosen = [
                keys[i] for i in np.sort(ctx.rng.choice(len(keys), updates, replace=False)).tolist()
            ]
            _update(conn, source, license_type, table, ctx, chosen, stamps[:updates])

            records = BUILDERS[license_type.code](dataclasses.replace(ctx, start=count), inserts)
            rendered = render(
                source,
                license_type,
                records,
                rng=ctx.rng,
                people=ctx.people,
                dirty_rate=0.0,
                now=ctx.now,
                key_start=_max_int_key(conn, key),
                protected=np.zeros(inserts, dtype=bool),
                file_output=False,
            )
            rendered.data[connector.watermark] = stamps[updates:]
            export.insert_rows(conn, table, rendered.data)
    finally:
        engine.dispose()
    logger.info("mutated %s: %d updated, %d inserted", source.name, len(chosen), inserts)
    return [f"pk={k}" for k in chosen], [f"pk={k}" for k in rendered.keys(source)], rendered.persons


def _stamps(newest: dt.datetime | None, now: dt.datetime, count: int) -> list[dt.datetime]:
    """``count`` whole-second timestamps spread over (newest, now]."""
    if count == 0:
        return []
    start = newest or now - dt.timedelta(days=1)
    seconds = int((now - start).total_seconds())
    return [
        start + dt.timedelta(seconds=math.ceil((i + 1) * seconds / count)) for i in range(count)
    ]


def _max_int_key(conn: sa.Connection, key: sa.Column[Any]) -> int:
    if not isinstance(key.type, sa.BigInteger | sa.Integer):
        return 0  # the key is a mapped field (a license number); render does not number it
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(key), 0))).scalar_one())


def _update(
    conn: sa.Connection,
    source: Source,
    license_type: LicenseType,
    table: sa.Table,
    ctx: Context,
    keys: list[Any],
    stamps: list[dt.datetime],
) -> None:
    if not keys:
        return
    connector = source.connector
    assert isinstance(connector, SqlConnector)
    reads, updater = UPDATERS[license_type.code]
    key = table.c[connector.primary_key]
    column_of = {f: c.column for f, c in source.mapping.items() if c.column is not None}
    current: dict[str, list[object]] = {f: [] for f in reads}
    if reads:
        found: dict[Any, Any] = {}
        for start in range(0, len(keys), 1000):
            part = keys[start : start + 1000]
            query = sa.select(key, *(table.c[column_of[f]] for f in reads)).where(key.in_(part))
            found.update({row[0]: row[1:] for row in conn.execute(query)})
        for position, name in enumerate(reads):
            current[name] = [found[k][position] for k in keys]
    when = np.array([stamp.date().isoformat() for stamp in stamps], dtype="datetime64[D]")
    changes = updater(ctx.rng, current, when, ctx)
    style = date_styles(ctx.rng, source, len(keys))
    params: list[dict[str, Any]] = [
        {"_key": k, connector.watermark: stamp} for k, stamp in zip(keys, stamps, strict=True)
    ]
    for name, values in changes.items():
        for row, value in zip(
            params, department_values(source, license_type, name, values, style), strict=True
        ):
            row[column_of[name]] = value
    statement = table.update().where(key == sa.bindparam("_key"))
    conn.execute(statement, params)
