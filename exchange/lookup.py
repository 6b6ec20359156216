"""The calls on a holder's data: one-number lookup (一號申辦), material check, fetch a license,
verify a presented credential, and the holder's access history.

Each call checks the caller first, decides per license type (exchange.sharing, then consents),
and hands exactly one audit entry to ``audit`` — on success and on every refusal after the
caller is known — before it returns, so the API answers only once the row is durable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy.orm import Session

from catalog_schemas.errors import ConflictError, FatalError, OneHubError
from catalog_schemas.holder import HolderKind, mask_id
from catalog_schemas.model import LicenseType, ServiceItem
from exchange.access import (
    AuditSink,
    Call,
    ConsentRequiredError,
    check_call,
    china_today,
    holder_kind_for,
    resolve_holder,
)
from exchange.audit import Access, access_history
from exchange.consent import consent_for, consented_types
from exchange.hub import Hub
from exchange.reader import Held, HolderRows, Prefetched
from exchange.sharing import INTAKE_KINDS, Decision, decide
from license_store.annotation import annotate
from license_store.canonical import parse_json
from license_store.credential import end_of_day, license_id_of
from license_store.error import LicenseNotFoundError, VerificationError
from license_store.key import KeyRing
from license_store.model import VALID, License
from license_store.store import get_license
from license_store.verification import verify_credential

DEFAULT_COPY_LIFETIME = dt.timedelta(days=7)


class LicenseNotValidError(ConflictError):
    """The license is not valid now (revoked, suspended, expired...), so it cannot be copied."""

    code = "license_not_valid"


@dataclass
class LookupResult:
    holder_kind: HolderKind
    id_masked: str
    licenses: list[dict[str, Any]] = field(default_factory=list)
    withheld: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class MaterialCheckResult:
    service_item: str
    holder_kind: HolderKind
    id_masked: str
    materials: list[dict[str, Any]] = field(default_factory=list)

    @property
    def paper_needed(self) -> list[str]:
        """Materials the applicant must still bring on paper."""
        return [m["code"] for m in self.materials if m["status"] != "covered"]


@dataclass
class VerificationResult:
    verified: bool
    reason: str | None
    license_id: str | None
    license_type: str | None
    status: str | None
    issuer: str | None
    issuer_bound: bool | None
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None


@dataclass
class HistoryResult:
    holder_kind: HolderKind
    id_masked: str
    accesses: list[Access]


def _type_summary(license_type: LicenseType) -> dict[str, Any]:
    return {
        "license_type": license_type.code,
        "name_zh": license_type.name_zh,
        "name_en": license_type.name_en,
    }


def _credential(hub: Hub, lic: License | Held) -> dict[str, Any]:
    """The signed credential, decrypted (as license_store.store.credential_of does)."""
    credential = parse_json(hub.cipher.decrypt(lic.credential_enc, aad=lic.license_id))
    if not isinstance(credential, dict):
        raise FatalError("stored credential is not a JSON object")
    return credential


def _raw_credential(hub: Hub, lic: Held) -> msgspec.Raw:
    """The signed credential's JSON text, decrypted, to be embedded in an answer unparsed."""
    text = hub.cipher.decrypt(lic.credential_enc, aad=lic.license_id)
    if not text.startswith(b"{"):
        raise FatalError("stored credential is not a JSON object")
    return msgspec.Raw(text)


def _license_view(
    hub: Hub, lic: License | Held, license_type: LicenseType, *, raw: bool = False
) -> dict[str, Any]:
    """A license as a consumer that may see it gets it: status, provenance, signed credential.

    ``raw``: the credential as its JSON text (msgspec.Raw), for answers encoded by
    :func:`encode`; a lookup's credentials are most of its answer, and parsing them only to
    serialise them again would cost more than the rest of the call.
    """
    issuer = hub.catalog.departments.get(lic.issuer_department)
    return {
        "license_id": lic.license_id,
        **_type_summary(license_type),
        "version": lic.version,
        "status": lic.status,
        "provenance": {
            "source": lic.source,
            "department": lic.issuer_department,
            "department_name_zh": issuer.name_zh if issuer else lic.issuer_department,
            "as_of": lic.as_of.isoformat(),
            "batch_id": lic.batch_id,
        },
        "credential": (
            _raw_credential(hub, lic) if raw and isinstance(lic, Held) else _credential(hub, lic)
        ),
    }


