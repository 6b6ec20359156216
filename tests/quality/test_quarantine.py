"""The quarantine table on SQLite and PostgreSQL: encrypted IDs, idempotent re-recording."""

from __future__ import annotations

import csv
import datetime as dt
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from quality_data import legacy_ids, marriage_batch, wrong_check_char
from sqlalchemy.orm import Session

from catalog_schemas.catalog import shipped_catalog
from catalog_schemas.cipher import DecryptionError, FieldCipher, generate_key
from catalog_schemas.errors import ConflictError, NotFoundError
from quality import Gate, QuarantineRow, decrypt_row, list_rows, metadata, record_rejected
from quality.model import HeldRow
from quality.quarantine import (
    EXPORT_ID,
    QuarantineInputError,
    decrypt_held_row,
    find_row,
    get_held,
    get_row,
    hold_batch,
    list_held,
    mark_resolved,
    mask_raw_id,
    note_replay_failure,
    unconverted_values,
    with_unconverted,
    write_export,
)

TODAY = dt.date(2026, 11, 5)
NOW = dt.datetime(2026, 11, 5, 9, 30, tzinfo=dt.UTC)
SOURCE = "dca_marriage"
LICENSE = shipped_catalog().license_type("marriage_certificate")


@pytest.fixture
def session(hub_db_url: str) -> Iterator[Session]:
    engine = sa.create_engine(hub_db_url)
    metadata.create_all(engine)
    with Session(engine) as s:
        yield s
    engine.dispose()


@pytest.fixture
def cipher() -> FieldCipher:
    return FieldCipher({"k1": generate_key()}, "k1")


def _rejected() -> tuple[pa.Table, list[str]]:
    """A gate's rejected marriage rows, and every ID value in them (raw and converted)."""
    table = marriage_batch(12, seed=5)
    rows = table.to_pylist()
    legacy, converted = legacy_ids()[0]
    rows[0]["party_a_id"] = wrong_check_char(rows[0]["party_a_id"])
    rows[1]["party_b_id"] = "1234"  # too short to mask: shown as ***
    rows[2]["party_a_id"] = legacy  # valid, but the row fails on its name
    rows[2]["party_a_name"] = None
    rows[3]["registration_date"] = None
    rows[3]["_errors"] = ["bad_date:registration_date"]
    rows[4]["party_b_id"] = None
    gate = Gate(LICENSE, today=TODAY)
    result = gate.check(pa.Table.from_pylist(rows, schema=table.schema))
    assert result.rejected.num_rows == 5
    ids = [v for r in rows[:5] for v in (r["party_a_id"], r["party_b_id"]) if v]
    return result.rejected, [*ids, converted]


def _all_text(session: Session) -> list[str]:
    """Every column of every quarantine row, as the database renders it to text."""
    columns = [sa.cast(c, sa.Text) for c in QuarantineRow.__table__.columns]
    return [str(v) for row in session.execute(sa.select(*columns)) for v in row if v is not None]


def test_round_trip_without_plaintext_ids(session: Session, cipher: FieldCipher) -> None:
    rejected, id_values = _rejected()
    added = record_rejected(
        session=session,
        source=SOURCE,
        batch_seq=7,
        license_type=LICENSE,
        rejected=rejected,
        cipher=cipher,
        now=NOW,
    )
    session.commit()
    assert added == rejected.num_rows

    text = _all_text(session)
    assert text  # the search below looked at something
    for value in id_values:
        assert all(value not in t for t in text), "an ID number is stored in plaintext"

    stored = {row.row_ref: row for row in list_rows(session=session, source=SOURCE)}
    original = {r["_row_ref"]: r for r in rejected.to_pylist()}
    assert set(stored) == set(original)
    for ref, row in stored.items():
        src = original[ref]
        assert row.reasons == src["_reasons"]
        assert (row.source, row.batch_seq, row.license_type) == (SOURCE, 7, LICENSE.code)
        assert row.created_at.replace(tzinfo=None) == NOW.replace(tzinfo=None)
        for field in LICENSE.id_fields:
            value = src[field]
            if value is None:
                assert row.row_json[field] is None
            else:
                assert row.row_json[field]["masked"] == mask_raw_id(value)
                assert set(row.row_json[field]) == {"masked", "enc"}
        assert row.row_json["party_a_name"] == src["party_a_name"]
        assert "_row_ref" not in row.row_json and "_reasons" not in row.row_json
        plain = decrypt_row(row, cipher=cipher)
        expected = {
            k: (v.isoformat() if isinstance(v, dt.date) else v)
            for k, v in src.items()
            if k not in ("_row_ref", "_reasons", "_errors")
        }
        assert plain == expected


def test_masking() -> None:
    assert mask_raw_id("44010619900101123X") == "440106********123X"
    assert mask_raw_id("610104620927690") == "610104*****7690"
    assert mask_raw_id("12345678901234") == "***"


