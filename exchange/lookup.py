"""One-number lookup (一號申辦): the licenses a consumer may see for one holder."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from catalog_schemas.errors import InvalidIdentifierError
from catalog_schemas.holder import HolderKind, holder_key, mask_id, validate_holder_id
from exchange import audit
from exchange.hub import Hub
from exchange.model import Consumer
from exchange.sharing import decide
from license_store.store import credential_of, licenses_for_holder

# Validity dates of licenses are calendar days in China (UTC+8).
CHINA = dt.timezone(dt.timedelta(hours=8))


@dataclass
class LookupResult:
    holder_kind: HolderKind
    id_masked: str
    licenses: list[dict[str, Any]] = field(default_factory=list)
    withheld: list[dict[str, Any]] = field(default_factory=list)


def lookup(
    *,
    hub: Hub,
    session: Session,
    consumer: Consumer,
    id_number: str,
    holder_kind: HolderKind,
    purpose: str,
    service_item: str | None,
) -> LookupResult:
    """Find the holder's valid licenses, apply the sharing policy, and audit the access."""
    if service_item is not None:
        hub.catalog.service_item(service_item)  # unknown item → CatalogError (404 at the API)
    try:
        canonical = validate_holder_id(holder_kind, id_number, today=hub.now().date())
    except InvalidIdentifierError:
        audit.append(
            session=session,
            at=hub.now(),
            consumer=consumer.name,
            action="lookup",
            purpose=purpose,
            service_item=service_item,
            holder_key=None,
            licenses=[],
            result="invalid_id",
        )
        raise
    key = holder_key(hub.hub_key, holder_kind, canonical)
    result = LookupResult(holder_kind=holder_kind, id_masked=mask_id(canonical))
    returned: list[str] = []
    today = hub.now().astimezone(CHINA).date()
    for lic in licenses_for_holder(session=session, holder_key=key):
        if lic.status != "valid":
            continue
        license_type = hub.catalog.license_type(lic.license_type)
        decision = decide(license_type, department=consumer.department)
        summary = {
            "license_id": lic.license_id,
            "license_type": license_type.code,
            "name_zh": license_type.name_zh,
            "name_en": license_type.name_en,
            "version": lic.version,
            "status": lic.status,
        }
        if decision != "deny" and lic.valid_until is not None and lic.valid_until < today:
            # Past its validity: not a material the counter can accept (the expiry sweep will
            # mark it expired in the store); say so rather than hide it.
            result.withheld.append({**summary, "status": "expired", "reason": "expired"})
        elif decision == "allow":
            issuer = hub.catalog.department(lic.issuer_department)
            summary["provenance"] = {
                "source": lic.source,
                "department": issuer.code,
                "department_name_zh": issuer.name_zh,
                "as_of": lic.as_of.isoformat(),
                "batch_id": lic.batch_id,
            }
            summary["credential"] = credential_of(lic, hub.cipher)
            result.licenses.append(summary)
            returned.append(lic.license_id)
        elif decision == "consent_required":
            result.withheld.append({**summary, "reason": "consent_required"})
    audit.append(
        session=session,
        at=hub.now(),
        consumer=consumer.name,
        action="lookup",
        purpose=purpose,
        service_item=service_item,
        holder_key=key,
        licenses=returned,
        result="ok",
    )
    return result
