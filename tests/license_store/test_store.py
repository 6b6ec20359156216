"""Issuance, versions, cancellation, holder lookups and cursors on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog_schemas.cipher import FieldCipher
from catalog_schemas.errors import RowRejectedError, ValidationFailedError
from license_store.error import (
    CursorMovedBackError,
    LicenseNotFoundError,
    UnknownLicenseTypeError,
    VerificationError,
)
from license_store.identifier import parse_identifier
from license_store.issuance import IssueResult, cancel, issue
from license_store.key import KeyRing
from license_store.model import License, metadata
from license_store.record import LicenseRecord
from license_store.signer import Ed25519Signer
from license_store.store import (
    credential_of,
    current_license,
    get_cursor,
    get_license,
    licenses_for_holder,
    set_cursor,
)
from license_store.verification import verify_credential

ISSUER_DID = "did:web:onehub.gd.gov.cn"
NOW = dt.datetime(2026, 11, 27, 2, 0, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(hours=1)
DCA = "11440000000000050C"
TYPE_CODES = {"marriage_certificate": DCA + "001"}
ISSUER_CODES = {"dca": DCA}
MakeRecord = Callable[..., LicenseRecord]


@pytest.fixture(autouse=True)
def _same_hub(issuer_did: str, now: dt.datetime, type_codes: dict[str, str]) -> None:
    # The shared fixtures (keyring, signer) must describe the hub these tests assume.
    assert (issuer_did, now, type_codes) == (ISSUER_DID, NOW, TYPE_CODES)


def _issue(
    session: Session,
    records: list[LicenseRecord],
    signer: Ed25519Signer,
    cipher: FieldCipher,
    now: dt.datetime = NOW,
) -> IssueResult:
    return issue(
        session=session,
        records=records,
        signer=signer,
        cipher=cipher,
        issuer_did=ISSUER_DID,
        type_codes=TYPE_CODES,
        issuer_codes=ISSUER_CODES,
        now=now,
    )


def _count(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(License)) or 0


def test_issue_signs_stores_and_indexes(
    session: Session,
    signer: Ed25519Signer,
    cipher: FieldCipher,
    keyring: KeyRing,
    make_record: MakeRecord,
) -> None:
    records = [make_record(n) for n in (1, 2, 3)]
    result = _issue(session, records, signer, cipher)
    session.commit()
    assert [i.version for i in result.issued] == [1, 1, 1]
    assert result.unchanged == () and result.rejected == () and result.superseded == ()
    ids = [parse_identifier(i.license_id) for i in result.issued]
    assert {i.serial for i in ids} == {1, 2, 3}
    assert {i.type_code for i in ids} == {TYPE_CODES["marriage_certificate"]}

    stored = get_license(session=session, license_id=result.issued[0].license_id)
    assert (stored.status, stored.version, stored.record_key) == ("valid", 1, records[0].record_key)
    assert stored.issued_at == NOW and stored.as_of == records[0].as_of
    assert stored.key_id == signer.verification_method.split("#")[1]
    assert [(h.role, h.holder_key) for h in stored.holders] == [
        (h.role, h.holder_key) for h in records[0].holders
    ]
    assert stored.holders[0].id_masked == records[0].holders[0].id_masked
    assert "*" in stored.holders[0].id_masked

    credential = credential_of(stored, cipher)
    assert credential["id"] == "urn:oid:" + stored.license_id
    assert credential["type"] == ["VerifiableCredential", "ELicense", "MarriageCertificate"]
    assert credential["issuer"]["id"] == ISSUER_DID
    assert credential["validFrom"] == "2016-05-19T16:00:00Z"  # 2016-05-20 00:00 in Beijing
    assert "validUntil" not in credential
    subject = credential["credentialSubject"]
    assert subject["licenseNumber"] == records[0].license_no
    assert subject["holders"][0]["idNumber"] == records[0].holders[0].id_number
    assert subject["registration_office"] == "广州市越秀区民政局"
    verified = verify_credential(
        credential, keys=keyring.key_set(session=session), now=LATER, session=session
    )
    assert verified.license_id == stored.license_id and verified.status == "valid"


def test_reissue_with_same_row_hash_is_a_no_op(
    session: Session, signer: Ed25519Signer, cipher: FieldCipher, make_record: MakeRecord
) -> None:
    records = [make_record(1), make_record(2)]
    _issue(session, records, signer, cipher)
    session.commit()
    before = session.execute(sa.select(License.license_id, License.credential_enc)).all()
    again = _issue(session, records, signer, cipher, now=LATER)
    session.commit()
    assert again.issued == () and again.unchanged == tuple(r.record_key for r in records)
    assert session.execute(sa.select(License.license_id, License.credential_enc)).all() == before


def test_changed_row_hash_issues_version_2_and_supersedes_version_1(
    session: Session,
    signer: Ed25519Signer,
    cipher: FieldCipher,
    keyring: KeyRing,
    make_record: MakeRecord,
) -> None:
    first = make_record(7)
    v1_id = _issue(session, [first, make_record(8)], signer, cipher).issued[0].license_id
    session.commit()
    v1_token = get_license(session=session, license_id=v1_id).credential_enc
    changed = dataclasses.replace(
        first,
        fields={**first.fields, "registration_office": "广州市天河区民政局"},
        row_hash="changed",
        batch_id="batch-2",
    )
    result = _issue(session, [changed], signer, cipher, now=LATER)
    session.commit()
    (new,) = result.issued
    assert (new.version, new.superseded) == (2, v1_id)
    old_parts, new_parts = parse_identifier(v1_id), parse_identifier(new.license_id)
    assert (new_parts.serial, new_parts.version) == (old_parts.serial, 2)
    old = get_license(session=session, license_id=v1_id)
    assert old.status == "superseded" and old.status_changed_at == LATER
    assert old.credential_enc == v1_token  # superseded, never edited
    latest = current_license(session=session, record_key=first.record_key)
    assert latest is not None and latest.license_id == new.license_id
    keys = keyring.key_set(session=session)
    credential = credential_of(get_license(session=session, license_id=new.license_id), cipher)
    assert credential["credentialSubject"]["registration_office"] == "广州市天河区民政局"
    verify_credential(credential, keys=keys, now=LATER, session=session)
    with pytest.raises(VerificationError) as caught:
        verify_credential(credential_of(old, cipher), keys=keys, now=LATER, session=session)
    assert caught.value.code == "superseded"
    # Without the store, the old version's signature is still sound: status is the store's job.
    verify_credential(credential_of(old, cipher), keys=keys, now=LATER)


def test_two_changes_of_one_record_in_one_call(
    session: Session, signer: Ed25519Signer, cipher: FieldCipher, make_record: MakeRecord
) -> None:
    first = make_record(3)
    second = dataclasses.replace(first, row_hash="second")
    result = _issue(session, [first, second], signer, cipher)
    session.commit()
    assert [(i.version, i.superseded) for i in result.issued] == [
        (1, None),
        (2, result.issued[0].license_id),
    ]
    statuses = dict(session.execute(sa.select(License.version, License.status)).all())
    assert statuses == {1: "superseded", 2: "valid"}


def test_cancel_marks_the_current_license(
    session: Session,
    signer: Ed25519Signer,
    cipher: FieldCipher,
    keyring: KeyRing,
    make_record: MakeRecord,
) -> None:
    records = [make_record(1), make_record(2)]
    issued = _issue(session, records, signer, cipher).issued
    session.commit()
    result = cancel(
        session=session, record_keys=[records[0].record_key, "no:such:record"], now=LATER
    )
    session.commit()
    assert result.cancelled == (issued[0].license_id,)
    assert result.not_cancellable == ("no:such:record",)
    cancelled = get_license(session=session, license_id=issued[0].license_id)
    assert cancelled.status == "cancelled" and cancelled.status_changed_at == LATER
    assert get_license(session=session, license_id=issued[1].license_id).status == "valid"
    again = cancel(session=session, record_keys=[records[0].record_key], now=LATER)
    assert again.cancelled == () and again.not_cancellable == (records[0].record_key,)
    with pytest.raises(VerificationError) as caught:
        verify_credential(
            credential_of(cancelled, cipher),
            keys=keyring.key_set(session=session),
            now=LATER,
            session=session,
        )
    assert caught.value.code == "cancelled"
    # The same data coming back after a cancellation is a new version, not a resurrection.
    back = _issue(session, [records[0]], signer, cipher, now=LATER)
    assert [(i.version, i.superseded) for i in back.issued] == [(2, None)]
    assert get_license(session=session, license_id=issued[0].license_id).status == "cancelled"


def test_holder_lookup_uses_holder_key(
    session: Session, signer: Ed25519Signer, cipher: FieldCipher, make_record: MakeRecord
) -> None:
    first, other = make_record(1), make_record(2)
    _issue(session, [first, other], signer, cipher)
    _issue(session, [dataclasses.replace(first, row_hash="v2")], signer, cipher, now=LATER)
    session.commit()
    holder = first.holders[1].holder_key
    found = licenses_for_holder(session=session, holder_key=holder)
    assert [(f.record_key, f.version) for f in found] == [(first.record_key, 2)]
    history = licenses_for_holder(session=session, holder_key=holder, include_superseded=True)
    assert [f.version for f in history] == [1, 2]
    assert licenses_for_holder(session=session, holder_key="0" * 64) == []
    assert any(
        ix.columns.keys() == ["holder_key"] for ix in metadata.tables["license_holders"].indexes
    )


def test_no_plaintext_id_number_or_name_anywhere_in_the_database(
    session: Session,
    engine: sa.Engine,
    signer: Ed25519Signer,
    cipher: FieldCipher,
    kek: bytes,
    keyring: KeyRing,
    make_record: MakeRecord,
) -> None:
    records = [make_record(n) for n in (1, 2)]
    _issue(session, records, signer, cipher)
    cancel(session=session, record_keys=[records[0].record_key], now=LATER)
    set_cursor(session=session, name="lake.marriage_certificate", version=3, now=NOW)
    session.commit()
    secrets = [h.id_number for r in records for h in r.holders] + [
        h.name for r in records for h in r.holders if h.name
    ]
    dump: list[str] = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                for value in row:
                    dump.append(value.hex() if isinstance(value, bytes) else str(value))
    text = "\n".join(dump)
    assert records[0].record_key in text  # the dump really holds the rows
    assert _count(session) == 2
    for secret in secrets:
        assert secret not in text
        assert secret.encode().hex() not in text
    if engine.dialect.name == "sqlite":
        raw = open(engine.url.database or "", "rb").read()  # noqa: SIM115
        for secret in secrets:
            assert secret.encode() not in raw


def test_cursor_roundtrip_and_same_transaction_as_licenses(
    session: Session, signer: Ed25519Signer, cipher: FieldCipher, make_record: MakeRecord
) -> None:
    name = "lake.marriage_certificate"
    assert get_cursor(session=session, name=name) is None
    set_cursor(session=session, name=name, version=5, now=NOW)
    session.commit()
    assert get_cursor(session=session, name=name) == 5
    set_cursor(session=session, name=name, version=5, now=LATER)
    with pytest.raises(CursorMovedBackError):
        set_cursor(session=session, name=name, version=4, now=LATER)
    # Licenses and the cursor move together or not at all.
    _issue(session, [make_record(1)], signer, cipher)
    set_cursor(session=session, name=name, version=9, now=LATER)
    session.rollback()
    assert get_cursor(session=session, name=name) == 5 and _count(session) == 0
    _issue(session, [make_record(1)], signer, cipher)
    set_cursor(session=session, name=name, version=9, now=LATER)
    session.commit()
    assert get_cursor(session=session, name=name) == 9 and _count(session) == 1


def test_bad_inputs(
    session: Session, signer: Ed25519Signer, cipher: FieldCipher, make_record: MakeRecord
) -> None:
    with pytest.raises(LicenseNotFoundError):
        get_license(session=session, license_id="1.2.156.3005.2.x")
    with pytest.raises(UnknownLicenseTypeError):
        issue(
            session=session,
            records=[make_record(1)],
            signer=signer,
            cipher=cipher,
            issuer_did=ISSUER_DID,
            type_codes={},
            issuer_codes=ISSUER_CODES,
            now=NOW,
        )
    with pytest.raises(UnknownLicenseTypeError):
        issue(
            session=session,
            records=[make_record(1)],
            signer=signer,
            cipher=cipher,
            issuer_did=ISSUER_DID,
            type_codes={"marriage_certificate": "bad"},
            issuer_codes=ISSUER_CODES,
            now=NOW,
        )
    with pytest.raises(Exception, match="issuer_did"):
        issue(
            session=session,
            records=[make_record(1)],
            signer=signer,
            cipher=cipher,
            issuer_did="did:web:other.example",
            type_codes=TYPE_CODES,
            issuer_codes=ISSUER_CODES,
            now=NOW,
        )
    with pytest.raises(ValidationFailedError):
        _issue(session, [make_record(1)], signer, cipher, now=dt.datetime(2026, 11, 27))
    assert _issue(session, [], signer, cipher) == IssueResult((), (), ())
    first = make_record(1)
    _issue(session, [first], signer, cipher)
    moved = dataclasses.replace(first, issuer_department="hrss", row_hash="x")
    result = issue(
        session=session,
        records=[moved],
        signer=signer,
        cipher=cipher,
        issuer_did=ISSUER_DID,
        type_codes=TYPE_CODES,
        issuer_codes={**ISSUER_CODES, "hrss": "11440000000000060D"},
        now=NOW,
    )
    assert [(r.record_key, r.reason) for r in result.rejected] == [
        (first.record_key, "license_record_type_changed")
    ]
    huge = make_record(2, fields={f"f{i}": "字" * 4000 for i in range(10)})
    result = _issue(session, [huge], signer, cipher)
    assert [r.reason for r in result.rejected] == ["license_record_too_large"]
    with pytest.raises(RowRejectedError):
        make_record(3, fields={"holders": "x"})