def test_re_recording_a_batch_adds_nothing(session: Session, cipher: FieldCipher) -> None:
    rejected, _ = _rejected()
    kwargs: dict[str, Any] = dict(
        session=session, source=SOURCE, license_type=LICENSE, cipher=cipher, now=NOW
    )
    # a crash after the first two rows were written: the retry adds only the rest
    assert record_rejected(batch_seq=3, rejected=rejected.slice(0, 2), **kwargs) == 2
    session.commit()
    assert record_rejected(batch_seq=3, rejected=rejected, **kwargs) == rejected.num_rows - 2
    session.commit()
    assert record_rejected(batch_seq=3, rejected=rejected, **kwargs) == 0
    session.commit()
    # the same row refs in another batch or source are other rows
    assert record_rejected(batch_seq=4, rejected=rejected, **kwargs) == rejected.num_rows
    kwargs["source"] = "other_source"
    assert record_rejected(batch_seq=3, rejected=rejected, **kwargs) == rejected.num_rows
    session.commit()
    count = session.scalar(sa.select(sa.func.count()).select_from(QuarantineRow))
    assert count == 3 * rejected.num_rows
    assert len(list_rows(session=session, source=SOURCE, limit=1000)) == 2 * rejected.num_rows
    assert len(list_rows(session=session, limit=3)) == 3
    assert list_rows(session=session, source="nobody") == []


def test_token_is_bound_to_its_row(session: Session, cipher: FieldCipher) -> None:
    rejected, _ = _rejected()
    record_rejected(
        session=session,
        source=SOURCE,
        batch_seq=1,
        license_type=LICENSE,
        rejected=rejected,
        cipher=cipher,
        now=NOW,
    )
    session.commit()
    first, second = list_rows(session=session, source=SOURCE)[:2]
    moved = dict(second.row_json)
    moved["party_a_id"] = first.row_json["party_a_id"]
    second.row_json = moved
    with pytest.raises(DecryptionError):
        decrypt_row(second, cipher=cipher)
    other_key = FieldCipher({"k1": generate_key()}, "k1")
    with pytest.raises(DecryptionError):
        decrypt_row(first, cipher=other_key)


def test_rejected_table_needs_reasons(session: Session, cipher: FieldCipher) -> None:
    with pytest.raises(QuarantineInputError, match="_reasons"):
        record_rejected(
            session=session,
            source=SOURCE,
            batch_seq=1,
            license_type=LICENSE,
            rejected=marriage_batch(2),
            cipher=cipher,
            now=NOW,
        )


# --- open / resolved, held batches, export ----------------------------------------------------


def _record(session: Session, cipher: FieldCipher, *, batch_seq: int = 1) -> pa.Table:
    rejected, _ = _rejected()
    record_rejected(
        session=session,
        source=SOURCE,
        batch_seq=batch_seq,
        license_type=LICENSE,
        rejected=rejected,
        cipher=cipher,
        now=NOW,
    )
    session.commit()
    return rejected


def test_rows_start_open_and_resolve_once(session: Session, cipher: FieldCipher) -> None:
    _record(session, cipher)
    rows = list_rows(session=session, source=SOURCE, status="open")
    assert len(rows) == 5 and {r.status for r in rows} == {"open"}
    ids = [r.id for r in rows[:2]]
    assert mark_resolved(session=session, row_ids=ids, by="replay:dca_marriage:1", now=NOW) == ids
    # a second replay racing the first resolves nothing
    assert mark_resolved(session=session, row_ids=ids, by="replay:dca_marriage:2", now=NOW) == []
    session.commit()
    resolved = list_rows(session=session, source=SOURCE, status="resolved")
    assert sorted(r.id for r in resolved) == sorted(ids)
    assert {r.resolved_by for r in resolved} == {"replay:dca_marriage:1"}
    assert {r.replays for r in resolved} == {1}
    note_replay_failure(
        session=session, row_id=rows[3].id, reasons=["id_length:party_a_id"], now=NOW
    )
    session.commit()
    session.expire_all()
    again = get_row(session=session, row_id=rows[3].id)
    assert (again.status, again.replays, again.last_replay_reasons) == (
        "open",
        1,
        ["id_length:party_a_id"],
    )
    with pytest.raises(NotFoundError):
        get_row(session=session, row_id=10_000)


def test_find_row_by_ref(session: Session, cipher: FieldCipher) -> None:
    rejected = _record(session, cipher, batch_seq=1)
    ref = rejected.column("_row_ref")[0].as_py()
    assert find_row(session=session, source=SOURCE, row_ref=ref).batch_seq == 1
    _record(session, cipher, batch_seq=2)  # the same source rows quarantined again
    with pytest.raises(ConflictError, match="choose one by id"):
        find_row(session=session, source=SOURCE, row_ref=ref)
    with pytest.raises(NotFoundError):
        find_row(session=session, source=SOURCE, row_ref="nope")


