"""Rows issue() writes in bulk (PostgreSQL: COPY; SQLite: multi-row INSERTs) read back exactly."""

from __future__ import annotations

import datetime as dt
import gc
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog_schemas.cipher import FieldCipher
from license_store import issuance
from license_store.error import ConcurrentIssuanceError, UnknownLicenseTypeError
from license_store.issuance import SIGN_BATCH, issue
from license_store.model import License, LicenseHolder
from license_store.record import LicenseRecord
from license_store.signer import Ed25519Signer
from license_store.store import credential_of, current_license

MakeRecord = Callable[..., LicenseRecord]
IssueAll = Callable[[list[LicenseRecord], dt.datetime], None]
IssueWith = Callable[..., object]

# Free text that COPY's text format must escape, or could mistake for NULL.
AWKWARD = ["tab\there", "line\nbreak", "back\\slash", "\\N", "carriage\rreturn", "\\.", "中文 é"]


@pytest.fixture
def issue_with(
    session: Session,
    signer: Ed25519Signer,
    cipher: FieldCipher,
    issuer_did: str,
    type_codes: dict[str, str],
    issuer_codes: dict[str, str],
) -> IssueWith:
    """issue() with the test store's arguments; keyword arguments override them."""

    def run(records: list[LicenseRecord], **overrides: Any) -> object:
        arguments: dict[str, Any] = {
            "session": session,
            "signer": signer,
            "cipher": cipher,
            "issuer_did": issuer_did,
            "type_codes": type_codes,
            "issuer_codes": issuer_codes,
        }
        return issue(records=records, **(arguments | overrides))

    return run


@pytest.fixture
def issue_all(session: Session, issue_with: IssueWith) -> IssueAll:
    """Issue records in one call and commit; later reads come from the database."""

    def run(records: list[LicenseRecord], now: dt.datetime) -> None:
        issue_with(records, now=now)
        session.commit()
        session.expunge_all()

    return run


@pytest.mark.parametrize("text", AWKWARD)
def test_free_text_columns_survive_the_bulk_write(
    session: Session,
    issue_all: IssueAll,
    cipher: FieldCipher,
    make_record: MakeRecord,
    now: dt.datetime,
    text: str,
) -> None:
    record = make_record(
        7,
        record_key=f"marriage_certificate:dca:{text}",
        source=f"src {text}",
        batch_id=f"batch {text}",
        row_hash=f"hash {text}",
        valid_until=dt.date(2030, 1, 31),
    )
    plain = make_record(8, valid_from=None)
    issue_all([record, plain], now)
    stored = current_license(session=session, record_key=record.record_key)
    assert stored is not None
    assert (stored.source, stored.batch_id, stored.row_hash) == (
        record.source,
        record.batch_id,
        record.row_hash,
    )
    assert (stored.valid_from, stored.valid_until) == (record.valid_from, dt.date(2030, 1, 31))
    assert stored.issued_at == now and stored.as_of == record.as_of
    assert stored.status_changed_at is None
    assert [h.id_masked for h in stored.holders] == [h.id_masked for h in record.holders]
    credential = credential_of(stored, cipher)
    assert credential["credentialSubject"]["licenseNumber"] == record.license_no
    other = current_license(session=session, record_key=plain.record_key)
    assert other is not None and other.valid_from is None and other.valid_until is None


@pytest.mark.parametrize(
    ("valid_from", "valid_until"),
    [
        (dt.date(1949, 10, 1), dt.date(9999, 12, 31)),  # before and long after PostgreSQL's epoch
        (dt.date(2000, 1, 1), dt.date(2000, 1, 2)),  # on it
        (dt.date(1999, 12, 31), None),
    ],
)
def test_dates_and_times_survive_the_bulk_write(
    session: Session,
    issue_all: IssueAll,
    make_record: MakeRecord,
    valid_from: dt.date,
    valid_until: dt.date | None,
) -> None:
    # PostgreSQL takes these rows as binary COPY: days and microseconds since 2000-01-01 UTC.
    beijing = dt.timezone(dt.timedelta(hours=8))
    as_of = dt.datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=beijing)
    now = dt.datetime(2026, 11, 27, 10, 11, 12, 345_678, tzinfo=beijing)
    record = make_record(9, valid_from=valid_from, valid_until=valid_until, as_of=as_of)
    issue_all([record], now)
    stored = current_license(session=session, record_key=record.record_key)
    assert stored is not None
    assert (stored.valid_from, stored.valid_until) == (valid_from, valid_until)
    assert stored.issued_at == now and stored.issued_at.utcoffset() == dt.timedelta(0)
    assert stored.as_of == as_of
    assert (stored.version, stored.status_seq) == (1, 0)


