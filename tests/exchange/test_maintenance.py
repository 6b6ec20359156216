"""The maintenance steps (expiry sweep, status lists) and the status-list API, on a real hub."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from test_api_world import NOW, PERSON, issue_records, make_hub, record_for

from exchange.api.app import ApiConfig, create_app
from exchange.hub import Hub
from exchange.maintenance import publish_status_lists, sweep_expired
from license_store import bitstring
from license_store.error import VerificationError
from license_store.key import KeyRing
from license_store.status import suspend
from license_store.status_list import StatusLists, verify_list_credential
from license_store.store import credential_of, get_license
from license_store.verification import verify_credential
from onehub.database import change_license_status

# 2026-11-27 10:00 in Beijing.
ENDED = dt.date(2026, 11, 26)
ENDS_TODAY = dt.date(2026, 11, 27)


@pytest.fixture
def hub(hub_db_url: str) -> Iterator[Hub]:
    built = make_hub(hub_db_url)
    yield built
    built.engine.dispose()


def _degrees(hub: Hub, endings: list[dt.date | None]) -> list[str]:
    degree = hub.catalog.license_type("degree_certificate")
    records = [
        record_for(
            hub.catalog,
            degree,
            [(degree.holders[0].role, "natural_person", PERSON)],
            number=f"D-{n}",
            valid_until=until,
        )
        for n, until in enumerate(endings)
    ]
    issued = issue_records(hub, records)
    return [issued[r.record_key] for r in records]


def _status(hub: Hub, license_id: str) -> str:
    with hub.sessions() as session:
        return get_license(session=session, license_id=license_id).status


def _bits(hub: Hub, purpose: str) -> list[int]:
    with TestClient(create_app(hub, ApiConfig())) as client:
        body = client.get(f"/v1/status-lists/{purpose}/0").json()
    return bitstring.set_indices(bitstring.decode(body["credentialSubject"]["encodedList"]))


def _index(hub: Hub, license_id: str) -> int:
    with hub.sessions() as session:
        return get_license(session=session, license_id=license_id).status_index


def test_sweep_expires_past_licenses_and_republishes(hub: Hub) -> None:
    ended, today, forever, suspended = _degrees(hub, [ENDED, ENDS_TODAY, None, ENDED])
    with hub.sessions.begin() as session:
        suspend(session=session, license_id=suspended, reason="r", actor="a", now=NOW)
    publish_status_lists(hub)
    assert _bits(hub, "suspension") == [_index(hub, suspended)]

    report = sweep_expired(hub, now=NOW)
    assert report.expired == 2
    summary = report.as_dict()
    assert summary == json.loads(json.dumps(summary))  # fit for XCom
    assert summary["status_lists"] == {"revocation/0": 0, "suspension/0": 0}
    assert [_status(hub, i) for i in (ended, today, forever, suspended)] == [
        "expired",
        "valid",
        "valid",
        "expired",
    ]
    # An expired suspension leaves the suspension list (expiry is in the credential itself).
    assert _bits(hub, "suspension") == []
    assert sweep_expired(hub, now=NOW).expired == 0
    next_day = dataclasses.replace(hub, now=lambda: NOW + dt.timedelta(days=1))
    assert sweep_expired(next_day).expired == 1
    assert _status(hub, today) == "expired"


def test_status_lists_are_served_signed_and_cacheable(hub: Hub) -> None:
    first, second = _degrees(hub, [None, None])
    with TestClient(create_app(hub, ApiConfig())) as client:
        missing = client.get("/v1/status-lists/revocation/0")
        assert missing.status_code == 404
        assert missing.json()["code"] == "status_list_not_found"
        published = publish_status_lists(hub)
        assert published.lists == {"revocation/0": 0, "suspension/0": 0}

        response = client.get("/v1/status-lists/revocation/0")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/vc"
        etag = response.headers["etag"]
        assert (
            client.get("/v1/status-lists/revocation/0", headers={"If-None-Match": etag}).status_code
            == 304
        )
        with hub.sessions() as session:
            keys = KeyRing(issuer_did=hub.issuer_did).key_set(session=session)
            credential = credential_of(get_license(session=session, license_id=first), hub.cipher)
        listed = verify_list_credential(response.json(), keys=keys, now=NOW)
        assert listed.url == "https://onehub.test/v1/status-lists/revocation/0"
        assert credential["credentialStatus"][0]["statusListCredential"] == listed.url

        change_license_status(
            hub, license_id=first, action="revoke", reason="法院判决撤销", actor="ops"
        )
        fresh = client.get("/v1/status-lists/revocation/0", headers={"If-None-Match": etag})
        assert fresh.status_code == 200 and fresh.headers["etag"] != etag
        lists = StatusLists.from_credentials([fresh.json()], keys=keys, now=NOW)
        with pytest.raises(VerificationError) as caught:
            verify_credential(credential, keys=keys, now=NOW, status_lists=lists)
        assert caught.value.code == "revoked"
        assert bitstring.set_indices(
            bitstring.decode(fresh.json()["credentialSubject"]["encodedList"])
        ) == [_index(hub, first)]
        assert _index(hub, second) != _index(hub, first)

        assert client.get("/v1/status-lists/refresh/0").status_code == 422
        assert client.get("/v1/status-lists/revocation/-1").status_code == 422
        assert client.get("/v1/status-lists/revocation/7").status_code == 404
