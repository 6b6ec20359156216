"""The /v1 calls the pages added (a holder's consents and revoking one at the holder's request;
departments, run trends and exchange use for supervisors) and the QR payload format, against
the served deployment."""

from __future__ import annotations

import datetime as dt
import json
import zlib
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from deployment import T0, Served

from exchange.model import AuditEntry
from exchange.web.qr import QrPayloadError, b45decode, b45encode, decode_copy, encode_copy


def call(served: Served, key: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    headers.update(kwargs.pop("headers", {}))
    return httpx.request(method, served.base_url + path, headers=headers, timeout=30, **kwargs)


def audit_rows(served: Served, request_id: str) -> list[AuditEntry]:
    with served.hub.sessions() as session:
        return list(
            session.scalars(sa.select(AuditEntry).where(AuditEntry.request_id == request_id))
        )


@pytest.mark.parametrize(
    ("raw", "text"),
    # RFC 9285 section 4.3 and 4.4 examples.
    [
        (b"AB", "BB8"),
        (b"Hello!!", "%69 VD92EX0"),
        (b"base-45", "UJCLQE7W581"),
        (b"ietf!", "QED8WEX0"),
    ],
)
def test_base45_matches_rfc_9285(raw: bytes, text: str) -> None:
    assert b45encode(raw) == text
    assert b45decode(text) == raw


@pytest.mark.parametrize("bad", ["GGW", "ab", "A", "OH1:::"])
def test_a_bad_base45_or_payload_is_a_typed_error(bad: str) -> None:
    with pytest.raises(QrPayloadError):
        b45decode(bad) if not bad.startswith("OH1:") else decode_copy(bad)


def test_an_oh1_payload_round_trips_and_is_bounded() -> None:
    credential = {"type": ["VerifiableCredential"], "name": "结婚证", "n": list(range(50))}
    payload = encode_copy(credential)
    assert payload.startswith("OH1:") and set(payload[4:]) <= set(
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
    )
    assert decode_copy(payload) == credential
    with pytest.raises(QrPayloadError, match="OH1"):
        decode_copy(payload[4:])
    bomb = "OH1:" + b45encode(zlib.compress(b"[" + b"0," * 200_000 + b"0]"))
    with pytest.raises(QrPayloadError, match="expands"):
        decode_copy(bomb)
    with pytest.raises(QrPayloadError, match="object"):
        decode_copy("OH1:" + b45encode(zlib.compress(b"[1]")))


def test_a_holder_sees_their_consents_and_revokes_one_through_any_intake_system(
    served: Served,
) -> None:
    hall, counter, other = served.keys["hall"], served.keys["dhurd"], served.keys["dps"]
    person = served.manifest.demo_holders.people[1].resident_id
    stranger = served.manifest.demo_holders.people[2].resident_id
    purpose = "购房提取住房公积金（API 测试）"
    given = call(
        served,
        counter,
        "POST",
        "/v1/consents",
        json={
            "id_number": person,
            "purpose": purpose,
            "license_types": ["marriage_certificate"],
            "expires_at": (T0 + dt.timedelta(days=3)).isoformat(),
        },
    )
    assert given.status_code == 201, given.text
    consent_id = given.json()["consent_id"]

    def search(key: str, rid: str, *, include_inactive: bool = False, who: str = person) -> Any:
        body = {
            "id_number": who,
            "purpose": "持证人查询本人授权",
            "include_inactive": include_inactive,
        }
        return call(
            served, key, "POST", "/v1/holder-consents", json=body, headers={"X-Request-ID": rid}
        )

    found = search(hall, "search-1")
    assert found.status_code == 200, found.text
    assert found.json()["id_masked"] == person[:6] + "********" + person[-4:]
    assert consent_id in [c["consent_id"] for c in found.json()["consents"]]
    assert consent_id not in [
        c["consent_id"] for c in search(hall, "s-2", who=stranger).json()["consents"]
    ]
    (row,) = audit_rows(served, "search-1")
    assert (row.action, row.result) == ("consent_list", "ok") and row.holder_key
    assert consent_id in row.detail["consents"] and person not in json.dumps(row.detail)
    lax = {"id_number": person, "purpose": "持证人查询本人授权", "include_inactive": 0}
    assert call(served, hall, "POST", "/v1/holder-consents", json=lax).status_code == 422
    # A department's back office does not serve holders: no history scope.
    refused = search(served.keys["supervisor"], "search-3")
    assert refused.status_code == 403 and refused.json()["code"] == "scope_missing"

    def revoke(key: str, who: str, rid: str) -> httpx.Response:
        return call(
            served,
            key,
            "POST",
            f"/v1/consents/{consent_id}/revocations",
            json={"id_number": who, "purpose": "持证人撤回授权"},
            headers={"X-Request-ID": rid},
        )

    # Named with another holder's number, the consent does not exist.
    wrong = revoke(other, stranger, "revoke-0")
    assert wrong.status_code == 404 and wrong.json()["code"] == "consent_not_found"
    assert stranger not in wrong.text
    # The plain DELETE is only for the recorder or the consumer it is for; the holder's own
    # revocation works through any intake system (here another department's counter).
    assert call(served, other, "DELETE", f"/v1/consents/{consent_id}").status_code == 404
    done = revoke(other, person, "revoke-1")
    assert done.status_code == 200, done.text
    assert done.json()["revoked_at"] is not None
    (row,) = audit_rows(served, "revoke-1")
    assert (row.action, row.result, row.consumer) == ("consent_revoke", "ok", "tianhe-counter-dps")
    assert row.detail == {"consent_id": consent_id, "at_holder_request": True}
    again = revoke(hall, person, "revoke-2")
    assert again.status_code == 409 and again.json()["code"] == "consent_revoked"
    assert consent_id not in [c["consent_id"] for c in search(hall, "s-4").json()["consents"]]
    listed = search(hall, "s-5", include_inactive=True).json()["consents"]
    assert [c["revoked_at"] is not None for c in listed if c["consent_id"] == consent_id] == [True]


def test_exchange_use_counts_checks_and_the_certificates_they_covered(served: Served) -> None:
    key = served.keys["supervisor"]
    before = call(served, key, "GET", "/v1/supervision/usage?days=7").json()
    item, counter = "talent_household_registration", served.keys["dps"]
    covered = 0
    for person in served.manifest.demo_holders.people:
        answer = call(
            served,
            counter,
            "POST",
            "/v1/material-checks",
            json={"id_number": person.resident_id, "purpose": "统计测试", "service_item": item},
        ).json()
        covered += sum(1 for m in answer["materials"] if m["status"] == "covered")
    assert covered > 0
    after = call(served, key, "GET", "/v1/supervision/usage?days=7").json()
    assert (
        after["since"]
        == (
            T0.astimezone(dt.timezone(dt.timedelta(hours=8))).date() - dt.timedelta(days=6)
        ).isoformat()
    )

    def saving(use: Any) -> Any:
        return {s["service_item"]: s for s in use["savings"]}[item]

    people = len(served.manifest.demo_holders.people)
    assert saving(after)["checks"] - saving(before)["checks"] == people
    assert (
        saving(after)["certificates_not_asked"] - saving(before)["certificates_not_asked"]
        == covered
    )

    def today_dps(use: Any) -> int:
        today = T0.astimezone(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
        return sum(
            d["material_checks"]
            for d in use["daily"]
            if (d["day"], d["department"]) == (today, "dps")
        )

    assert today_dps(after) - today_dps(before) == people
    assert call(served, None, "GET", "/v1/supervision/usage").status_code == 401


def test_departments_by_batch_and_run_trends(served: Served) -> None:
    key = served.keys["supervisor"]
    catalog = served.hub.catalog
    departments = call(served, key, "GET", "/v1/supervision/departments").json()
    assert [d["code"] for d in departments] == [
        d.code for d in sorted(catalog.departments.values(), key=lambda d: (d.batch, d.code))
    ]
    with_sources = {s.department for s in catalog.sources.values()}
    assert {d["code"] for d in departments if d["loaded"]} == with_sources  # every source loaded
    trends = {
        t["source"]: t["runs"] for t in call(served, key, "GET", "/v1/supervision/trends").json()
    }
    assert set(trends) == set(catalog.sources)
    for name, runs in trends.items():
        assert runs, name
        assert [r["run_id"] for r in runs] == sorted(r["run_id"] for r in runs)  # oldest first
        for r in runs:
            assert r["rows_in"] == r["rows_loaded"] + r["rows_quarantined"]
            assert r["quarantine_rate"] == (
                r["rows_quarantined"] / r["rows_in"] if r["rows_in"] else None
            )
    assert len(trends["dca_marriage"]) == 2  # the first load and the one with changed rows
    assert (
        call(served, key, "GET", "/v1/supervision/trends?last=1").json()[0]["runs"].__len__() == 1
    )
    assert call(served, None, "GET", "/v1/supervision/departments").status_code == 401
