"""Fixtures of the license store tests: a real database per backend, cipher, keys, records."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from stdnum.iso7064 import mod_11_2

from catalog_schemas.cipher import FieldCipher, generate_key
from catalog_schemas.holder import holder_key
from license_store.key import KeyRing
from license_store.model import metadata
from license_store.record import HolderRef, LicenseRecord
from license_store.signer import Ed25519Signer

ISSUER_DID = "did:web:onehub.gd.gov.cn"
NOW = dt.datetime(2026, 11, 27, 2, 0, 0, tzinfo=dt.UTC)
HUB_KEY = b"h" * 32
DCA_CREDIT_CODE = "11440000000000050C"
TYPE_CODES = {"marriage_certificate": DCA_CREDIT_CODE + "001"}
ISSUER_CODES = {"dca": DCA_CREDIT_CODE}


def resident_id(body17: str) -> str:
    """A structurally valid 18-digit resident ID (GB 11643 MOD 11-2 check character)."""
    check = mod_11_2.calc_check_digit(body17)
    return body17 + check


@pytest.fixture
def issuer_did() -> str:
    return ISSUER_DID


@pytest.fixture
def now() -> dt.datetime:
    return NOW


@pytest.fixture
def type_codes() -> dict[str, str]:
    return dict(TYPE_CODES)


@pytest.fixture
def issuer_codes() -> dict[str, str]:
    return dict(ISSUER_CODES)


@pytest.fixture
def engine(hub_db_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(hub_db_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: sa.Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


@pytest.fixture
def cipher() -> FieldCipher:
    return FieldCipher({"k1": generate_key()}, "k1")


@pytest.fixture
def kek() -> bytes:
    return generate_key()


@pytest.fixture
def keyring() -> KeyRing:
    return KeyRing(issuer_did=ISSUER_DID)


@pytest.fixture
def signer(session: Session, keyring: KeyRing, kek: bytes) -> Ed25519Signer:
    signer = keyring.signer(session=session, kek=kek, now=NOW)
    session.commit()
    return signer


MakeRecord = Callable[..., LicenseRecord]


@pytest.fixture
def make_record() -> MakeRecord:
    """Return a builder of marriage-certificate records; keyword arguments override fields."""

    def build(serial: int = 1, **overrides: Any) -> LicenseRecord:
        id_a = resident_id(f"44010619850101{serial:03d}")
        id_b = resident_id(f"44010619870202{serial:03d}")
        fields = {
            "certificate_no": f"J440106-2016-{serial:06d}",
            "registration_date": "2016-05-20",
            "registration_office": "广州市越秀区民政局",
        }
        values: dict[str, Any] = {
            "record_key": f"marriage_certificate:dca:J440106-2016-{serial:06d}",
            "license_type": "marriage_certificate",
            "type_name_zh": "结婚证",
            "type_name_en": "Marriage Certificate",
            "issuer_department": "dca",
            "issuer_name_zh": "广东省民政厅",
            "issuer_name_en": "Department of Civil Affairs of Guangdong Province",
            "license_no": fields["certificate_no"],
            "holders": (
                HolderRef(
                    "party_a",
                    "natural_person",
                    holder_key(HUB_KEY, "natural_person", id_a),
                    id_a,
                    "张三",
                ),
                HolderRef(
                    "party_b",
                    "natural_person",
                    holder_key(HUB_KEY, "natural_person", id_b),
                    id_b,
                    "李四",
                ),
            ),
            "fields": fields,
            "valid_from": dt.date(2016, 5, 20),
            "valid_until": None,
            "source": "dca_marriage",
            "batch_id": "batch-1",
            "as_of": dt.datetime(2026, 11, 26, 16, 0, tzinfo=dt.UTC),
            "row_hash": hashlib.sha256(repr(sorted(fields.items())).encode()).hexdigest(),
        }
        values.update(overrides)
        return LicenseRecord(**values)

    return build
