"""The sharing policy: which calls a consumer may make and which license types it may see.

Two layers decide, and a call gets the stricter answer of the two:

- the **catalog**, live: a license type's sharing class (無條件 / 有條件 / 不予共享) and its
  readers;
- the consumer's **scopes**, derived from the same catalog when it was registered
  (:func:`scopes_for`): ``license:<type>`` for an unconditional type its department reads,
  ``license:<type>:consent`` for a conditional one, plus the operations of its kind.

So narrowing the catalog takes effect at once, and widening it reaches a consumer only when its
scopes are derived again (a new registration).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final, Literal, get_args

from catalog_schemas.catalog import Catalog
from catalog_schemas.model import LicenseType

Decision = Literal["allow", "consent_required", "deny"]
ConsumerKind = Literal["department", "counter", "online_hall", "kiosk"]
CONSUMER_KINDS: Final[tuple[ConsumerKind, ...]] = get_args(ConsumerKind)

# Operations (scope names) and what each lets a consumer do.
OPERATIONS: Final[dict[str, str]] = {
    "lookup": "one-number lookup (POST /v1/lookups)",
    "materials": "material check for a service item (POST /v1/material-checks)",
    "fetch": "fetch one license by identifier (GET /v1/licenses/{id})",
    "copy": "request an annotated copy of a license",
    "verify": "verify a presented credential (POST /v1/verifications)",
    "consent": "record and revoke holders' consents (POST/DELETE /v1/consents)",
    "history": "read a holder's access history (POST /v1/access-history)",
    "audit:restrict": "mark its own accesses restricted until an embargo date",
}

# What each kind of consumer does. Intake systems (counters, the online hall, kiosks) serve a
# holder who is present and authenticated, so they may record consents and show the holder
# their access history; a department's back office may not. Restricting audit entries is
# never a kind's default: it is granted per consumer (``may_restrict``), to departments only.
KIND_OPERATIONS: Final[dict[ConsumerKind, tuple[str, ...]]] = {
    "department": ("lookup", "materials", "fetch", "copy", "verify"),
    "counter": ("lookup", "materials", "fetch", "copy", "verify", "consent", "history"),
    "online_hall": ("lookup", "materials", "fetch", "copy", "verify", "consent", "history"),
    "kiosk": ("lookup", "materials", "verify", "consent", "history"),
}
# Intake kinds work on a service item: their lookups must name it.
INTAKE_KINDS: Final = frozenset({"counter", "online_hall", "kiosk"})
RESTRICT_SCOPE: Final = "audit:restrict"


def catalog_decision(license_type: LicenseType, *, department: str) -> Decision:
    """The catalog's answer for a consumer of ``department``, before any consent."""
    sharing = license_type.sharing
    if sharing.sharing_class == "not_shared" or not sharing.readable_by(department):
        return "deny"
    if sharing.sharing_class == "conditional":
        return "consent_required"
    return "allow"


def scope_decision(license_type: str, scopes: Collection[str]) -> Decision:
    """What the consumer's scopes say about one license type, before any consent."""
    if f"license:{license_type}" in scopes:
        return "allow"
    if f"license:{license_type}:consent" in scopes:
        return "consent_required"
    return "deny"


_RANK: Final[dict[Decision, int]] = {"deny": 0, "consent_required": 1, "allow": 2}


def decide(
    license_type: LicenseType,
    *,
    department: str,
    scopes: Collection[str] | None = None,
    has_consent: bool = False,
) -> Decision:
    """The decision for one license type: the stricter of catalog and scopes, then consent."""
    decision = catalog_decision(license_type, department=department)
    if scopes is not None:
        decision = min(decision, scope_decision(license_type.code, scopes), key=_RANK.__getitem__)
    if decision == "consent_required" and has_consent:
        return "allow"
    return decision


def scopes_for(
    catalog: Catalog, *, department: str, kind: ConsumerKind, may_restrict: bool = False
) -> list[str]:
    """The scopes of a new consumer, derived from the catalog's sharing classes and its kind."""
    if kind not in KIND_OPERATIONS:
        raise ValueError(f"unknown consumer kind {kind!r}")
    scopes = list(KIND_OPERATIONS[kind])
    if may_restrict:
        scopes.append(RESTRICT_SCOPE)
    for code, license_type in sorted(catalog.license_types.items()):
        decision = catalog_decision(license_type, department=department)
        if decision == "allow":
            scopes.append(f"license:{code}")
        elif decision == "consent_required":
            scopes.append(f"license:{code}:consent")
    return scopes
