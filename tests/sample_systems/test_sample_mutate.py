"""mutate(): edited and new rows carry newer watermarks, stay clean, and the manifest follows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from catalog_schemas.catalog import shipped_catalog
from catalog_schemas.holder import validate_credit_code, validate_resident_id
from catalog_schemas.model import SqlConnector
from sample_systems import Manifest, generate, mutate

CATALOG = shipped_catalog()
SQL_SOURCES = sorted(n for n, s in CATALOG.sources.items() if isinstance(s.connector, SqlConnector))
LATER = dt.datetime(2026, 1, 2, 18, 0, 0)


def _by_ref(out_dir: Path, manifest: Manifest, name: str, reader: Any) -> dict[str, dict[str, Any]]:
    return {row.ref: row.values for row in reader.read_rows(out_dir, manifest, name)}


def _assert_clean(name: str, values: dict[str, Any], reader: Any, today: dt.date) -> None:
    source = CATALOG.source(name)
    license_type = CATALOG.license_type(source.license_type)
    for id_column, kind_column, person_code in reader.person_id_columns(source):
        if kind_column is not None and values[kind_column] != person_code:
            assert validate_credit_code(values[id_column]) == values[id_column]
        else:
            assert validate_resident_id(values[id_column], today=today) == values[id_column]
    for spec in license_type.fields:
        if spec.required and spec.name in source.mapping:
            assert values[reader.column(source, spec.name)] not in (None, "")
    for earlier, later in license_type.date_order:
        a = reader.parse_date(values[reader.column(source, earlier)])
        assert a <= reader.parse_date(values[reader.column(source, later)])


def test_mutate_updates_and_inserts(tmp_path: Path, reader: Any) -> None:
    before = generate(out_dir=tmp_path, people=400, companies=40)
    old = {name: _by_ref(tmp_path, before, name, reader) for name in SQL_SOURCES}
    after = mutate(out_dir=tmp_path, manifest=before, seed=5, updates=6, inserts=9, now=LATER)
    run = after.mutations[-1]

    assert Manifest.load(tmp_path) == after
    assert before.mutations == []  # the manifest passed in is not changed
    assert sorted(run.updated) == sorted(run.inserted) == SQL_SOURCES
    for name in SQL_SOURCES:
        connector = CATALOG.source(name).connector
        assert isinstance(connector, SqlConnector)
        entry, previous = after.sources[name], before.sources[name]
        rows = _by_ref(tmp_path, after, name, reader)
        newest = dt.datetime.fromisoformat(previous.max_watermark or "")
        changed = {ref for ref, v in rows.items() if v[connector.watermark] > newest}
        assert changed == set(run.updated[name]) | set(run.inserted[name])
        assert len(run.updated[name]) == 6 and len(run.inserted[name]) == 9
        assert all(v[connector.watermark] <= LATER for v in rows.values())

        assert len(rows) == entry.rows == previous.rows + 9
        assert entry.expected_loaded == previous.expected_loaded + 9
        assert entry.quarantined == previous.quarantined
        assert set(run.inserted[name]).isdisjoint(old[name])
        assert set(run.updated[name]) <= set(old[name])
        assert set(run.updated[name]).isdisjoint(d.row_ref for d in previous.dirty_rows)
        for ref in run.updated[name]:
            differs = {c for c in rows[ref] if rows[ref][c] != old[name][ref][c]}
            assert connector.watermark in differs and len(differs) >= 2
            _assert_clean(name, rows[ref], reader, LATER.date())
        for ref in run.inserted[name]:
            _assert_clean(name, rows[ref], reader, LATER.date())
        # Rows nobody touched are as they were.
        untouched = set(old[name]) - set(run.updated[name])
        assert all(rows[ref] == old[name][ref] for ref in untouched)
        assert entry.max_watermark == LATER.isoformat()

    listed = set(after.resident_ids)
    assert set(before.resident_ids) <= listed and len(listed) > len(before.resident_ids)
    for name in SQL_SOURCES:
        source = CATALOG.source(name)
        rows = _by_ref(tmp_path, after, name, reader)
        for ref in run.inserted[name]:
            for id_column, kind_column, person_code in reader.person_id_columns(source):
                if kind_column is None or rows[ref][kind_column] == person_code:
                    assert rows[ref][id_column] in listed
    # The files are not touched.
    for name in set(before.sources) - set(SQL_SOURCES):
        assert after.sources[name] == before.sources[name]


def test_mutate_again_continues(tmp_path: Path, reader: Any) -> None:
    manifest = generate(out_dir=tmp_path, people=200, companies=20, sources={"dca_marriage"})
    first = mutate(out_dir=tmp_path, manifest=manifest, seed=1, updates=3, inserts=4, now=LATER)
    second = mutate(
        out_dir=tmp_path,
        manifest=first,
        seed=2,
        updates=3,
        inserts=4,
        now=LATER + dt.timedelta(hours=1),
    )
    assert len(second.mutations) == 2
    assert set(second.mutations[0].inserted["dca_marriage"]).isdisjoint(
        second.mutations[1].inserted["dca_marriage"]
    )
    rows = reader.read_rows(tmp_path, second, "dca_marriage")
    assert len(rows) == manifest.sources["dca_marriage"].rows + 8
    numbers = [row.values["cert_no"] for row in rows]
    duplicated = len(second.sources["dca_marriage"].refs("duplicate_license_no")) // 2
    assert len(set(numbers)) == len(numbers) - duplicated


def test_mutate_needs_a_later_clock(tmp_path: Path) -> None:
    manifest = generate(out_dir=tmp_path, people=100, companies=10, sources={"hrss_insurance"})
    newest = dt.datetime.fromisoformat(manifest.sources["hrss_insurance"].max_watermark or "")
    with pytest.raises(ValueError, match="newest watermark"):
        mutate(out_dir=tmp_path, manifest=manifest, seed=1, updates=1, inserts=1, now=newest)


def test_mutate_is_deterministic(tmp_path: Path, reader: Any) -> None:
    results = []
    for folder in ("a", "b"):
        out_dir = tmp_path / folder
        manifest = generate(out_dir=out_dir, people=100, companies=10, sources={"dlr_title"})
        mutated = mutate(
            out_dir=out_dir, manifest=manifest, seed=3, updates=2, inserts=3, now=LATER
        )
        results.append(
            (mutated, [r.values for r in reader.read_rows(out_dir, mutated, "dlr_title")])
        )
    assert results[0] == results[1]