def _expired(lic: License | Held, today: dt.date) -> bool:
    return lic.valid_until is not None and lic.valid_until < today


@dataclass(frozen=True)
class _Plan:
    """A holder call checked and ready to read: its holder, license types, first decisions."""

    now: dt.datetime
    item: ServiceItem | None
    kind: HolderKind
    canonical: str
    key: str
    types: list[LicenseType]
    # Per license type, before the holder's consents are read.
    decisions: dict[str, Decision]

    @property
    def needs_consents(self) -> bool:
        return "consent_required" in self.decisions.values()


def _plan(
    hub: Hub,
    call: Call,
    *,
    action: str,
    operation: str,
    id_number: str,
    holder_kind: HolderKind | None,
    item_required: bool,
    audit: AuditSink,
    hint: HolderHint | None,
) -> _Plan:
    """Check the call and the ID number (auditing a refusal) before anything is read."""
    now = hub.now()
    try:
        item = check_call(call, hub=hub, operation=operation, item_required=item_required)
        kind = holder_kind_for(item, holder_kind)
        if hint is not None and hint.kind == kind:
            canonical, key = hint.canonical, hint.key  # the same body, already resolved
        else:
            canonical, key = resolve_holder(hub, kind, id_number)
        if item is None and call.consumer.kind in INTAKE_KINDS:
            # After the ID check, so a bad number is named whatever else is missing.
            check_call(call, hub=hub, operation=operation, item_required=True)
    except OneHubError as exc:
        audit(call.entry(at=now, action=action, holder_key=None, result=exc.code))
        raise
    types = _types_of(hub, item)
    consumer = call.consumer
    decisions = {
        lt.code: decide(lt, department=consumer.department, scopes=consumer.scopes) for lt in types
    }
    return _Plan(now, item, kind, canonical, key, types, decisions)


@dataclass(frozen=True)
class HolderHint:
    """The holder a body names, resolved before the caller is checked (to read ahead)."""

    kind: HolderKind
    canonical: str
    key: str


def holder_hint(
    hub: Hub, *, service_item: str | None, holder_kind: HolderKind | None, id_number: str
) -> HolderHint | None:
    """The holder a body names, if its ID number is valid (else None: the call will say why,
    in its own order of checks)."""
    try:
        item = hub.catalog.service_item(service_item) if service_item is not None else None
        kind = holder_kind_for(item, holder_kind)
        canonical, key = resolve_holder(hub, kind, id_number)
    except OneHubError:
        return None
    return HolderHint(kind=kind, canonical=canonical, key=key)


def _rows(call: Call, plan: _Plan, prefetched: Prefetched | None) -> HolderRows:
    """The holder's rows, read with the caller's (serve_read does it for a valid ID number)."""
    if prefetched is None or prefetched.holder_key != plan.key:
        raise FatalError("the holder's rows were not read with the caller's")
    return prefetched.rows(purpose=call.purpose, now=plan.now, consents=plan.needs_consents)


def _with_consents(
    plan: _Plan, covered: Mapping[str, str]
) -> tuple[dict[str, Decision], dict[str, str]]:
    """Decision per license type once consents count, and the consent used for each."""
    decisions = dict(plan.decisions)
    used: dict[str, str] = {}
    for code, decision in plan.decisions.items():
        consent_id = consent_for(covered, code) if decision == "consent_required" else None
        if consent_id is not None:
            decisions[code] = "allow"
            used[code] = consent_id
    return decisions, used


