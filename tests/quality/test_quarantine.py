"""The quarantine table on SQLite and PostgreSQL: encrypted IDs, idempotent re-recording."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from quality_data import legacy_ids, marriage_batch, wrong_check_char
from sqlalchemy.orm import Session

from catalog_schemas.catalog import shipped_catalog
from catalog_schemas.cipher import DecryptionError, FieldCipher, generate_key
from quality import Gate, QuarantineRow, decrypt_row, list_rows, metadata, record_rejected
from quality.quarantine import QuarantineInputError, mask_raw_id

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
