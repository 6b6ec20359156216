"""Quality end to end through exchange.pipeline: a department batch with a known count of each
dirty-row kind, the quarantine, a batch above threshold (held), the export, the replay of fixed
rows into the lake, and the licenses issued for them.

The department system is a SQLite file written here (the dca_marriage source's table), so each
dirty row and the reason the hub must give it are spelled out in this file.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from catalog_schemas.catalog import shipped_catalog
from catalog_schemas.cipher import FieldCipher
from catalog_schemas.holder import holder_key
from exchange.hub import Hub
from exchange.issuance import issue_licenses
from exchange.lake import LakeTable
from exchange.pipeline import QualityThresholdError, ingest_source
from exchange.replay import (
    ReplayError,
    build_mapped,
    export_held,
    export_quarantine,
    read_replay_file,
    replay_app_id,
    replay_file,
    replay_one,
)
from license_store.model import License
from onehub.cli import app
from onehub.database import create_schema, signer_for
from quality.model import HeldBatch, HeldRow, QualityCheck, QualityRun, QuarantineRow

SOURCE = "dca_marriage"
NOW = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)
LICENSE = shipped_catalog().license_type("marriage_certificate")
_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]
_REGIONS = ["440103", "440104", "440105", "440106", "440111", "440113"]


def check_char(body17: str) -> str:
    """GB 11643 MOD 11-2 (written out here, independently of the code under test)."""
    value = (12 - sum(int(d) * w for d, w in zip(body17, _WEIGHTS, strict=True)) % 11) % 11
    return "X" if value == 10 else str(value)


def make_id(region: str, born: str, seq: int) -> str:
    body = f"{region}{born}{seq:03d}"
    return body + check_char(body)


def wrong_check(value: str) -> str:
    return value[:-1] + ("1" if value[-1] != "1" else "2")


# --- the department system ----------------------------------------------------------------------

_METADATA = sa.MetaData()
REGISTRY = sa.Table(
    "marriage_registration",
    _METADATA,
    sa.Column("reg_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("cert_no", sa.String(64)),
    sa.Column("male_id_no", sa.String(64)),
    sa.Column("male_name", sa.String(200)),
    sa.Column("female_id_no", sa.String(64)),
    sa.Column("female_name", sa.String(200)),
    sa.Column("reg_date", sa.String(32)),
    sa.Column("office_name", sa.String(400)),
    sa.Column("updated_at", sa.DateTime, nullable=True),
)


@dataclass
class Department:
    """The registry's rows, and what the hub must make of each dirty one."""

    url: str
    rows: list[dict[str, Any]]
    expected: dict[str, list[str]] = field(default_factory=dict)  # row ref -> reasons
    canonical: dict[str, tuple[str, str]] = field(default_factory=dict)  # ref -> (field, id)

    def write(self) -> None:
        engine = sa.create_engine(self.url)
        _METADATA.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.delete(REGISTRY))
            conn.execute(sa.insert(REGISTRY), self.rows)
        engine.dispose()

    def ids(self) -> set[str]:
        """Every ID value written, raw and canonical (to search the hub's files for)."""
        out = {r[k] for r in self.rows for k in ("male_id_no", "female_id_no") if r[k]}
        return out | {c for _, c in self.canonical.values()}

    def names(self) -> set[str]:
        return {r[k] for r in self.rows for k in ("male_name", "female_name") if r[k]}


def clean_rows(n: int) -> list[dict[str, Any]]:
    start = dt.datetime(2026, 11, 1, 9, 0)
    rows = []
    for i in range(n):
        born_a = dt.date(1960, 1, 1) + dt.timedelta(days=37 * i % 14000)
        born_b = dt.date(1962, 3, 1) + dt.timedelta(days=53 * i % 14000)
        rows.append(
            {
                "reg_id": i + 1,
                "cert_no": f"J440106-2026-{i:05d}",
                "male_id_no": make_id(_REGIONS[i % 6], born_a.strftime("%Y%m%d"), i % 1000),
                "male_name": f"男{i}号",
                "female_id_no": make_id(_REGIONS[(i + 1) % 6], born_b.strftime("%Y%m%d"), i % 997),
                "female_name": f"女{i}号",
                "reg_date": (dt.date(2010, 1, 1) + dt.timedelta(days=i)).isoformat(),
                "office_name": "广州市天河区民政局",
                "updated_at": start + dt.timedelta(seconds=i),
            }
        )
    return rows