def _types_of(hub: Hub, item: ServiceItem | None) -> list[LicenseType]:
    """The license types a call may touch: its service item's materials, else every type."""
    if item is None:
        return list(hub.catalog.license_types.values())
    codes = dict.fromkeys(m.license_type for m in item.materials if m.license_type is not None)
    return [hub.catalog.license_type(code) for code in codes]


def _detail(decisions: Mapping[str, Decision], consents: Mapping[str, str]) -> dict[str, Any]:
    return {
        "decisions": dict(sorted(decisions.items())),
        "consents": dict(sorted(consents.items())),
    }


def lookup(
    *,
    hub: Hub,
    call: Call,
    id_number: str,
    holder_kind: HolderKind | None,
    audit: AuditSink,
    prefetched: Prefetched | None,
    hint: HolderHint | None,
) -> LookupResult:
    """The holder's licenses this consumer may see; consent-required types listed as such."""
    plan = _plan(
        hub,
        call,
        action="lookup",
        operation="lookup",
        id_number=id_number,
        holder_kind=holder_kind,
        item_required=False,
        audit=audit,
        hint=hint,
    )
    rows = _rows(call, plan, prefetched)
    decisions, consents = _with_consents(plan, rows.consents)
    result = LookupResult(holder_kind=plan.kind, id_masked=mask_id(plan.canonical))
    today = china_today(plan.now)
    returned: list[str] = []
    for lic in rows.held:
        if decisions.get(lic.license_type) != "allow":
            continue
        license_type = hub.catalog.license_type(lic.license_type)
        if lic.status != VALID or _expired(lic, today):
            # Say why a license the consumer may see is not served, without its content.
            status = lic.status if lic.status != VALID else "expired"
            result.withheld.append(
                {
                    "license_id": lic.license_id,
                    **_type_summary(license_type),
                    "status": status,
                    "reason": status,
                }
            )
            continue
        result.licenses.append(_license_view(hub, lic, license_type, raw=True))
        returned.append(lic.license_id)
    for lt in plan.types:
        if decisions[lt.code] == "consent_required":
            # Whether the holder has one is not said: that too needs the consent.
            result.withheld.append(
                {
                    **_type_summary(lt),
                    "reason": "consent_required",
                    "license_id": None,
                    "status": None,
                }
            )
    audit(
        call.entry(
            at=plan.now,
            action="lookup",
            holder_key=plan.key,
            result="ok",
            licenses=tuple(returned),
            detail=_detail(decisions, consents),
        )
    )
    return result


def check_materials(
    *,
    hub: Hub,
    call: Call,
    id_number: str,
    holder_kind: HolderKind | None,
    audit: AuditSink,
    prefetched: Prefetched | None,
    hint: HolderHint | None,
) -> MaterialCheckResult:
    """For each material of the service item: covered (with the license), missing, or consent
    required."""
    plan = _plan(
        hub,
        call,
        action="material_check",
        operation="materials",
        id_number=id_number,
        holder_kind=holder_kind,
        item_required=True,
        audit=audit,
        hint=hint,
    )
    item = plan.item
    assert item is not None  # item_required
    rows = _rows(call, plan, prefetched)
    decisions, consents = _with_consents(plan, rows.consents)
    today = china_today(plan.now)
    held: dict[str, list[Held]] = {}
    for lic in rows.held:
        held.setdefault(lic.license_type, []).append(lic)
    result = MaterialCheckResult(
        service_item=item.code, holder_kind=plan.kind, id_masked=mask_id(plan.canonical)
    )
    returned: list[str] = []
    for material in item.materials:
        entry: dict[str, Any] = {
            "code": material.code,
            "name_zh": material.name_zh,
            "name_en": material.name_en,
            "license_type": material.license_type,
            "licenses": [],
        }
        result.materials.append(entry)
        if material.license_type is None:
            entry.update(status="missing", reason="applicant_supplies")
            continue
        decision = decisions[material.license_type]
        if decision == "deny":
            entry.update(status="missing", reason="not_shared")
            continue
        if decision == "consent_required":
            entry.update(status="consent_required", reason="consent_required")
            continue
        license_type = hub.catalog.license_type(material.license_type)
        usable = [
            lic
            for lic in held.get(material.license_type, [])
            if lic.status == VALID
            and not _expired(lic, today)
            and (material.holder_role is None or material.holder_role in lic.roles)
        ]
        if not usable:
            entry.update(status="missing", reason="no_valid_license")
            continue
        entry.update(
            status="covered",
            reason=None,
            licenses=[_license_view(hub, lic, license_type, raw=True) for lic in usable],
        )
        returned.extend(lic.license_id for lic in usable)
    covered = [m["code"] for m in result.materials if m["status"] == "covered"]
    audit(
        call.entry(
            at=plan.now,
            action="material_check",
            holder_key=plan.key,
            result="ok",
            licenses=tuple(dict.fromkeys(returned)),
            # The reform's measure: paper certificates the applicant was not asked for.
            detail={**_detail(decisions, consents), "covered": covered},
        )
    )
    return result