def test_a_row_the_database_refuses_fails_the_call_and_writes_nothing(
    session: Session,
    issue_all: IssueAll,
    make_record: MakeRecord,
    now: dt.datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Rows are written from a background thread on both backends (COPY on PostgreSQL,
    # multi-row INSERTs on SQLite): the database's refusal must still reach the caller, as the
    # retriable ConcurrentIssuanceError, and the transaction roll back whole. Here another
    # issuer "took" serial 1 first: the new record gets the same identifier.
    issue_all([make_record(1)], now)
    monkeypatch.setattr(issuance, "_take_serial", lambda session, taken, scope: 1)
    records = [make_record(serial) for serial in range(2, 2 + 3 * SIGN_BATCH)]
    with pytest.raises(ConcurrentIssuanceError):
        issue_all(records, now)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(License)) == 1
    assert session.scalar(select(func.count()).select_from(LicenseHolder)) == 2


@pytest.mark.parametrize("variables", [None, 999], ids=["sqlite-limit", "999-variables"])
def test_every_row_reaches_sqlite_through_multi_row_inserts(
    session: Session,
    issue_all: IssueAll,
    cipher: FieldCipher,
    make_record: MakeRecord,
    now: dt.datetime,
    variables: int | None,
) -> None:
    # SQLite takes licenses and holders many rows per INSERT, as many as its bound-variable
    # limit allows: with 999 (SQLite before 3.32), 52 licenses of 19 columns a statement.
    # 300 records: more than one signing batch, and no multiple of the rows per statement.
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("multi-row INSERTs are how issue() writes to SQLite")
    if variables is not None:
        driver = session.connection().connection.driver_connection
        assert driver is not None
        driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variables)
    records = [make_record(serial) for serial in range(1, 301)]
    issue_all(records, now)
    stored = session.scalars(select(License).order_by(License.serial)).all()
    assert [license.record_key for license in stored] == [r.record_key for r in records]
    for license, record in zip(stored, records, strict=True):
        assert [h.holder_key for h in license.holders] == [h.holder_key for h in record.holders]
    assert session.scalar(select(func.count()).select_from(LicenseHolder)) == 2 * len(records)
    for license, record in ((stored[0], records[0]), (stored[-1], records[-1])):
        subject = credential_of(license, cipher)["credentialSubject"]
        assert subject["licenseNumber"] == record.license_no


class _WatchingSigner:
    """Signs with another signer; notes whether Python's cyclic garbage collector was on."""

    def __init__(self, signer: Ed25519Signer) -> None:
        self._signer = signer
        self.verification_method = signer.verification_method
        self.algorithm = signer.algorithm
        self.collector_on: set[bool] = set()

    def sign(self, data: bytes) -> bytes:
        self.collector_on.add(gc.isenabled())
        return self._signer.sign(data)


@pytest.mark.parametrize("enabled_before", [True, False])
def test_issue_pauses_the_garbage_collector_and_restores_it(
    issue_with: IssueWith,
    signer: Ed25519Signer,
    make_record: MakeRecord,
    now: dt.datetime,
    enabled_before: bool,
) -> None:
    watching = _WatchingSigner(signer)

    def run(records: list[LicenseRecord], **overrides: Any) -> None:
        issue_with(records, signer=watching, now=now, **overrides)

    was = gc.isenabled()
    try:
        if not enabled_before:
            gc.disable()
        run([make_record(serial) for serial in range(1, 2 + SIGN_BATCH)])
        assert watching.collector_on == {False}
        assert gc.isenabled() is enabled_before
        # Also when the call fails.
        with pytest.raises(UnknownLicenseTypeError):
            run([make_record(999)], type_codes={})
        assert gc.isenabled() is enabled_before
    finally:
        if was:
            gc.enable()
