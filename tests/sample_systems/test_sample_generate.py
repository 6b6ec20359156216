"""generate(): data follows the catalog, the manifest matches the data, IDs are what they claim."""

from __future__ import annotations

import datetime as dt
import filecmp
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from stdnum.cn import ric

from catalog_schemas.catalog import shipped_catalog
from catalog_schemas.division import load_division_table
from catalog_schemas.errors import InvalidIdentifierError
from catalog_schemas.holder import check_resident_ids, validate_credit_code, validate_resident_id
from catalog_schemas.model import SqlConnector
from sample_systems import Manifest, generate, row_count
from sample_systems.region import REGIONS

CATALOG = shipped_catalog()
SQL_SOURCES = sorted(n for n, s in CATALOG.sources.items() if isinstance(s.connector, SqlConnector))
ALL_SOURCES = sorted(CATALOG.sources)
CJK_NAME = re.compile(r"^[\u4e00-\u9fff]{2,4}$")


def test_every_catalog_source_is_generated(sample: tuple[Path, Manifest]) -> None:
    _, manifest = sample
    assert sorted(manifest.sources) == ALL_SOURCES


def test_manifest_file_round_trips(sample: tuple[Path, Manifest]) -> None:
    out_dir, manifest = sample
    assert Manifest.load(out_dir) == manifest


@pytest.mark.parametrize("name", ALL_SOURCES)
def test_columns_are_the_catalog_mapping(
    sample: tuple[Path, Manifest], reader: Any, name: str
) -> None:
    out_dir, manifest = sample
    source = CATALOG.source(name)
    expected = {c.column for c in source.mapping.values()} | {source.connector.primary_key}
    if isinstance(source.connector, SqlConnector):
        expected.add(source.connector.watermark)
    rows = reader.read_rows(out_dir, manifest, name)
    assert rows
    assert set(rows[0].values) == expected


@pytest.mark.parametrize("name", ALL_SOURCES)
def test_manifest_counts_match_the_data(
    sample: tuple[Path, Manifest], reader: Any, name: str
) -> None:
    out_dir, manifest = sample
    entry = manifest.sources[name]
    rows = reader.read_rows(out_dir, manifest, name)
    observed = reader.observe(name, rows)

    assert entry.rows == len(rows)
    # Each dirty row shows exactly the one defect the manifest names, and no other row shows any.
    assert all(len(kinds) == 1 for kinds in observed.values()), observed
    assert {ref: kinds[0] for ref, kinds in observed.items()} == {
        d.row_ref: d.kind for d in entry.dirty_rows
    }
    assert entry.dirty == dict(Counter(kinds[0] for kinds in observed.values()))
    quarantine = {"wrong_check_char", "missing_required", "date_order", "duplicate_license_no"}
    assert sorted(entry.quarantined) == sorted(r for r, k in observed.items() if k[0] in quarantine)
    assert entry.expected_quarantined == len(entry.quarantined)
    assert entry.expected_loaded + entry.expected_quarantined == entry.rows
    assert {d.quarantined for d in entry.dirty_rows if d.kind in quarantine} == {True}


@pytest.mark.parametrize("name", ALL_SOURCES)
def test_each_applicable_kind_occurs_at_about_the_rate(
    sample: tuple[Path, Manifest], name: str
) -> None:
    _, manifest = sample
    entry = manifest.sources[name]
    source = CATALOG.source(name)
    license_type = CATALOG.license_type(source.license_type)
    kinds = {"wrong_check_char", "legacy_15_digit", "fullwidth_digits", "missing_required"}
    if license_type.date_order:
        kinds.add("date_order")
    if source.mapping[license_type.license_no_field].column != source.connector.primary_key:
        kinds.add("duplicate_license_no")
    assert set(entry.dirty) == kinds
    share = sum(entry.dirty.values()) / entry.rows
    assert 0.02 <= share <= 0.04, share  # dirty_rate 0.03, rounded per kind


def test_region_codes_are_current_divisions() -> None:
    table = load_division_table()
    for code, _, _, first_year in REGIONS:
        assert table.is_current(code), code
        # The first year embedded is the dated table's, so a birth year from it on is accepted
        # even by a checker that applies first years.
        assert table.valid_in(code, max(first_year, 1950)), code