def dirty_department(url: str, n: int = 400) -> Department:
    """``n`` rows with a known number of each dirty kind (19 rows, 4.5 % of the window)."""
    dep = Department(url=url, rows=clean_rows(n))
    rows = dep.rows
    cursor = iter(range(0, n, max(1, n // 30)))  # spread the 24 rows that matter over the table

    def dirty(reasons: list[str], **changes: Any) -> int:
        i = next(cursor)
        rows[i].update(changes)
        dep.expected[f"pk={rows[i]['reg_id']}"] = reasons
        return i

    for _ in range(3):
        i = next(cursor)
        rows[i]["male_id_no"] = wrong_check(rows[i]["male_id_no"])
        dep.expected[f"pk={rows[i]['reg_id']}"] = ["id_check_char:party_a_id"]
    for _ in range(2):
        i = next(cursor)
        rows[i]["female_id_no"] = rows[i]["female_id_no"][:17]
        dep.expected[f"pk={rows[i]['reg_id']}"] = ["id_length:party_b_id"]
    dirty(["id_birth_date:party_a_id"], male_id_no=make_id("440106", "20261201", 1))
    # 110201 昌平县 ended in 1982: nobody born in 1993 can carry it (docs/identifiers.md §3)
    dirty(["id_region:party_a_id"], male_id_no=make_id("110201", "19931201", 7))
    dirty(["id_charset:party_b_id"], female_id_no="44010619900101A23X")
    for _ in range(2):
        dirty(["not_null:party_b_name"], female_name=None)
    for _ in range(2):
        dirty(["bad_date:registration_date", "not_null:registration_date"], reg_date="2020-02-30")
    dirty(["pattern:certificate_no"], cert_no="J440106_2026_1")
    dirty(["max_length:certificate_no"], cert_no="J" * 33)
    first = dirty(["duplicate:certificate_no"], cert_no="J440106-DUP-1")
    dirty(["duplicate:certificate_no"], cert_no="J440106-DUP-1")
    assert first >= 0
    dirty(["max_length:registration_office"], office_name="局" * 129)
    i = next(cursor)
    rows[i]["male_id_no"] = wrong_check(rows[i]["male_id_no"])
    rows[i]["female_id_no"] = wrong_check(rows[i]["female_id_no"])
    rows[i]["male_name"] = None
    dep.expected[f"pk={rows[i]['reg_id']}"] = [
        "id_check_char:party_a_id",
        "not_null:party_a_name",
        "id_check_char:party_b_id",
    ]
    # rows without a watermark come in their own batch after the window and are quarantined
    dirty(["missing_watermark:updated_at"], updated_at=None)

    # clean rows that need care: legacy 15-digit, full-width, lower-case x, inner spaces
    def tricky(field_: str, raw: str, canonical: str) -> None:
        i = next(cursor)
        column = "male_id_no" if field_ == "party_a_id" else "female_id_no"
        rows[i][column] = raw
        dep.canonical[f"pk={rows[i]['reg_id']}"] = (field_, canonical)

    tricky("party_a_id", "610104620927690", "610104196209276908")
    fw = make_id("440106", "19850505", 12)
    tricky("party_b_id", "".join(chr(ord(c) + 0xFEE0) for c in fw), fw)
    x_id = next(v for v in (make_id("440113", "19900101", s) for s in range(200)) if v[-1] == "X")
    tricky("party_a_id", x_id[:-1] + "x", x_id)
    sp = make_id("440111", "19720808", 3)
    tricky("party_b_id", f"{sp[:6]} {sp[6:14]} {sp[14:]}", sp)
    i = next(cursor)
    rows[i]["reg_date"] = "2016年3月23日"
    dep.write()
    return dep


# --- the hub ------------------------------------------------------------------------------------


@dataclass
class Setup:
    hub: Hub
    dep: Department
    root: Path
    secrets: dict[str, str]


def _setup(tmp_path: Path, hub_db_url: str, *, n: int = 400) -> Setup:
    hub_key, data_key, kek = (secrets.token_bytes(32) for _ in range(3))
    url = f"sqlite:///{tmp_path / 'department.db'}"
    engine = sa.create_engine(hub_db_url)
    create_schema(engine)
    hub = Hub(
        catalog=shipped_catalog(),
        engine=engine,
        lake_uri=str(tmp_path / "data" / "lake"),
        hub_key=hub_key,
        cipher=FieldCipher({"k1": data_key}, "k1"),
        kek=kek,
        issuer_did="did:web:onehub.test",
        resolve_connection=lambda conn_id: {"dca_registry": url}[conn_id],
        now=lambda: NOW,
    )
    env = {
        "ONEHUB_DATA_DIR": str(tmp_path / "data"),
        "ONEHUB_DB_URL": hub_db_url,
        "ONEHUB_LAKE_URI": hub.lake_uri,
        "ONEHUB_HUB_KEY": hub_key.hex(),
        "ONEHUB_DATA_KEYS": json.dumps({"active": "k1", "keys": {"k1": data_key.hex()}}),
        "ONEHUB_KEK": kek.hex(),
        "ONEHUB_CONNECTIONS": json.dumps({"dca_registry": url}),
    }
    return Setup(hub=hub, dep=dirty_department(url, n), root=tmp_path, secrets=env)


@pytest.fixture
def setup(tmp_path: Path, hub_db_url: str) -> Iterator[Setup]:
    s = _setup(tmp_path, hub_db_url)
    yield s
    s.hub.engine.dispose()


def _lake(hub: Hub) -> LakeTable:
    return LakeTable(hub.lake_uri, LICENSE)


def _quarantine(hub: Hub) -> dict[str, QuarantineRow]:
    with hub.sessions() as session:
        return {r.row_ref: r for r in session.scalars(sa.select(QuarantineRow))}


def _files_text(folder: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in folder.rglob("*") if p.is_file())


# --- the tests ----------------------------------------------------------------------------------


def test_dirty_batch_end_to_end_then_replay_and_issue(setup: Setup) -> None:
    hub, dep = setup.hub, setup.dep
    report = ingest_source(hub, SOURCE)

    # the quarantine holds exactly the dirty rows, each with exactly its reasons
    assert report.rows_in == 400 == report.rows_loaded + report.rows_quarantined
    assert report.rows_quarantined == len(dep.expected) == 19
    quarantined = _quarantine(hub)
    assert {ref: r.reasons for ref, r in quarantined.items()} == dep.expected
    assert all(r.status == "open" for r in quarantined.values())

    # the lake holds the rest, ID numbers in canonical form (as their holder keys)
    lake = _lake(hub)
    lake_rows = {r["_row_ref"]: r for r in lake.read().to_pylist()}
    all_refs = {f"pk={r['reg_id']}" for r in dep.rows}
    assert set(lake_rows) == all_refs - set(dep.expected)
    for ref, (field_, canonical) in dep.canonical.items():
        assert lake_rows[ref][f"{field_}__key"] == holder_key(
            hub.hub_key, "natural_person", canonical
        )
    assert next(r for r in lake_rows.values() if r["registration_date"] == dt.date(2016, 3, 23))

    # one quality run: per-expectation counts in the DB, Data Docs and summary on disk
    with hub.sessions() as session:
        (run,) = session.scalars(sa.select(QualityRun)).all()
        checks = session.execute(
            sa.select(QualityCheck.reason, sa.func.sum(QualityCheck.unexpected_count)).group_by(
                QualityCheck.reason
            )
        ).all()
    assert (run.kind, run.status, run.rows_in, run.rows_rejected) == ("ingest", "passed", 400, 19)
    failed = dict(checks)
    assert failed["id:party_a_id"] == 6  # 3 + birth date + region + the combined row
    assert failed["not_null:party_b_name"] == 2
    assert failed["duplicate:certificate_no"] == 2
    assert failed["bad_date:registration_date"] == 2
    assert failed["missing_watermark:updated_at"] == 1
    reports = setup.root / "data" / "quality" / SOURCE / str(run.id)
    assert run.report_uri == str(reports / "index.html")
    summary = json.loads((reports / "summary.json").read_text(encoding="utf-8"))
    assert (summary["rows_in"], summary["rows_rejected"], summary["batches"]) == (400, 19, 2)
    html = (reports / "index.html").read_text(encoding="utf-8")
    assert "party_b_name" in html and "Unsuccessful Expectations" in html
    text = _files_text(setup.root / "data" / "quality")
    leaked = [v for v in dep.ids() | dep.names() if v in text]
    assert leaked == []

    # the export for the department: decrypted, owner-only
    export = setup.root / "to_department.csv"
    assert export_quarantine(hub, export, source=SOURCE) == 19
    assert stat.S_IMODE(export.stat().st_mode) == 0o600
    with export.open(encoding="utf-8-sig", newline="") as fh:
        exported = list(csv.DictReader(fh))
    by_ref = {r["row_ref"]: r for r in exported}
    wrong = [ref for ref, why in dep.expected.items() if why == ["id_check_char:party_a_id"]]
    raw = {f"pk={r['reg_id']}": r for r in dep.rows}
    assert by_ref[wrong[0]]["party_a_id"] == raw[wrong[0]]["male_id_no"]  # decrypted
    dates = [ref for ref, why in dep.expected.items() if why[0] == "bad_date:registration_date"]
    # the value the mapping could not read is exported as the department sent it
    assert [by_ref[ref]["registration_date"] for ref in dates] == ["2020-02-30", "2020-02-30"]

    # the department fixes some rows; the others come back unchanged
    fixed: dict[str, dict[str, str]] = {}
    for ref in wrong:
        fixed[ref] = {"party_a_id": make_id("440106", "19880808", int(ref[3:]) % 1000)}
    names = [ref for ref, why in dep.expected.items() if why == ["not_null:party_b_name"]]
    fixed[names[0]] = {"party_b_name": "王芳"}
    fixed[dates[0]] = {"registration_date": "2020/2/28"}
    for ref, changes in fixed.items():
        by_ref[ref].update(changes)
    # a row quarantined only for its missing watermark has nothing to fix in its values
    (no_watermark,) = [r for r, why in dep.expected.items() if why[0].startswith("missing_")]
    fixed[no_watermark] = {}
    corrected = setup.root / "from_department.csv"
    with corrected.open("w", encoding="gb18030", newline="") as fh:  # saved by a spreadsheet
        writer = csv.DictWriter(fh, fieldnames=list(exported[0]))
        writer.writeheader()
        writer.writerows(exported)

    state_before = lake.committed_state(SOURCE)
    seq_before = lake.committed_seq(SOURCE)
    (replayed,) = replay_file(hub, corrected)
    assert replayed.rows_in == 19 and replayed.rows_loaded == len(fixed) == 6
    fixed_ids = sorted(quarantined[ref].id for ref in fixed)
    assert sorted(replayed.resolved) == fixed_ids
    assert set(replayed.failed) == {r.id for ref, r in quarantined.items() if ref not in fixed}
    assert replayed.failed[quarantined[dates[1]].id] == dep.expected[dates[1]]
    assert replayed.batch_id == f"replay:{SOURCE}:1"
    # the source's watermark is untouched; the replay has its own transaction
    assert lake.committed_state(SOURCE) == state_before
    assert lake.committed_seq(SOURCE) == seq_before
    assert lake.committed_seq(replay_app_id(SOURCE)) == 1
    lake_rows = {r["_row_ref"]: r for r in lake.read().to_pylist()}
    for ref in fixed:
        assert lake_rows[ref]["_batch_id"] == replayed.batch_id
    assert lake_rows[wrong[0]]["party_a_id__key"] == holder_key(
        hub.hub_key, "natural_person", fixed[wrong[0]]["party_a_id"]
    )
    after = _quarantine(hub)
    assert {ref for ref, r in after.items() if r.status == "resolved"} == set(fixed)
    assert after[wrong[0]].resolved_by == replayed.batch_id
    assert after[dates[1]].last_replay_reasons == dep.expected[dates[1]]

    # the normal issuance step issues licenses for the replayed rows
    issued = issue_licenses(hub, signer_for(hub))
    assert issued.issued["marriage_certificate"] == 381 + 6
    keys = {lake_rows[ref]["record_key"] for ref in fixed}
    with hub.sessions() as session:
        got = set(
            session.scalars(sa.select(License.record_key).where(License.record_key.in_(keys)))
        )
    assert got == keys

    # replaying the same file again: the resolved rows are skipped, the rest fail again
    (again,) = replay_file(hub, corrected)
    assert sorted(again.skipped) == fixed_ids and again.rows_loaded == 0
    assert _quarantine(hub)[dates[1]].replays == 2
    # and the source itself is still where it was: nothing new to read
    assert ingest_source(hub, SOURCE).rows_in == 0


def test_records_issuance_refuses_are_quarantined_then_replayed_and_issued(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, dep = setup.hub, setup.dep
    assert ingest_source(hub, SOURCE).rows_loaded == 381
    # a row the gate quarantined in batch 1, fixed and replayed: in the lake under replay batch
    # 1, the same number as the batch it was quarantined in
    names = [ref for ref, why in dep.expected.items() if why == ["not_null:party_b_name"]]
    first = replay_one(
        hub, row_id=_quarantine(hub)[names[0]].id, overrides={"party_b_name": "王芳"}
    )
    assert (first.rows_loaded, first.batch_id) == (1, f"replay:{SOURCE}:1")

    # issue() refuses every record (each credential over the bound): the change feed's cursor
    # moves on, so each refused record is quarantined with its reason, in the same transaction
    monkeypatch.setattr("license_store.issuance.MAX_CREDENTIAL_BYTES", 1024)
    report = issue_licenses(hub, signer_for(hub))
    assert report.issued["marriage_certificate"] == 0
    assert report.quarantined["marriage_certificate"] == 382
    quarantined = _quarantine(hub)
    refused = {
        ref: row
        for ref, row in quarantined.items()
        if row.reasons == ["issuance:license_record_too_large"]
    }
    assert len(refused) == 382 and all(row.status == "open" for row in refused.values())
    # the replayed row's resolved quarantine entry is opened again, not skipped as a duplicate
    assert refused[names[0]].resolved_by is None and refused[names[0]].replays == 1
    assert len(quarantined) == 19 + 381
    # ID fields encrypted, as the gate's quarantine keeps them
    text = json.dumps([row.row_json for row in refused.values()], ensure_ascii=False)
    assert [v for v in dep.ids() if v in text] == []
    monkeypatch.undo()
    assert issue_licenses(hub, signer_for(hub)).issued == {}  # nothing new in the lake

    # a refused row, fixed and replayed, is issued by the next run and its entry resolved
    ref = next(r for r in sorted(refused) if r != names[0])
    fixed = replay_one(hub, row_id=refused[ref].id, overrides={"party_a_name": "赵六"})
    assert fixed.rows_loaded == 1
    again = issue_licenses(hub, signer_for(hub))
    assert (again.issued, again.quarantined) == (
        {"marriage_certificate": 1},
        {"marriage_certificate": 0},
    )
    assert _quarantine(hub)[ref].status == "resolved"


def test_batch_above_threshold_is_held(tmp_path: Path, hub_db_url: str) -> None:
    s = _setup(tmp_path, hub_db_url, n=120)
    hub, dep = s.hub, s.dep
    # 19 dirty rows of 120: 15 % > 5 %
    with pytest.raises(QualityThresholdError) as info:
        ingest_source(hub, SOURCE)
    message = str(info.value)
    assert "nothing of it was published" in message
    assert "id_check_char:party_a_id ×4" in message  # the worst check, named with its count
    assert "held batch 1" in message and "quality report" in message
    lake = _lake(hub)
    assert lake.count() == 0 and lake.committed_state(SOURCE) is None  # watermark unmoved
    with hub.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(QuarantineRow)) == 0
        (held,) = session.scalars(sa.select(HeldBatch)).all()
        held_rows = session.scalars(sa.select(HeldRow)).all()
        (run,) = session.scalars(sa.select(QualityRun)).all()
        stored = [
            str(v)
            for row in session.execute(
                sa.select(*[sa.cast(c, sa.Text) for c in HeldRow.__table__.c])
            )
            for v in row
            if v is not None
        ]
    window = [ref for ref in dep.expected if dep.expected[ref] != ["missing_watermark:updated_at"]]
    assert (held.rows_in, held.rows_rejected, held.attempts) == (119, len(window), 1)
    assert {r.row_ref: r.reasons for r in held_rows} == {ref: dep.expected[ref] for ref in window}
    assert run.status == "held" and held.quality_run_id == run.id
    assert stored and not [v for v in dep.ids() if any(v in t for t in stored)]
    assert not [v for v in dep.ids() if v in _files_text(tmp_path / "data" / "quality")]

    # a retry that fails the same way is the same held batch, seen again
    with pytest.raises(QualityThresholdError):
        ingest_source(hub, SOURCE)
    with hub.sessions() as session:
        (held,) = session.scalars(sa.select(HeldBatch)).all()
    assert held.attempts == 2

    # its rows can be exported for inspection, not replayed
    out = tmp_path / "held.csv"
    assert export_held(hub, out, held_id=held.id) == len(window)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with pytest.raises(ReplayError, match="held batch"):
        replay_file(hub, out)
    # and shown by the CLI with ID numbers masked
    result = CliRunner().invoke(app, ["quarantine", "held", str(held.id)], env=s.secrets)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert (shown["rows_rejected"], shown["attempts"]) == (len(window), 2)
    assert not [v for v in dep.ids() if v in result.output]
    listing = CliRunner().invoke(app, ["quarantine", "held"], env=s.secrets)
    assert listing.exit_code == 0 and "rows in" in listing.output

    # once the department fixes its rows, the same window is read again and published
    s.dep.rows = clean_rows(120)
    s.dep.write()
    report = ingest_source(hub, SOURCE)
    assert report.rows_in == 120 and report.rows_quarantined == 0
    assert lake.count() == 120 and lake.committed_state(SOURCE) is not None


def test_cli_list_show_export_replay(tmp_path: Path, sqlite_url: str) -> None:
    setup = _setup(tmp_path, sqlite_url)
    hub, dep = setup.hub, setup.dep
    ingest_source(hub, SOURCE)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args), env=setup.secrets)
        assert result.exit_code == code, result.output
        return str(result.output)

    listing = run("quarantine", "list", "--source", SOURCE, "--limit", "100", "--json")
    assert {r["row_ref"]: r["reasons"] for r in json.loads(listing)} == dep.expected
    assert not [v for v in dep.ids() if v in listing]
    assert "row ref" in run("quarantine", "list")  # the table
    quarantined = _quarantine(hub)
    target = next(r for ref, r in quarantined.items() if r.reasons == ["not_null:party_b_name"])
    shown = json.loads(run("quarantine", "show", str(target.id)))
    assert shown["reasons"] == ["not_null:party_b_name"] and shown["status"] == "open"
    assert "*" in shown["values"]["party_a_id"]  # masked
    combined = next(r for r in quarantined.values() if len(r.reasons) == 3)
    text = run("quarantine", "show", str(combined.id))
    assert not [v for v in dep.ids() if v in text]

    out = setup.root / "export.csv"
    assert "decrypted" in run("quarantine", "export", "--help").lower()
    run("quarantine", "export", "--source", SOURCE, "-o", str(out))
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    run("quarantine", "export", "--source", SOURCE, "-o", str(out), code=1)  # no overwrite

    # one row, by source and row ref, with an override
    replayed = run(
        "quarantine", "replay", "--source", SOURCE, "--row-ref", target.row_ref, "party_b_name=王芳"
    )
    assert json.loads(replayed)["resolved"] == [target.id]
    assert _quarantine(hub)[target.row_ref].status == "resolved"
    assert target.row_ref in {r["_row_ref"] for r in _lake(hub).read().to_pylist()}
    # still wrong: exit 2, the row stays open with its reasons
    bad = next(r for r in quarantined.values() if r.reasons == ["id_length:party_b_id"])
    run("quarantine", "replay", "--id", str(bad.id), "party_b_name=x", code=2)
    assert _quarantine(hub)[bad.row_ref].last_replay_reasons == ["id_length:party_b_id"]
    run("quarantine", "replay", "--id", str(bad.id), "nonsense=1", code=1)

    listing = run("quarantine", "list", "--status", "resolved", "--json")
    assert [r["row_ref"] for r in json.loads(listing)] == [target.row_ref]
    runs = json.loads(run("quality", "runs", "--json"))
    assert [r["kind"] for r in runs] == ["replay", "replay", "ingest"]
    assert all(Path(r["report"]).is_file() for r in runs)
    run("quality", "runs")
    assert "pass rate" in run("quality", "report", "--source", SOURCE, "--by", "run", "--replays")
    data = json.loads(run("quality", "report", "--json", "--since", "2026-11-01"))
    rows = {(d["check"], d["kind"]) for d in data}
    assert ("not_null:party_b_name", "ingest") in rows
    assert run("quality", "report", "--json", "--since", "2026-12-01").strip() == "[]"


def test_build_mapped_types_fields_like_the_mapping() -> None:
    source = shipped_catalog().source("hrss_insurance")
    insurance = shipped_catalog().license_type("social_insurance_certificate")
    table = build_mapped(
        [
            (1, {"months_paid": "12", "enrolled_since": "2020-1-2", "insurance_scheme": "pension"}),
            (2, {"months_paid": "12.5", "enrolled_since": "2020-13-01", "insurance_scheme": "x"}),
            (3, {"months_paid": None, "enrolled_since": " ", "insurance_scheme": None}),
        ],
        license_type=insurance,
        source=source,
    )
    assert table.column("months_paid").to_pylist() == [12, None, None]
    assert table.column("enrolled_since").to_pylist() == [dt.date(2020, 1, 2), None, None]
    assert table.column("_row_ref").to_pylist() == ["q1", "q2", "q3"]
    assert table.column("_errors").to_pylist() == [
        [],
        ["unknown_code:insurance_scheme", "bad_date:enrolled_since", "bad_integer:months_paid"],
        [],
    ]
    with pytest.raises(ReplayError, match="no fields"):
        build_mapped([(1, {"bogus": "1"})], license_type=insurance, source=source)


def test_replay_file_must_keep_the_export_layout(tmp_path: Path, sqlite_url: str) -> None:
    setup = _setup(tmp_path, sqlite_url, n=40)
    path = setup.root / "x.csv"
    path.write_text("row_ref,party_a_id\npk=1,1\n", encoding="utf-8")
    with pytest.raises(ReplayError, match="quarantine_id"):
        read_replay_file(path)
    path.write_text("quarantine_id,source,party_a_id\n1,dca_marriage,1\n1,dca_marriage,2\n")
    with pytest.raises(ReplayError, match="twice"):
        read_replay_file(path)
    path.write_text("quarantine_id,source,party_a_id\n999,dca_marriage,1\n")
    with pytest.raises(ReplayError, match="999"):
        replay_file(setup.hub, path)
    with pytest.raises(ReplayError, match="name the row"):
        replay_one(setup.hub)
