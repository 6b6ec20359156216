"""Several issuers at once on PostgreSQL: status-list indexes from a sequence, never shared."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog_schemas.cipher import FieldCipher
from license_store.issuance import issue
from license_store.key import KeyRing
from license_store.model import STATUS_INDEX_SEQUENCE, License, metadata
from license_store.record import LicenseRecord
from license_store.signer import Ed25519Signer
from license_store.store import credential_of
from license_store.verification import verify_credential

ISSUER_DID = "did:web:onehub.gd.gov.cn"
NOW = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC)
ISSUER_CODES = {"dca": "11440000000000050C"}
BUSINESS_CODES = {"business_license": "11440000000000050C002"}
MakeRecord = Callable[..., LicenseRecord]


@pytest.fixture
def pg(postgres_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(postgres_url, pool_size=2, max_overflow=0)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def _issue(
    engine: sa.Engine,
    records: list[LicenseRecord],
    signer: Ed25519Signer,
    cipher: FieldCipher,
    type_codes: dict[str, str],
    barrier: threading.Barrier | None = None,
) -> None:
    with Session(engine) as session:
        if barrier is not None:
            barrier.wait(timeout=30)
        issue(
            session=session,
            records=records,
            signer=signer,
            cipher=cipher,
            issuer_did=ISSUER_DID,
            type_codes=type_codes,
            issuer_codes=ISSUER_CODES,
            now=NOW,
        )
        if barrier is not None:
            # Both transactions hold their rows uncommitted at the same time.
            barrier.wait(timeout=30)
        session.commit()


def _signer(engine: sa.Engine, kek: bytes) -> Ed25519Signer:
    with Session(engine) as session:
        signer = KeyRing(issuer_did=ISSUER_DID).signer(session=session, kek=kek, now=NOW)
        session.commit()
    return signer


def test_two_issuers_at_once_take_distinct_indexes(
    pg: sa.Engine, make_record: MakeRecord, cipher: FieldCipher, kek: bytes
) -> None:
    signer = _signer(pg, kek)
    marriages = [make_record(n) for n in range(1, 41)]
    businesses = [
        make_record(
            n,
            record_key=f"business_license:dca:{n}",
            license_type="business_license",
            license_no=f"B{n}",
        )
        for n in range(1, 41)
    ]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(records: list[LicenseRecord], codes: dict[str, str]) -> None:
        try:
            _issue(pg, records, signer, cipher, codes, barrier)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [
        threading.Thread(
            target=run, args=(marriages, {"marriage_certificate": "11440000000000050C001"})
        ),
        threading.Thread(target=run, args=(businesses, BUSINESS_CODES)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Session(pg) as session:
        licenses = list(session.scalars(sa.select(License)))
        indexes = [lic.status_index for lic in licenses]
        assert len(licenses) == 80
        assert len(set(indexes)) == 80
        keys = KeyRing(issuer_did=ISSUER_DID).key_set(session=session)
        for lic in licenses:
            credential = credential_of(lic, cipher)
            verify_credential(credential, keys=keys, now=NOW)
            entry = credential["credentialStatus"][0]
            assert int(entry["statusListIndex"]) == lic.status_index % 131072


def test_a_sequence_behind_the_store_catches_up(
    pg: sa.Engine, make_record: MakeRecord, cipher: FieldCipher, kek: bytes
) -> None:
    signer = _signer(pg, kek)
    codes = {"marriage_certificate": "11440000000000050C001"}
    _issue(pg, [make_record(n) for n in range(1, 6)], signer, cipher, codes)
    # As in a store issued into before the sequence existed: the sequence starts again at 0.
    with pg.begin() as conn:
        conn.execute(sa.text(f"DROP SEQUENCE {STATUS_INDEX_SEQUENCE.name}"))
    metadata.create_all(pg)
    _issue(pg, [make_record(n) for n in range(6, 11)], signer, cipher, codes)
    with Session(pg) as session:
        indexes = sorted(session.scalars(sa.select(License.status_index)))
    assert len(indexes) == len(set(indexes)) == 10
    assert indexes[:5] == [0, 1, 2, 3, 4]


def test_without_the_sequence_issuance_takes_the_highest_plus_one(
    pg: sa.Engine, make_record: MakeRecord, cipher: FieldCipher, kek: bytes
) -> None:
    signer = _signer(pg, kek)
    with pg.begin() as conn:
        conn.execute(sa.text(f"DROP SEQUENCE {STATUS_INDEX_SEQUENCE.name}"))
    codes = {"marriage_certificate": "11440000000000050C001"}
    _issue(pg, [make_record(n) for n in range(1, 4)], signer, cipher, codes)
    _issue(pg, [make_record(n) for n in range(4, 6)], signer, cipher, codes)
    with Session(pg) as session:
        assert sorted(session.scalars(sa.select(License.status_index))) == [0, 1, 2, 3, 4]


def test_indexes_drawn_with_gaps_are_used_as_drawn(
    pg: sa.Engine, make_record: MakeRecord, cipher: FieldCipher, kek: bytes
) -> None:
    # Another issuer drawing in between leaves gaps in one call's numbers; a sequence that
    # steps by 3 makes every draw look like that (the array path, not the consecutive range).
    signer = _signer(pg, kek)
    with pg.begin() as conn:
        conn.execute(sa.text(f"ALTER SEQUENCE {STATUS_INDEX_SEQUENCE.name} INCREMENT BY 3"))
    codes = {"marriage_certificate": "11440000000000050C001"}
    _issue(pg, [make_record(n) for n in range(1, 6)], signer, cipher, codes)
    with Session(pg) as session:
        licenses = sorted(session.scalars(sa.select(License)), key=lambda lic: lic.serial)
        assert [lic.status_index for lic in licenses] == [0, 3, 6, 9, 12]
        keys = KeyRing(issuer_did=ISSUER_DID).key_set(session=session)
        for lic in licenses:
            credential = credential_of(lic, cipher)
            verify_credential(credential, keys=keys, now=NOW)
            assert int(credential["credentialStatus"][0]["statusListIndex"]) == lic.status_index