def test_listed_ids_pass_every_checker(sample: tuple[Path, Manifest]) -> None:
    _, manifest = sample
    checked = check_resident_ids(manifest.resident_ids, today=dt.date(2026, 1, 1))
    assert checked.reason.null_count == len(manifest.resident_ids)
    assert checked.canonical.to_pylist() == manifest.resident_ids
    # Raw python-stdnum applies the dated table by birth year; the codes are chosen so it agrees.
    assert all(ric.is_valid(value) for value in manifest.resident_ids)
    assert len(set(manifest.resident_ids)) == len(manifest.resident_ids)


@pytest.mark.parametrize("name", ALL_SOURCES)
def test_ids_in_rows(sample: tuple[Path, Manifest], reader: Any, name: str) -> None:
    out_dir, manifest = sample
    source = CATALOG.source(name)
    kinds = {d.row_ref: d.kind for d in manifest.sources[name].dirty_rows}
    listed = set(manifest.resident_ids)
    wrong = 0
    for row in reader.read_rows(out_dir, manifest, name):
        for id_column, kind_column, person_code in reader.person_id_columns(source):
            if kind_column is not None and row.values[kind_column] != person_code:
                validate_credit_code(row.values[id_column])
                continue
            value = row.values[id_column]
            if kinds.get(row.ref) == "wrong_check_char" and len(value) == 18 and value.isascii():
                try:
                    validate_resident_id(value, today=dt.date(2026, 1, 1))
                except InvalidIdentifierError as exc:
                    assert exc.reason == "id_check_char"
                    wrong += 1
                    continue
            canonical = validate_resident_id(value, today=dt.date(2026, 1, 1))
            assert canonical in listed
            if kinds.get(row.ref) not in ("legacy_15_digit", "fullwidth_digits"):
                assert value == canonical
    assert wrong == manifest.sources[name].dirty.get("wrong_check_char", 0)
    if name == "aic_business":
        for row in reader.read_rows(out_dir, manifest, name):
            assert validate_credit_code(row.values["tyshxydm"]) == row.values["tyshxydm"]


def test_id_variants_are_what_the_rows_hold(sample: tuple[Path, Manifest], reader: Any) -> None:
    out_dir, manifest = sample
    written: list[str] = []
    for name, entry in manifest.sources.items():
        source = CATALOG.source(name)
        id_kinds = {"wrong_check_char", "legacy_15_digit", "fullwidth_digits"}
        refs = {d.row_ref: d.field for d in entry.dirty_rows if d.kind in id_kinds}
        for row in reader.read_rows(out_dir, manifest, name):
            if row.ref in refs:
                written.append(row.values[reader.column(source, refs[row.ref])])
    assert sorted(written) == manifest.id_variants


@pytest.mark.parametrize("name", [n for n in SQL_SOURCES if n != "hrss_insurance"])
def test_duplicate_pairs_share_a_batch(
    sample: tuple[Path, Manifest], reader: Any, name: str
) -> None:
    out_dir, manifest = sample
    source = CATALOG.source(name)
    connector = source.connector
    assert isinstance(connector, SqlConnector)
    rows = reader.read_rows(out_dir, manifest, name)
    position = {row.ref: i for i, row in enumerate(rows)}
    refs = manifest.sources[name].refs("duplicate_license_no")
    assert refs and len(refs) % 2 == 0
    number = reader.column(source, CATALOG.license_type(source.license_type).license_no_field)
    by_number: dict[Any, list[int]] = defaultdict(list)
    for ref in refs:
        by_number[rows[position[ref]].values[number]].append(position[ref])
    for places in by_number.values():
        first, second = sorted(places)
        assert second == first + 1  # neighbours in keyset order
        assert first // connector.batch_size == second // connector.batch_size
        a, b = rows[first].values, rows[second].values
        assert a[connector.watermark] == b[connector.watermark]
        assert a[connector.primary_key] != b[connector.primary_key]


@pytest.mark.parametrize("name", SQL_SOURCES)
def test_watermarks_follow_keys(sample: tuple[Path, Manifest], reader: Any, name: str) -> None:
    out_dir, manifest = sample
    connector = CATALOG.source(name).connector
    assert isinstance(connector, SqlConnector)
    rows = reader.read_rows(out_dir, manifest, name)
    keys = [row.values[connector.primary_key] for row in rows]
    assert keys == sorted(keys)  # keyset order is key order: a stable, monotone registry
    marks = [row.values[connector.watermark] for row in rows]
    assert max(marks) <= dt.datetime.fromisoformat(manifest.now)
    assert max(marks).isoformat() == manifest.sources[name].max_watermark