def _readable(hub: Hub, session: Session, call: Call, lic: License) -> dict[str, str]:
    """Raise unless the caller may see ``lic``; the consent used (by license type), if any."""
    license_type = hub.catalog.license_type(lic.license_type)
    decision = decide(
        license_type, department=call.consumer.department, scopes=call.consumer.scopes
    )
    if decision == "consent_required":
        for h in lic.holders:
            covered = consented_types(
                session=session,
                holder_key=h.holder_key,
                consumer=call.consumer.name,
                purpose=call.purpose,
                now=hub.now(),
            )
            consent_id = consent_for(covered, lic.license_type)
            if consent_id is not None:
                return {lic.license_type: consent_id}
        raise ConsentRequiredError(
            "this license type is shared only with a holder's consent for this purpose"
        )
    if decision == "deny":
        # Not even whether it exists: the same answer as an unknown identifier.
        raise LicenseNotFoundError("no license has this identifier")
    return {}


def fetch_license(
    *, hub: Hub, session: Session, call: Call, license_id: str, audit: AuditSink
) -> dict[str, Any]:
    """One license version by identifier, whatever its status, if the consumer may see it."""
    now = hub.now()
    holder: str | None = None
    try:
        check_call(call, hub=hub, operation="fetch")
        lic = get_license(session=session, license_id=license_id)
        holder = lic.holders[0].holder_key if lic.holders else None
        consents = _readable(hub, session, call, lic)
        view = _license_view(hub, lic, hub.catalog.license_type(lic.license_type))
    except OneHubError as exc:
        audit(call.entry(at=now, action="fetch", holder_key=holder, result=exc.code))
        raise
    audit(
        call.entry(
            at=now,
            action="fetch",
            holder_key=holder,
            result="ok",
            licenses=(lic.license_id,),
            detail=_detail({lic.license_type: "allow"}, consents),
        )
    )
    return view