def test_held_batch_keeps_rejected_rows_encrypted(session: Session, cipher: FieldCipher) -> None:
    rejected, id_values = _rejected()
    kwargs: dict[str, Any] = dict(
        session=session,
        source=SOURCE,
        batch_seq=4,
        license_type=LICENSE,
        rows_in=12,
        rows_counted=5,
        threshold=0.05,
        reasons={"id_check_char:party_a_id": 1},
        cipher=cipher,
    )
    first = hold_batch(rejected=rejected, now=NOW, **kwargs)
    session.commit()
    # the same failure again (a retry) is the same held batch, seen once more
    again = hold_batch(rejected=rejected, now=NOW + dt.timedelta(minutes=5), **kwargs)
    assert again.id == first.id and again.attempts == 2
    # a different failure of the same batch is kept apart
    other = hold_batch(rejected=rejected.slice(0, 2), now=NOW, **kwargs)
    assert other.id != first.id
    session.commit()
    assert [h.id for h in list_held(session=session, source=SOURCE)] == [other.id, first.id]
    held, rows = get_held(session=session, held_id=first.id)
    assert (held.rows_in, held.rows_rejected, held.rows_counted) == (12, 5, 5)
    original = {r["_row_ref"]: r for r in rejected.to_pylist()}
    assert {r.row_ref: r.reasons for r in rows} == {k: v["_reasons"] for k, v in original.items()}
    columns = [sa.cast(c, sa.Text) for c in HeldRow.__table__.columns]
    text = [str(v) for row in session.execute(sa.select(*columns)) for v in row if v is not None]
    assert text and not [v for v in id_values if any(v in t for t in text)]
    for row in rows:
        plain = decrypt_held_row(row, cipher=cipher)
        assert plain["party_a_id"] == original[row.row_ref]["party_a_id"]
    # a held row's token is bound to its held batch, not to the quarantine
    moved = QuarantineRow(
        source=SOURCE, row_ref=rows[0].row_ref, row_json=rows[0].row_json, reasons=[]
    )
    with pytest.raises(DecryptionError):
        decrypt_row(moved, cipher=cipher)
    with pytest.raises(NotFoundError):
        get_held(session=session, held_id=10_000)


def test_unconverted_source_values_are_kept(session: Session, cipher: FieldCipher) -> None:
    source = shipped_catalog().source("dca_marriage")
    table = marriage_batch(3, seed=9)
    rows = table.to_pylist()
    rows[1]["registration_date"] = None
    rows[1]["_errors"] = ["bad_date:registration_date"]
    rows[2]["party_a_id"] = "12345"
    result = Gate(LICENSE, today=TODAY).check(pa.Table.from_pylist(rows, schema=table.schema))
    raw_batch = pa.table(
        {
            "reg_date": ["2020-01-01", "2020-02-30", "2020-01-03"],
            "male_id_no": [r["party_a_id"] for r in rows],
            "_row_ref": [r["_row_ref"] for r in rows],
        }
    )
    assert unconverted_values(result.rejected, source_batch=raw_batch, source=source) == {
        "1": {"registration_date": "2020-02-30"}
    }
    record_rejected(
        session=session,
        source=SOURCE,
        batch_seq=1,
        license_type=LICENSE,
        rejected=result.rejected,
        cipher=cipher,
        now=NOW,
        source_batch=raw_batch,
        source_spec=source,
    )
    session.commit()
    stored = {r.row_ref: r for r in list_rows(session=session)}
    assert stored["1"].row_json["_raw"] == {"registration_date": "2020-02-30"}
    assert "_raw" not in stored["2"].row_json  # an ID value is never kept raw
    values = with_unconverted(decrypt_row(stored["1"], cipher=cipher))
    assert values["registration_date"] == "2020-02-30" and "_raw" not in values


def test_export_is_owner_only_and_readable_by_a_spreadsheet(
    session: Session, cipher: FieldCipher, tmp_path: Path
) -> None:
    rejected = _record(session, cipher)
    rows = list_rows(session=session, source=SOURCE)
    records = [
        {
            "id": r.id,
            "source": r.source,
            "row_ref": r.row_ref,
            "reasons": r.reasons,
            "values": decrypt_row(r, cipher=cipher),
        }
        for r in rows
    ]
    path = tmp_path / "out.csv"
    path.write_text("old", encoding="utf-8")
    os.chmod(path, 0o644)
    with pytest.raises(ConflictError):
        write_export(path, license_type=LICENSE, records=records)
    assert write_export(path, license_type=LICENSE, records=records, overwrite=True) == 5
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # BOM: spreadsheets then read UTF-8 Chinese
    with path.open(encoding="utf-8-sig", newline="") as fh:
        exported = list(csv.DictReader(fh))
    assert list(exported[0])[:4] == [EXPORT_ID, "source", "row_ref", "reasons"]
    original = {r["_row_ref"]: r for r in rejected.to_pylist()}
    for row in exported:
        src = original[row["row_ref"]]
        assert row["party_a_id"] == (src["party_a_id"] or "")
        assert row["reasons"] == "; ".join(src["_reasons"])
    fresh = tmp_path / "fresh.csv"
    write_export(fresh, license_type=LICENSE, records=records[:1])
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