@pytest.mark.parametrize("name", ALL_SOURCES)
def test_dates_and_codes_are_the_departments(
    sample: tuple[Path, Manifest], reader: Any, name: str
) -> None:
    out_dir, manifest = sample
    source = CATALOG.source(name)
    license_type = CATALOG.license_type(source.license_type)
    rows = reader.read_rows(out_dir, manifest, name)
    formats: set[int] = set()
    for spec in license_type.fields:
        if spec.name not in source.mapping:
            continue
        col = reader.column(source, spec.name)
        values = [row.values[col] for row in rows if row.values[col] is not None]
        if spec.type == "date":
            formats |= {reader.date_format(v) for v in values}
            assert all(
                dt.date(1950, 1, 1) < reader.parse_date(v) < dt.date(2100, 1, 1) for v in values
            )
        codes = source.mapping[spec.name].codes
        if codes:
            assert set(values) <= set(codes), col
        if spec.pattern:
            assert all(re.match(spec.pattern, str(v)) for v in values), col
        if spec.max_length:
            assert all(len(str(v)) <= spec.max_length for v in values), col
    assert len(formats) > 1  # formats are mixed, as real exports are


def test_one_population_across_sources(sample: tuple[Path, Manifest], reader: Any) -> None:
    out_dir, manifest = sample
    names: dict[str, set[str]] = defaultdict(set)
    holds: dict[str, set[str]] = defaultdict(set)
    for name in ALL_SOURCES:
        source = CATALOG.source(name)
        license_type = CATALOG.license_type(source.license_type)
        name_of = {h.id_field: h.name_field for h in license_type.holders}
        for row in reader.read_rows(out_dir, manifest, name):
            for id_column, kind_column, person_code in reader.person_id_columns(source):
                if kind_column is not None and row.values[kind_column] != person_code:
                    continue
                try:
                    canonical = validate_resident_id(
                        row.values[id_column], today=dt.date(2026, 1, 1)
                    )
                except InvalidIdentifierError:
                    continue
                holds[canonical].add(license_type.code)
                id_field = next(f for f, c in source.mapping.items() if c.column == id_column)
                person_name = row.values[reader.column(source, name_of[id_field])]
                if person_name is not None:
                    names[canonical].add(person_name)
    assert all(len(n) == 1 for n in names.values())  # one person, one name, in every department
    assert all(CJK_NAME.match(next(iter(n))) for n in names.values())
    several = sum(1 for types in holds.values() if len(types) >= 2)
    assert several / len(holds) > 0.5


def test_demo_holders_are_clean(sample: tuple[Path, Manifest], reader: Any) -> None:
    out_dir, manifest = sample
    demo = manifest.demo_holders
    assert len(demo.people) >= 2 and demo.company is not None
    found: dict[str, set[str]] = defaultdict(set)
    for name in ALL_SOURCES:
        source = CATALOG.source(name)
        license_type = CATALOG.license_type(source.license_type).code
        dirty = {d.row_ref for d in manifest.sources[name].dirty_rows}
        for row in reader.read_rows(out_dir, manifest, name):
            for holder in [p.resident_id for p in demo.people] + [demo.company.credit_code]:
                if holder in row.values.values():
                    assert row.ref not in dirty
                    found[holder].add(license_type)
    for person in demo.people:
        assert {
            "degree_certificate",
            "social_insurance_certificate",
            "marriage_certificate",
        } <= found[person.resident_id]
        assert set(person.license_types) == found[person.resident_id]
    assert found[demo.company.credit_code] == {"business_license", "real_estate_title"}
    assert validate_credit_code(demo.company.credit_code) == demo.company.credit_code