def annotated_copy(
    *,
    hub: Hub,
    session: Session,
    call: Call,
    license_id: str,
    expires: dt.datetime | None,
    audit: AuditSink,
) -> dict[str, Any]:
    """A signed annotated copy (加注件) of a valid license, bound to the call's service item,
    purpose and consumer until ``expires`` (default: a week, never past the license)."""
    now = hub.now()
    holder: str | None = None
    try:
        item = check_call(call, hub=hub, operation="copy", item_required=True)
        assert item is not None  # item_required
        lic = get_license(session=session, license_id=license_id)
        holder = lic.holders[0].holder_key if lic.holders else None
        consents = _readable(hub, session, call, lic)
        if lic.status != VALID or _expired(lic, china_today(now)):
            raise LicenseNotValidError(
                f"only a valid license can be annotated; this one is {lic.status}"
                if lic.status != VALID
                else "only a valid license can be annotated; this one has expired"
            )
        until = expires or now + DEFAULT_COPY_LIFETIME
        if expires is None and lic.valid_until is not None:
            until = min(until, end_of_day(lic.valid_until))
        signer = KeyRing(issuer_did=hub.issuer_did).signer(session=session, kek=hub.kek, now=now)
        copy = annotate(
            credential=_credential(hub, lic),
            purpose=call.purpose,
            service_item=item.code,
            service_item_name=item.name_zh,
            consumer=call.consumer.name,
            expires=until,
            signer=signer,
            now=now,
        )
    except OneHubError as exc:
        audit(call.entry(at=now, action="annotated_copy", holder_key=holder, result=exc.code))
        raise
    audit(
        call.entry(
            at=now,
            action="annotated_copy",
            holder_key=holder,
            result="ok",
            licenses=(lic.license_id,),
            detail={
                **_detail({lic.license_type: "allow"}, consents),
                "copy_id": copy["id"],
                "valid_until": copy["validUntil"],
            },
        )
    )
    return copy


def verify_presented(
    *, hub: Hub, session: Session, call: Call, credential: Mapping[str, Any], audit: AuditSink
) -> VerificationResult:
    """Check a presented credential: signature, issuer, status in this store, validity period."""
    now = hub.now()
    try:
        check_call(call, hub=hub, operation="verify")
    except OneHubError as exc:
        audit(call.entry(at=now, action="verify", holder_key=None, result=exc.code))
        raise
    keys = KeyRing(issuer_did=hub.issuer_did).key_set(session=session)
    claimed = _claimed_license(session, credential)
    holder = claimed.holders[0].holder_key if claimed is not None and claimed.holders else None
    try:
        verified = verify_credential(credential, keys=keys, now=now, session=session)
    except VerificationError as exc:
        result = VerificationResult(
            verified=False,
            reason=exc.code,
            license_id=claimed.license_id if claimed else None,
            license_type=claimed.license_type if claimed else None,
            status=claimed.status if claimed else None,
            issuer=None,
            issuer_bound=None,
            valid_from=None,
            valid_until=None,
        )
    else:
        result = VerificationResult(
            verified=True,
            reason=None,
            license_id=verified.license_id,
            license_type=claimed.license_type if claimed else None,
            status=verified.status,
            issuer=verified.issuer,
            issuer_bound=verified.issuer_bound,
            valid_from=verified.valid_from,
            valid_until=verified.valid_until,
        )
    audit(
        call.entry(
            at=now,
            action="verify",
            holder_key=holder,
            result="verified" if result.verified else f"not_verified:{result.reason}",
            licenses=(claimed.license_id,) if claimed is not None else (),
        )
    )
    return result


def _claimed_license(session: Session, credential: Mapping[str, Any]) -> License | None:
    license_id = license_id_of(credential.get("id"))
    if license_id is None or len(license_id) > 96:
        return None
    try:
        return get_license(session=session, license_id=license_id)
    except LicenseNotFoundError:
        return None


def holder_history(
    *,
    hub: Hub,
    session: Session,
    call: Call,
    id_number: str,
    holder_kind: HolderKind,
    limit: int,
    before_seq: int | None,
    audit: AuditSink,
) -> HistoryResult:
    """Every access to the holder's data, newest first, except rows still under embargo."""
    now = hub.now()
    try:
        check_call(call, hub=hub, operation="history")
        canonical, key = resolve_holder(hub, holder_kind, id_number)
    except OneHubError as exc:
        audit(call.entry(at=now, action="history", holder_key=None, result=exc.code))
        raise
    accesses = access_history(
        session=session,
        holder_key=key,
        today=china_today(now),
        limit=limit,
        before_seq=before_seq,
    )
    audit(call.entry(at=now, action="history", holder_key=key, result="ok"))
    return HistoryResult(holder_kind=holder_kind, id_masked=mask_id(canonical), accesses=accesses)
