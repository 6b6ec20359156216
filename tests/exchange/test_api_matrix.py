"""The authorisation matrix: every consumer kind x license type x sharing class (and whether the
consumer's department is a reader) x consent state gets the decision the catalog says, through
the lookup and the material check, and every decision is in the audit log.

The expected decision is written out here from the catalog's rules, not computed by
exchange.sharing, so a wrong rule there fails this test.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from test_api_world import COMPANY, NOW, PERSON, World, add_consumer, auth, catalog_copy, world

from exchange.access import resolve_holder
from exchange.consent import record_consent
from exchange.model import AuditEntry

KINDS = ("department", "counter", "online_hall", "kiosk")
CLASSES = ("unconditional", "conditional", "not_shared")
CONSENT_STATES = ("none", "active", "expired", "revoked", "other_purpose", "other_consumer")
DEPARTMENT = "dhurd"
PURPOSE = "矩阵测试事由"
# Two service items that between them ask for every license type, one per applicant kind.
ITEMS = [
    {
        "code": "matrix_person",
        "name_zh": "矩阵测试（个人）",
        "name_en": "Matrix test (person)",
        "department": DEPARTMENT,
        "applicant_kind": "natural_person",
        "materials": [
            {"code": f"m_{t}", "name_zh": t, "name_en": t, "license_type": t}
            for t in (
                "degree_certificate",
                "marriage_certificate",
                "real_estate_title",
                "social_insurance_certificate",
            )
        ],
    },
    {
        "code": "matrix_company",
        "name_zh": "矩阵测试（企业）",
        "name_en": "Matrix test (company)",
        "department": DEPARTMENT,
        "applicant_kind": "legal_person",
        "materials": [
            {"code": f"m_{t}", "name_zh": t, "name_en": t, "license_type": t}
            for t in ("business_license", "real_estate_title")
        ],
    },
]
HOLDERS = {"matrix_person": ("natural_person", PERSON), "matrix_company": ("legal_person", COMPANY)}


def expected(sharing_class: str, reader: bool, consent: str) -> str:
    """The catalog's rule (DESIGN.md §4 and §9)."""
    if sharing_class == "not_shared" or not reader:
        return "deny"
    if sharing_class == "unconditional":
        return "allow"
    return "allow" if consent == "active" else "consent_required"


def set_up_consent(w: World, state: str, consumer: str, other_key: str) -> None:
    """Give the consumer's holders a consent in ``state`` (through the API where it can be)."""
    if state == "none":
        return
    for _item, (kind, id_number) in HOLDERS.items():
        if state == "expired":
            # Made in the past and expired an hour ago: the API only takes future expiries.
            with w.hub.sessions.begin() as session:
                _c, holder = resolve_holder(w.hub, kind, id_number)  # type: ignore[arg-type]
                record_consent(
                    session=session,
                    catalog=w.hub.catalog,
                    holder_key=holder,
                    consumer=consumer,
                    recorded_by=consumer,
                    purpose=PURPOSE,
                    license_types=[],
                    expires_at=NOW - dt.timedelta(hours=1),
                    now=NOW - dt.timedelta(days=1),
                )
            continue
        purpose = "另一个事由" if state == "other_purpose" else PURPOSE
        body: dict[str, Any] = {
            "id_number": id_number,
            "holder_kind": kind,
            "purpose": purpose,
            "expires_at": (NOW + dt.timedelta(days=1)).isoformat(),
            "consumer": f"{consumer}-other" if state == "other_consumer" else consumer,
        }
        # An intake system vouches for the holder (a department records no consents itself).
        response = w.client.post("/v1/consents", json=body, headers=auth(other_key))
        assert response.status_code == 201, response.text
        if state == "revoked":
            revoked = w.client.delete(
                f"/v1/consents/{response.json()['consent_id']}", headers=auth(other_key)
            )
            assert revoked.status_code == 200, revoked.text


@pytest.mark.parametrize(
    ("sharing_class", "reader"), list(itertools.product(CLASSES, (True, False)))
)
def test_every_decision_is_the_catalogs_and_is_audited(
    tmp_path: Path, sharing_class: str, reader: bool
) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["sharing"] = {
            "class": sharing_class,
            "readers": [DEPARTMENT] if reader else ["edu"],
        }

    catalog = catalog_copy(tmp_path, edit_types=edit, service_items=ITEMS)
    checked = 0
    with world(f"sqlite:///{tmp_path / 'hub.db'}", catalog=catalog) as w:
        voucher = add_consumer(w.hub, "voucher", kind="counter", department=DEPARTMENT)
        for kind, consent in itertools.product(KINDS, CONSENT_STATES):
            name = f"{kind}-{consent}".replace("_", "-")
            key = add_consumer(w.hub, name, kind=kind, department=DEPARTMENT)
            add_consumer(w.hub, f"{name}-other", kind=kind, department=DEPARTMENT)
            set_up_consent(w, consent, name, voucher)
            want = expected(sharing_class, reader, consent)
            for item, (holder_kind, id_number) in HOLDERS.items():
                types = [
                    m["license_type"]
                    for m in ITEMS[0 if item == "matrix_person" else 1]["materials"]
                ]
                body = {
                    "id_number": id_number,
                    "holder_kind": holder_kind,
                    "purpose": PURPOSE,
                    "service_item": item,
                }
                rid = f"{name}-{item}-lookup"
                answer = w.client.post("/v1/lookups", json=body, headers=auth(key, rid))
                assert answer.status_code == 200, answer.text
                served = {
                    lic["license_type"]: lic["license_id"] for lic in answer.json()["licenses"]
                }
                withheld = {e["license_type"] for e in answer.json()["withheld"]}
                row = audit_row(w, rid)
                for t in types:
                    where = (kind, t, sharing_class, reader, consent, "lookup")
                    assert row.detail["decisions"][t] == want, where
                    assert (t in served) == (want == "allow"), where
                    assert (t in withheld) == (want == "consent_required"), where
                    if want == "allow":
                        assert served[t] in row.licenses, where
                    checked += 1
                assert sorted(row.licenses) == sorted(served.values())
                rid = f"{name}-{item}-materials"
                answer = w.client.post("/v1/material-checks", json=body, headers=auth(key, rid))
                assert answer.status_code == 200, answer.text
                status = {m["license_type"]: m["status"] for m in answer.json()["materials"]}
                row = audit_row(w, rid)
                for t in types:
                    where = (kind, t, sharing_class, reader, consent, "materials")
                    assert row.detail["decisions"][t] == want, where
                    assert (
                        status[t]
                        == {
                            "allow": "covered",
                            "consent_required": "consent_required",
                            "deny": "missing",
                        }[want]
                    ), where
                    checked += 1
    # 4 kinds x 6 consent states x (4 + 2) types x 2 calls
    assert checked == len(KINDS) * len(CONSENT_STATES) * 6 * 2


def audit_row(w: World, request_id: str) -> AuditEntry:
    with w.hub.sessions() as session:
        (row,) = session.scalars(sa.select(AuditEntry).where(AuditEntry.request_id == request_id))
        return row