def test_gbk_and_bom_files_keep_chinese_text(sample: tuple[Path, Manifest], reader: Any) -> None:
    out_dir, manifest = sample
    aic = out_dir / "aic_drop" / manifest.sources["aic_business"].files[0]
    raw = aic.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # really GBK, not UTF-8 by accident
    text = raw.decode("gbk")
    assert text.splitlines()[0] == "tyshxydm,qymc,qylx,fddbrzjhm,fddbr,zczb,zs,clrq,yyqxz"
    assert "\r\n" in text
    rows = reader.read_rows(out_dir, manifest, "aic_business")
    reps = [r.values["fddbr"] for r in rows if r.values["fddbr"] is not None]
    assert reps and all(CJK_NAME.match(n) for n in reps)
    assert all(
        r.values["qymc"] is None
        or "公司" in r.values["qymc"]
        or "企业" in r.values["qymc"]
        or "经营部" in r.values["qymc"]
        for r in rows
    )
    edu = out_dir / "edu_drop" / manifest.sources["edu_degree"].files[0]
    assert edu.read_bytes().startswith(b"\xef\xbb\xbf")
    degrees = {r.values["xwjb"] for r in reader.read_rows(out_dir, manifest, "edu_degree")}
    assert degrees <= {"学士", "硕士", "博士"} and "学士" in degrees


def _snapshot(out_dir: Path, manifest: Manifest, reader: Any) -> dict[str, list[Any]]:
    return {
        name: [(r.ref, r.values) for r in reader.read_rows(out_dir, manifest, name)]
        for name in ALL_SOURCES
    }


def test_same_seed_same_output_other_seed_other_output(tmp_path: Path, reader: Any) -> None:
    args: dict[str, Any] = {"people": 200, "companies": 40}
    first = generate(out_dir=tmp_path / "a", seed=7, **args)
    second = generate(out_dir=tmp_path / "b", seed=7, **args)
    other = generate(out_dir=tmp_path / "c", seed=8, **args)
    assert first == second
    for folder in ("aic_drop", "edu_drop"):
        files = sorted(p.name for p in (tmp_path / "a" / folder).iterdir())
        match, mismatch, errors = filecmp.cmpfiles(
            tmp_path / "a" / folder, tmp_path / "b" / folder, files, shallow=False
        )
        assert match == files and not mismatch and not errors
        assert not filecmp.cmp(
            tmp_path / "a" / folder / files[0], tmp_path / "c" / folder / files[0], shallow=False
        )
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (
        tmp_path / "b" / "manifest.json"
    ).read_bytes()
    snapshot = _snapshot(tmp_path / "a", first, reader)
    assert snapshot == _snapshot(tmp_path / "b", second, reader)
    other_snapshot = _snapshot(tmp_path / "c", other, reader)
    assert all(snapshot[n] != other_snapshot[n] for n in ALL_SOURCES)
    assert first.resident_ids != other.resident_ids


def test_one_source_alone_is_the_same_source(tmp_path: Path, reader: Any) -> None:
    everything = generate(out_dir=tmp_path / "all", people=200, companies=40)
    alone = generate(out_dir=tmp_path / "one", people=200, companies=40, sources={"dlr_title"})
    assert list(alone.sources) == ["dlr_title"]
    assert alone.sources["dlr_title"] == everything.sources["dlr_title"]
    rows = reader.read_rows(tmp_path / "all", everything, "dlr_title")
    assert [r.values for r in reader.read_rows(tmp_path / "one", alone, "dlr_title")] == [
        r.values for r in rows
    ]


def test_regenerating_replaces_the_old_output(tmp_path: Path, reader: Any) -> None:
    generate(out_dir=tmp_path, people=200, companies=40, now=dt.datetime(2025, 6, 1))
    manifest = generate(out_dir=tmp_path, people=100, companies=20)
    assert (
        sorted(p.name for p in (tmp_path / "aic_drop").iterdir())
        == manifest.sources["aic_business"].files
    )
    couples = row_count("marriage_certificate", people=100, companies=20)
    assert len(reader.read_rows(tmp_path, manifest, "dca_marriage")) == couples
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dca_registry.db'}")
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT count(*) FROM marriage_registration")).scalar_one()
            == couples
        )
    engine.dispose()


def test_aware_clock_is_read_as_china_time(tmp_path: Path) -> None:
    utc = dt.datetime(2026, 3, 1, 20, 30, tzinfo=dt.UTC)
    manifest = generate(
        out_dir=tmp_path, people=100, companies=10, sources={"aic_business"}, now=utc
    )
    assert manifest.now == "2026-03-02T04:30:00"
    assert manifest.sources["aic_business"].files == ["aic_business_20260302.csv"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sources": {"no_such_source"}}, "unknown sources"),
        ({"dirty_rate": 0.9}, "dirty_rate"),
        ({"people": 10}, "at least"),
        ({"sql_urls": {"no_such_connection": "sqlite://"}}, "unknown SQL connections"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate(out_dir=tmp_path, **kwargs)
