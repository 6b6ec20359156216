"""The exchange API through HTTP (FastAPI's TestClient over the real app and a real database)."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from test_api_world import (
    COMPANY,
    NOW,
    PERSON,
    SPOUSE,
    STRANGER,
    World,
    add_consumer,
    auth,
    resident_id,
    world,
)
from typer.testing import CliRunner

from exchange.api.app import ApiConfig
from exchange.audit import verify_chain
from exchange.model import AuditEntry
from exchange.reader import PostgresReader
from license_store.model import License

TALENT = "talent_household_registration"
HOUSING = "housing_provident_withdrawal"


@pytest.fixture
def w(hub_db_url: str) -> Iterator[World]:
    with world(hub_db_url) as built:
        yield built


@pytest.fixture
def ws(sqlite_url: str) -> Iterator[World]:
    """The same world on SQLite only, for behaviour that does not depend on the backend."""
    with world(sqlite_url) as built:
        yield built


def audit_row(w: World, request_id: str) -> AuditEntry:
    with w.hub.sessions() as session:
        (row,) = session.scalars(sa.select(AuditEntry).where(AuditEntry.request_id == request_id))
        return row


def lookup(w: World, key: str, id_number: str, rid: str | None = None, **body: Any) -> Any:
    payload = {"id_number": id_number, "purpose": "办理人才引进落户", **body}
    return w.client.post("/v1/lookups", json=payload, headers=auth(key, rid))


def test_lookup_serves_visible_licenses_and_withholds_conditional_ones(w: World) -> None:
    key = add_consumer(w.hub, "dps-counter", kind="counter", department="dps")
    response = lookup(w, key, PERSON, "req-1", service_item=TALENT)
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "req-1"
    body = response.json()
    assert body["id_masked"] == PERSON[:6] + "********" + PERSON[-4:]
    served = {lic["license_type"]: lic for lic in body["licenses"]}
    assert set(served) == {"degree_certificate"}  # the only unconditional material of the item
    degree = served["degree_certificate"]
    assert degree["status"] == "valid"
    assert degree["provenance"]["department"] == "edu"
    assert degree["provenance"]["batch_id"] == "src_degree_certificate:1"
    assert degree["credential"]["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    withheld = {entry["license_type"]: entry for entry in body["withheld"]}
    # Conditional types of the item: consent required, and not even whether one exists.
    assert set(withheld) == {"social_insurance_certificate", "marriage_certificate"}
    assert all(e["reason"] == "consent_required" for e in withheld.values())
    assert all(e["license_id"] is None for e in withheld.values())
    assert PERSON not in json.dumps(body["withheld"])
    row = audit_row(w, "req-1")
    assert row.action == "lookup" and row.result == "ok"
    assert row.licenses == [degree["license_id"]]
    assert row.detail["decisions"] == {
        "degree_certificate": "allow",
        "marriage_certificate": "consent_required",
        "social_insurance_certificate": "consent_required",
    }
    assert PERSON not in json.dumps([row.purpose, row.detail, row.holder_key])


def test_returned_credentials_verify_through_the_api(w: World) -> None:
    key = add_consumer(w.hub, "dhurd-dept", kind="department", department="dhurd")
    body = lookup(w, key, PERSON).json()
    assert {lic["license_type"] for lic in body["licenses"]} == {
        "degree_certificate",
        "real_estate_title",
    }
    for lic in body["licenses"]:
        answer = w.client.post(
            "/v1/verifications",
            json={"credential": lic["credential"], "purpose": "核验"},
            headers=auth(key),
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["verified"] is True
        assert answer.json()["status"] == "valid"
        assert PERSON not in answer.text
    forged = json.loads(json.dumps(body["licenses"][0]["credential"]))
    forged["credentialSubject"]["licenseNumber"] = "FORGED"
    answer = w.client.post(
        "/v1/verifications", json={"credential": forged, "purpose": "核验"}, headers=auth(key)
    )
    assert answer.json()["verified"] is False
    assert answer.json()["reason"] == "bad_signature"


def test_verify_reports_a_revoked_license(ws: World) -> None:
    key = add_consumer(ws.hub, "dhurd-dept", kind="department", department="dhurd")
    degree = lookup(ws, key, PERSON).json()["licenses"][0]
    with ws.hub.sessions.begin() as session:
        session.execute(
            sa.update(License)
            .where(License.license_id == degree["license_id"])
            .values(status="revoked", status_changed_at=NOW)
        )
    answer = ws.client.post(
        "/v1/verifications",
        json={"credential": degree["credential"], "purpose": "核验"},
        headers=auth(key, "verify-1"),
    ).json()
    assert answer["verified"] is False
    assert answer["reason"] == "revoked"
    assert answer["status"] == "revoked"
    assert audit_row(ws, "verify-1").result == "not_verified:revoked"
    # A lookup no longer serves it, but says why.
    withheld = lookup(ws, key, PERSON).json()["withheld"]
    assert {"license_id": degree["license_id"], "reason": "revoked"}.items() <= withheld[0].items()


def test_an_intake_system_must_name_the_service_item(ws: World) -> None:
    key = add_consumer(ws.hub, "kiosk", kind="kiosk", department="dps")
    response = lookup(ws, key, PERSON, "no-item")
    assert response.status_code == 422
    assert response.json()["code"] == "service_item_required"
    assert audit_row(ws, "no-item").result == "service_item_required"
    dept = add_consumer(ws.hub, "dps-dept", kind="department", department="dps")
    assert lookup(ws, dept, PERSON).status_code == 200


@pytest.mark.parametrize(
    ("id_number", "code"),
    [
        ("4401061985031512", "id_length"),
        ("44010619850315A23X", "id_charset"),
        (PERSON[:17] + ("0" if PERSON[17] != "0" else "1"), "id_check_char"),
        (resident_id("440106", "19851345", 123), "id_birth_date"),
        (resident_id("999999", "19850315", 123), "id_region"),
    ],
)
def test_a_bad_id_number_says_which_check_failed_and_never_echoes_it(
    ws: World, id_number: str, code: str
) -> None:
    key = add_consumer(ws.hub, "dps-dept", kind="department", department="dps")
    response = lookup(ws, key, id_number, "bad-id")
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    assert id_number not in response.text
    row = audit_row(ws, "bad-id")
    assert (row.result, row.holder_key) == (code, None)


def test_consent_lets_a_counter_see_a_conditional_license_until_revoked(w: World) -> None:
    counter = add_consumer(w.hub, "dhurd-counter", kind="counter", department="dhurd")
    other = add_consumer(w.hub, "dhurd-counter-2", kind="counter", department="dhurd")
    purpose = "购房提取住房公积金"

    def marriage_served(key: str, purpose: str = purpose) -> bool:
        body = lookup(w, key, PERSON, purpose=purpose, service_item=HOUSING).json()
        return "marriage_certificate" in {lic["license_type"] for lic in body["licenses"]}

    assert not marriage_served(counter)
    expires = (NOW + dt.timedelta(days=1)).isoformat()
    given = w.client.post(
        "/v1/consents",
        json={
            "id_number": PERSON,
            "purpose": purpose,
            "license_types": ["marriage_certificate"],
            "expires_at": expires,
        },
        headers=auth(counter, "consent-1"),
    )
    assert given.status_code == 201, given.text
    consent = given.json()
    assert given.headers["location"] == f"/v1/consents/{consent['consent_id']}"
    assert audit_row(w, "consent-1").detail["consent_id"] == consent["consent_id"]
    assert marriage_served(counter)
    assert marriage_served(counter, purpose=f"  {purpose} ")  # whitespace does not matter
    assert not marriage_served(counter, purpose="另一个事由")  # another purpose is not covered
    assert not marriage_served(other)  # nor another consumer
    # Only the consumer that recorded it (or the one it is for) may revoke it.
    assert (
        w.client.delete(f"/v1/consents/{consent['consent_id']}", headers=auth(other)).status_code
        == 404
    )
    revoked = w.client.delete(f"/v1/consents/{consent['consent_id']}", headers=auth(counter))
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert not marriage_served(counter)
    again = w.client.delete(f"/v1/consents/{consent['consent_id']}", headers=auth(counter))
    assert (again.status_code, again.json()["code"]) == (409, "consent_revoked")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"expires_at": (NOW - dt.timedelta(minutes=1)).isoformat()}, "consent_expiry"),
        ({"expires_at": (NOW + dt.timedelta(days=400)).isoformat()}, "consent_expiry"),
        ({"expires_at": "2026-12-01T00:00:00"}, "consent_expiry"),
        ({"license_types": ["degree_certificate"]}, "consent_license_type"),
        ({"consumer": "nobody-by-this-name"}, "consumer_not_found"),
    ],
)
def test_a_bad_consent_is_refused(ws: World, change: dict[str, Any], code: str) -> None:
    counter = add_consumer(ws.hub, "counter", kind="counter", department="dhurd")
    body = {
        "id_number": PERSON,
        "purpose": "购房提取住房公积金",
        "expires_at": (NOW + dt.timedelta(days=1)).isoformat(),
        **change,
    }
    response = ws.client.post("/v1/consents", json=body, headers=auth(counter, "c"))
    assert response.json()["code"] == code
    assert response.status_code in (404, 422)
    assert audit_row(ws, "c").result == code


def test_a_department_may_not_record_consents(ws: World) -> None:
    dept = add_consumer(ws.hub, "dept", kind="department", department="dhurd")
    body = {
        "id_number": PERSON,
        "purpose": "x" * 5,
        "expires_at": (NOW + dt.timedelta(days=1)).isoformat(),
    }
    response = ws.client.post("/v1/consents", json=body, headers=auth(dept))
    assert (response.status_code, response.json()["code"]) == (403, "scope_missing")


def test_material_check_tells_the_counter_what_paper_it_can_skip(w: World) -> None:
    counter = add_consumer(w.hub, "dhurd-counter", kind="counter", department="dhurd")
    purpose = "购房提取住房公积金"
    body = {"id_number": PERSON, "purpose": purpose, "service_item": HOUSING}
    first = w.client.post("/v1/material-checks", json=body, headers=auth(counter, "m1"))
    assert first.status_code == 200, first.text
    status = {m["code"]: (m["status"], m["reason"]) for m in first.json()["materials"]}
    assert status == {
        "id_card": ("missing", "applicant_supplies"),
        "marriage_cert": ("consent_required", "consent_required"),
        "property_title": ("covered", None),
        "purchase_contract": ("missing", "applicant_supplies"),
    }
    assert first.json()["paper_needed"] == ["id_card", "marriage_cert", "purchase_contract"]
    (title,) = next(m for m in first.json()["materials"] if m["code"] == "property_title")[
        "licenses"
    ]
    assert audit_row(w, "m1").licenses == [title["license_id"]]
    w.client.post(
        "/v1/consents",
        json={
            "id_number": PERSON,
            "purpose": purpose,
            "expires_at": (NOW + dt.timedelta(hours=2)).isoformat(),
        },
        headers=auth(counter),
    ).raise_for_status()
    second = w.client.post("/v1/material-checks", json=body, headers=auth(counter)).json()
    assert second["paper_needed"] == ["id_card", "purchase_contract"]
    # A holder without licenses: covered by nothing, and told apart from not-shared.
    third = w.client.post(
        "/v1/material-checks", json={**body, "id_number": STRANGER}, headers=auth(counter)
    ).json()
    reasons = {m["code"]: m["reason"] for m in third["materials"]}
    assert reasons["property_title"] == "no_valid_license"


def test_material_check_respects_the_holder_role(ws: World) -> None:
    counter = add_consumer(ws.hub, "aic-counter", kind="counter", department="aic")
    body = {
        "id_number": COMPANY,
        "purpose": "企业变更登记",
        "service_item": "enterprise_change_registration",
    }
    response = ws.client.post("/v1/material-checks", json=body, headers=auth(counter))
    status = {m["code"]: m["status"] for m in response.json()["materials"]}
    assert status == {
        "business_license": "covered",
        "premises_title": "covered",
        "change_application": "missing",
    }
    wrong_kind = {**body, "holder_kind": "natural_person", "id_number": PERSON}
    response = ws.client.post("/v1/material-checks", json=wrong_kind, headers=auth(counter))
    assert (response.status_code, response.json()["code"]) == (422, "holder_kind_mismatch")


def test_fetch_one_license(w: World) -> None:
    dps = add_consumer(w.hub, "dps-dept", kind="department", department="dps")
    aic = add_consumer(w.hub, "aic-dept", kind="department", department="aic")
    degree = w.license("degree_certificate")
    marriage = w.license("marriage_certificate")
    response = w.client.get(
        f"/v1/licenses/{degree}", params={"purpose": "核对学历"}, headers=auth(dps, "f1")
    )
    assert response.status_code == 200, response.text
    assert response.json()["credential"]["id"] == f"urn:oid:{degree}"
    assert audit_row(w, "f1").licenses == [degree]
    # dps reads marriage certificates with consent; aic does not read them at all.
    response = w.client.get(
        f"/v1/licenses/{marriage}", params={"purpose": "核对"}, headers=auth(dps)
    )
    assert (response.status_code, response.json()["code"]) == (403, "consent_required")
    response = w.client.get(
        f"/v1/licenses/{marriage}", params={"purpose": "核对"}, headers=auth(aic, "f2")
    )
    assert (response.status_code, response.json()["code"]) == (404, "license_not_found")
    assert audit_row(w, "f2").result == "license_not_found"
    unknown = degree[:-1] + ("A" if degree[-1] != "A" else "B")
    response = w.client.get(
        f"/v1/licenses/{unknown}", params={"purpose": "核对"}, headers=auth(dps)
    )
    assert response.status_code == 404
    missing_purpose = w.client.get(f"/v1/licenses/{degree}", headers=auth(dps))
    assert missing_purpose.status_code == 422


def test_fetch_with_the_spouses_consent(ws: World) -> None:
    counter = add_consumer(ws.hub, "dps-counter", kind="counter", department="dps")
    marriage = ws.license("marriage_certificate")
    ws.client.post(
        "/v1/consents",
        json={
            "id_number": SPOUSE,
            "purpose": "核对婚姻状况",
            "expires_at": (NOW + dt.timedelta(hours=1)).isoformat(),
        },
        headers=auth(counter),
    ).raise_for_status()
    response = ws.client.get(
        f"/v1/licenses/{marriage}", params={"purpose": "核对婚姻状况"}, headers=auth(counter)
    )
    assert response.status_code == 200, response.text


def test_access_history_shows_every_access_except_embargoed_ones(w: World) -> None:
    police = add_consumer(
        w.hub, "dps-investigation", kind="department", department="dps", may_restrict=True
    )
    plain = add_consumer(w.hub, "dps-dept", kind="department", department="dps")
    hall = add_consumer(w.hub, "online-hall", kind="online_hall", department="dps")
    assert lookup(w, plain, PERSON, "visible").status_code == 200
    embargo = (NOW + dt.timedelta(days=30)).date()
    hidden = lookup(w, police, PERSON, "hidden", restricted_until=embargo.isoformat())
    assert hidden.status_code == 200
    refused = lookup(w, plain, PERSON, "refused", restricted_until=embargo.isoformat())
    assert (refused.status_code, refused.json()["code"]) == (403, "restriction_not_allowed")

    def history(id_number: str) -> list[dict[str, Any]]:
        response = w.client.post(
            "/v1/access-history",
            json={"id_number": id_number, "purpose": "本人查询"},
            headers=auth(hall),
        )
        assert response.status_code == 200, response.text
        accesses: list[dict[str, Any]] = response.json()["accesses"]
        return accesses

    seen = history(PERSON)
    by_request = {a["seq"]: a for a in seen}
    consumers = [a["consumer"] for a in seen]
    assert "dps-investigation" not in consumers
    assert "dps-dept" in consumers
    visible = audit_row(w, "visible")
    assert by_request[visible.seq]["purpose"] == "办理人才引进落户"
    assert by_request[visible.seq]["department"] == "dps"
    assert by_request[visible.seq]["licenses"] == visible.licenses
    # The spouse sees reads of the marriage certificate they are on, made under PERSON's number.
    counter = add_consumer(w.hub, "dps-counter", kind="counter", department="dps")
    w.client.post(
        "/v1/consents",
        json={
            "id_number": PERSON,
            "purpose": "核对婚姻状况",
            "expires_at": (NOW + dt.timedelta(hours=1)).isoformat(),
        },
        headers=auth(counter),
    ).raise_for_status()
    read = lookup(w, counter, PERSON, "spouse-read", purpose="核对婚姻状况", service_item=TALENT)
    assert "marriage_certificate" in {lic["license_type"] for lic in read.json()["licenses"]}
    spouse_seen = {a["seq"] for a in history(SPOUSE)}
    assert audit_row(w, "spouse-read").seq in spouse_seen
    assert audit_row(w, "visible").seq not in spouse_seen  # no license of the spouse was read
    # After the embargo the restricted access shows.
    later = World(hub=w.hub, client=w.client, licenses=w.licenses)
    object.__setattr__(later.hub, "now", lambda: NOW + dt.timedelta(days=31))
    assert "dps-investigation" in [a["consumer"] for a in history(PERSON)]


def test_history_pages(ws: World) -> None:
    dept = add_consumer(ws.hub, "dept", kind="department", department="dps")
    hall = add_consumer(ws.hub, "hall", kind="online_hall", department="dps")
    for _ in range(5):
        lookup(ws, dept, PERSON)
    seqs: list[int] = []
    before = None
    while True:
        page = ws.client.post(
            "/v1/access-history",
            json={"id_number": PERSON, "purpose": "本人查询", "limit": 2, "before_seq": before},
            headers=auth(hall),
        ).json()
        seqs += [a["seq"] for a in page["accesses"]]
        before = page["next_before_seq"]
        if before is None:
            break
    assert len(seqs) >= 5 and seqs == sorted(seqs, reverse=True)
    dept_history = ws.client.post(
        "/v1/access-history", json={"id_number": PERSON, "purpose": "本人查询"}, headers=auth(dept)
    )
    assert (dept_history.status_code, dept_history.json()["code"]) == (403, "scope_missing")


def test_errors_are_problems_without_input_or_traces(ws: World) -> None:
    key = add_consumer(ws.hub, "dept", kind="department", department="dps")
    no_key = ws.client.post("/v1/lookups", json={"id_number": PERSON, "purpose": "xx"})
    assert (no_key.status_code, no_key.json()["code"]) == (401, "key_missing")
    bad_key = lookup(ws, "oh_0000_nope", PERSON)
    assert (bad_key.status_code, bad_key.json()["code"]) == (401, "key_invalid")
    unknown_item = lookup(ws, key, PERSON, service_item="no_such_item")
    assert (unknown_item.status_code, unknown_item.json()["code"]) == (
        404,
        "catalog_unknown_reference",
    )
    no_purpose = ws.client.post("/v1/lookups", json={"id_number": PERSON}, headers=auth(key))
    assert no_purpose.status_code == 422
    assert "purpose" in no_purpose.json()["detail"]
    # An unknown key holding an ID number is named only as <field>.
    sneaky = ws.client.post(
        "/v1/lookups", json={"id_number": PERSON, "purpose": "xx", PERSON: 1}, headers=auth(key)
    )
    assert sneaky.status_code == 422
    assert PERSON not in sneaky.text
    huge = ws.client.post(
        "/v1/verifications",
        content=b'{"purpose": "xx", "credential": {"a": "' + b"x" * 300_000 + b'"}}',
        headers={**auth(key), "Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    wrong_method = ws.client.put("/v1/lookups", headers=auth(key))
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"].startswith("application/problem+json")
    for response in (no_key, bad_key, unknown_item, no_purpose, sneaky, huge, wrong_method):
        assert "Traceback" not in response.text
        assert response.json()["status"] == response.status_code


def test_rate_limit_answers_429_with_retry_after(sqlite_url: str) -> None:
    with world(sqlite_url, config=ApiConfig(default_rate_limit="3/minute")) as w:
        key = add_consumer(w.hub, "dept", kind="department", department="dps")
        fast = add_consumer(
            w.hub, "fast", kind="department", department="dps", rate_limit="100/minute"
        )
        answers = [lookup(w, key, PERSON).status_code for _ in range(4)]
        assert answers == [200, 200, 200, 429]
        limited = lookup(w, key, PERSON)
        assert limited.json()["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert [lookup(w, fast, PERSON).status_code for _ in range(5)] == [200] * 5


def test_catalog_is_public(ws: World) -> None:
    types = ws.client.get("/v1/catalog/license-types").json()
    assert {t["code"]: t["sharing_class"] for t in types}["marriage_certificate"] == "conditional"
    items = ws.client.get("/v1/catalog/service-items").json()
    assert TALENT in {i["code"] for i in items}
    sharing = ws.client.get("/v1/catalog/sharing").json()
    assert "consent" in sharing["kinds"]["counter"]
    assert ws.client.get("/v1/keys").json()["keys"]
    assert ws.client.get("/.well-known/did.json").status_code == 200
    assert ws.client.get("/healthz").json() == {"status": "ok"}


def test_metrics_count_requests_and_audit_rows(ws: World) -> None:
    key = add_consumer(ws.hub, "dept", kind="department", department="dps")
    for _ in range(3):
        lookup(ws, key, PERSON)
    text = ws.client.get("/metrics").text
    assert 'onehub_http_requests_total{method="POST",route="/v1/lookups",status="200"} 3.0' in text
    assert "onehub_audit_rows_total 3.0" in text
    assert "onehub_http_request_duration_seconds_bucket" in text


def test_openapi_documents_every_call_with_examples(ws: World) -> None:
    spec = ws.client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/v1/lookups",
        "/v1/material-checks",
        "/v1/licenses/{license_id}",
        "/v1/verifications",
        "/v1/consents",
        "/v1/consents/{consent_id}",
        "/v1/access-history",
        "/v1/catalog/license-types",
        "/v1/keys",
        "/healthz",
        "/metrics",
    ):
        assert path in paths, path
    schemas = spec["components"]["schemas"]
    for name in ("LookupRequest", "MaterialCheckRequest", "ConsentRequest", "LookupResponse"):
        assert schemas[name]["examples"], name
    problem = paths["/v1/lookups"]["post"]["responses"]["422"]["content"]
    assert "application/problem+json" in problem
    assert "HTTPValidationError" not in json.dumps(spec)


# --- the CLI, against the same database the API serves ---------------------------------------


@pytest.fixture
def cli_env(ws: World, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("ONEHUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ONEHUB_DB_URL", ws.hub.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("ONEHUB_HUB_KEY", ws.hub.hub_key.hex())
    monkeypatch.setenv("ONEHUB_KEK", ws.hub.kek.hex())
    monkeypatch.setenv(
        "ONEHUB_DATA_KEYS", json.dumps({"active": "k1", "keys": {"k1": bytes(range(32, 64)).hex()}})
    )
    monkeypatch.setenv("COLUMNS", "250")
    return ws


def _key_from(output: str) -> str:
    (key,) = [word for word in output.split() if word.startswith("oh_")]
    return key


def test_cli_consumers_add_disable_rotate(cli_env: World) -> None:
    from onehub.cli import app

    w = cli_env
    runner = CliRunner()
    added = runner.invoke(
        app, ["consumers", "add", "tianhe-01", "--department", "dps", "--kind", "counter"]
    )
    assert added.exit_code == 0, added.output
    key = _key_from(added.output)
    assert "license:degree_certificate" in added.output
    assert "license:marriage_certificate:consent" in added.output
    assert lookup(w, key, PERSON, service_item=TALENT).status_code == 200
    listed = runner.invoke(app, ["consumers", "list"])
    assert "tianhe-01" in listed.output and key not in listed.output
    # The key is stored hashed only.
    with w.hub.engine.connect() as conn:
        dump = json.dumps(
            [list(r) for r in conn.execute(sa.text("SELECT * FROM consumers"))], default=str
        )
    assert key.split("_", 2)[2] not in dump
    rotated = runner.invoke(app, ["consumers", "rotate-key", "tianhe-01"])
    assert rotated.exit_code == 0, rotated.output
    new_key = _key_from(rotated.output)
    assert lookup(w, key, PERSON, service_item=TALENT).status_code == 401
    assert lookup(w, new_key, PERSON, service_item=TALENT).status_code == 200
    disabled = runner.invoke(app, ["consumers", "disable", "tianhe-01"])
    assert disabled.exit_code == 0, disabled.output
    refused = lookup(w, new_key, PERSON, service_item=TALENT)
    assert (refused.status_code, refused.json()["code"]) == (403, "consumer_disabled")
    unknown = runner.invoke(app, ["consumers", "disable", "nobody"])
    assert unknown.exit_code == 1
    bad_kind = runner.invoke(
        app, ["consumers", "add", "x", "--department", "dps", "--kind", "robot"]
    )
    assert bad_kind.exit_code == 1
    restrict = runner.invoke(
        app, ["consumers", "add", "y", "--department", "dps", "--kind", "counter", "--may-restrict"]
    )
    assert restrict.exit_code == 1
    assert os.environ["ONEHUB_DB_URL"]
    with w.hub.sessions() as session:
        assert verify_chain(session=session) is None


def test_annotated_copy_binds_the_license_to_item_purpose_and_consumer(w: World) -> None:
    from license_store.annotation import verify_annotated
    from license_store.key import KeyRing

    counter = add_consumer(w.hub, "dps-counter", kind="counter", department="dps")
    degree = w.license("degree_certificate")
    body = {"purpose": "办理人才引进落户", "service_item": TALENT}
    made = w.client.post(
        f"/v1/licenses/{degree}/annotated-copies", json=body, headers=auth(counter, "copy-1")
    )
    assert made.status_code == 201, made.text
    copy = made.json()
    assert copy["license_id"] == degree
    assert "仅用于办理" in copy["credential"]["credentialSubject"]["annotation"]
    with w.hub.sessions() as session:
        keys = KeyRing(issuer_did=w.hub.issuer_did).key_set(session=session)
        checked = verify_annotated(
            copy["credential"],
            keys=keys,
            now=NOW,
            service_item=TALENT,
            consumer="dps-counter",
            session=session,
        )
    assert checked.license.license_id == degree
    row = audit_row(w, "copy-1")
    assert (row.action, row.licenses) == ("annotated_copy", [degree])
    assert row.detail["copy_id"] == copy["copy_id"]
    # A copy needs a service item, and a type the caller may see.
    no_item = w.client.post(
        f"/v1/licenses/{degree}/annotated-copies",
        json={"purpose": "办理"},
        headers=auth(counter),
    )
    assert no_item.status_code == 422
    marriage = w.license("marriage_certificate")
    refused = w.client.post(
        f"/v1/licenses/{marriage}/annotated-copies", json=body, headers=auth(counter)
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "consent_required")
    kiosk = add_consumer(w.hub, "kiosk", kind="kiosk", department="dps")
    refused = w.client.post(
        f"/v1/licenses/{degree}/annotated-copies", json=body, headers=auth(kiosk)
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "scope_missing")


def test_no_annotated_copy_of_a_revoked_license(ws: World) -> None:
    counter = add_consumer(ws.hub, "dps-counter", kind="counter", department="dps")
    degree = ws.license("degree_certificate")
    with ws.hub.sessions.begin() as session:
        session.execute(
            sa.update(License).where(License.license_id == degree).values(status="revoked")
        )
    refused = ws.client.post(
        f"/v1/licenses/{degree}/annotated-copies",
        json={"purpose": "办理人才引进落户", "service_item": TALENT},
        headers=auth(counter),
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "license_not_valid")


def test_a_lookup_answers_503_when_the_license_store_cannot_be_reached(postgres_url: str) -> None:
    """asyncpg's connection failures are a retriable 503, not a 500 with nothing said."""
    with world(postgres_url) as w:
        key = add_consumer(w.hub, "dps-counter", kind="counter", department="dps")
        assert lookup(w, key, PERSON, service_item=TALENT).status_code == 200
        app = w.client.app
        healthy = app.state.reader  # type: ignore[attr-defined]
        # Port 1: nothing listens there, so every connection is refused.
        app.state.reader = PostgresReader("postgresql://postgres@127.0.0.1:1/none")  # type: ignore[attr-defined]
        try:
            response = lookup(w, key, PERSON, service_item=TALENT)
        finally:
            app.state.reader = healthy  # type: ignore[attr-defined]
        assert response.status_code == 503
        assert response.json()["code"] == "database_unavailable"
        assert response.headers["retry-after"] == "1"
        assert PERSON not in response.text
