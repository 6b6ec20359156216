"""Any single-field change of a license or of an annotated copy is rejected (hypothesis)."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from license_store import ed25519
from license_store.annotation import annotate, verify_annotated
from license_store.credential import build_credential
from license_store.error import VerificationError
from license_store.key_set import KeySet
from license_store.proof import create_proof
from license_store.record import LicenseRecord
from license_store.signer import Ed25519Signer
from license_store.status_list import status_entries
from license_store.verification import verify_credential

HUB = "did:web:onehub.gd.gov.cn"
LICENSE_ID = "1.2.156.3005.2.11440000000000050C001.11440000000000050C.0000000001.001.K"
SIGNED_AT = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC)
CHECKED_AT = SIGNED_AT + dt.timedelta(hours=1)
PRIVATE = ed25519.private_key_from_seed(bytes(range(32)))
SIGNER = Ed25519Signer(PRIVATE, verification_method=f"{HUB}#k1")
KEYS = KeySet.from_keys(HUB, {"k1": PRIVATE.public_key()})
ITEM = "talent_household_registration"


def _license(record: LicenseRecord) -> dict[str, Any]:
    unsigned = build_credential(
        record,
        license_id=LICENSE_ID,
        issuer_did=HUB,
        credential_status=status_entries("https://onehub.gd.gov.cn", 7),
    )
    return create_proof(unsigned, signer=SIGNER, created=SIGNED_AT)


def _copy(record: LicenseRecord) -> dict[str, Any]:
    return annotate(
        credential=_license(record),
        purpose="办理人才引进落户",
        service_item=ITEM,
        consumer="tianhe-counter-3",
        expires=SIGNED_AT + dt.timedelta(days=7),
        signer=SIGNER,
        now=SIGNED_AT,
        service_item_name="人才引进落户",
        copy_id="urn:uuid:00000000-0000-4000-8000-000000000001",
    )


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every member and element, inner nodes included."""
    if path:
        yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*path, index))


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.text(max_size=20),
    st.lists(st.integers(0, 9), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(0, 9), max_size=2),
)


def _tamper(original: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    paths = list(_paths(original))
    path = data.draw(st.sampled_from(paths), label="path")
    tampered = copy.deepcopy(original)
    parent = tampered
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    how = data.draw(st.sampled_from(["replace", "delete", "add"]), label="how")
    if how == "delete":
        del parent[last]
    elif how == "add" and isinstance(parent, dict):
        name = data.draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in parent))
        parent[name] = data.draw(_values)
    else:
        value = data.draw(_values.filter(lambda v: v != parent[last]), label="value")
        parent[last] = value
    assert tampered != original
    return tampered


# make_record only builds a value; sharing it across examples is safe.
_FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@settings(max_examples=300, deadline=None, suppress_health_check=_FIXTURE_OK)
@given(data=st.data())
def test_any_single_change_of_a_license_is_rejected(
    make_record: Callable[..., LicenseRecord], data: st.DataObject
) -> None:
    original = _license(make_record(1, valid_until=dt.date(2030, 1, 1)))
    verify_credential(original, keys=KEYS, now=CHECKED_AT)
    tampered = _tamper(original, data)
    with pytest.raises(VerificationError):
        verify_credential(tampered, keys=KEYS, now=CHECKED_AT)


@settings(max_examples=300, deadline=None, suppress_health_check=_FIXTURE_OK)
@given(data=st.data())
def test_any_single_change_of_an_annotated_copy_is_rejected(
    make_record: Callable[..., LicenseRecord], data: st.DataObject
) -> None:
    original = _copy(make_record(1, valid_until=dt.date(2030, 1, 1)))
    verify_annotated(original, keys=KEYS, now=CHECKED_AT, service_item=ITEM)
    tampered = _tamper(original, data)
    with pytest.raises(VerificationError):
        verify_annotated(tampered, keys=KEYS, now=CHECKED_AT, service_item=ITEM)
