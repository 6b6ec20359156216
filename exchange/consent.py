"""Holders' consents (授權): a consumer may read conditional-share licenses for one purpose.

An intake system records the consent and vouches that it authenticated the holder. A consent
names the consumer it is for (by default the one recording it), the purpose (compared after
collapsing whitespace), optionally the license types it covers (default: every conditional type),
and an expiry; it can be revoked by the consumer that recorded it or the one it is for.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog_schemas.catalog import Catalog
from catalog_schemas.errors import ConflictError, NotFoundError, OneHubError, ValidationFailedError
from catalog_schemas.holder import HolderKind
from exchange.access import AuditSink, Call, check_call, resolve_holder
from exchange.audit import append
from exchange.consumer import get_consumer
from exchange.hub import Hub
from exchange.model import Consent

MAX_CONSENT_DAYS: Final = 366
ALL_TYPES: Final = "*"


class ConsentNotFoundError(NotFoundError):
    """No consent with this id that the caller recorded or may use."""

    code = "consent_not_found"


def normalise_purpose(purpose: str) -> str:
    """The purpose with runs of whitespace collapsed, as consents compare it."""
    return " ".join(purpose.split())


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes, which the hub always stores in UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def record_consent(
    *,
    session: Session,
    catalog: Catalog,
    holder_key: str,
    consumer: str,
    recorded_by: str,
    purpose: str,
    license_types: Sequence[str],
    expires_at: dt.datetime,
    now: dt.datetime,
) -> Consent:
    """Store a consent in the caller's transaction and return it."""
    if expires_at.utcoffset() is None:
        raise ValidationFailedError(
            "expires_at needs a time zone (e.g. 2026-12-01T18:00:00+08:00)", code="consent_expiry"
        )
    if expires_at <= now:
        raise ValidationFailedError("expires_at must be in the future", code="consent_expiry")
    if expires_at > now + dt.timedelta(days=MAX_CONSENT_DAYS):
        raise ValidationFailedError(
            f"a consent lasts at most {MAX_CONSENT_DAYS} days", code="consent_expiry"
        )
    types = list(dict.fromkeys(license_types))
    for code in types:
        found = catalog.license_types.get(code)
        if found is None or found.sharing.sharing_class != "conditional":
            raise ValidationFailedError(
                f"{code!r} is not a conditional-share license type; a consent covers only those",
                code="consent_license_type",
            )
    consent = Consent(
        id=secrets.token_hex(16),
        holder_key=holder_key,
        consumer=consumer,
        purpose=normalise_purpose(purpose),
        license_types=types,
        recorded_by=recorded_by,
        granted_at=now,
        expires_at=expires_at.astimezone(dt.UTC),
        revoked_at=None,
        revoked_by=None,
    )
    session.add(consent)
    session.flush()
    return consent


def revoke_consent(
    *,
    session: Session,
    consent_id: str,
    by: str,
    now: dt.datetime,
    holder_key: str | None = None,
) -> Consent:
    """Revoke a consent recorded by or for ``by`` or, with ``holder_key``, any consent of that
    holder (at the holder's request); ConflictError if it was already revoked."""
    consent = session.get(Consent, consent_id, with_for_update=True)
    if holder_key is not None:
        if consent is None or consent.holder_key != holder_key:
            raise ConsentNotFoundError("the holder has no consent with this id")
    elif consent is None or by not in (consent.consumer, consent.recorded_by):
        raise ConsentNotFoundError("no consent with this id was recorded by or for you")
    if consent.revoked_at is not None:
        raise ConflictError("this consent was already revoked", code="consent_revoked")
    consent.revoked_at = now
    consent.revoked_by = by
    session.flush()
    return consent


_CONSENTS = cast(sa.Table, Consent.__table__)


def consents_for_holder(consumer: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """The consents of ``holder_key`` (a bind parameter) for ``consumer``, oldest first."""
    return (
        sa.select(
            _CONSENTS.c.id,
            _CONSENTS.c.purpose,
            _CONSENTS.c.license_types,
            _CONSENTS.c.expires_at,
            _CONSENTS.c.revoked_at,
            _CONSENTS.c.granted_at,
        )
        .where(
            _CONSENTS.c.holder_key == sa.bindparam("holder_key"), _CONSENTS.c.consumer == consumer
        )
        .order_by(_CONSENTS.c.granted_at)
    )


_FOR_HOLDER = consents_for_holder(sa.bindparam("consumer"))


def consented_types(
    *, session: Session, holder_key: str, consumer: str, purpose: str, now: dt.datetime
) -> dict[str, str]:
    """License type (or ``*`` for all) -> id of an active consent covering this call."""
    rows = session.connection().execute(
        _FOR_HOLDER, {"holder_key": holder_key, "consumer": consumer}
    )
    return covering(rows.mappings(), purpose=purpose, now=now)


# The query of consented_types, for readers that run it on their own driver (exchange.reader).
CONSENTS_FOR_HOLDER = _FOR_HOLDER


def covering(
    rows: Iterable[Mapping[Any, Any]], *, purpose: str, now: dt.datetime
) -> dict[str, str]:
    """License type (or ``*``) -> consent id, from the rows of CONSENTS_FOR_HOLDER."""
    wanted = normalise_purpose(purpose)
    found: dict[str, str] = {}
    for row in rows:
        if (
            row["purpose"] != wanted
            or row["revoked_at"] is not None
            or _aware(row["expires_at"]) <= now
        ):
            continue
        for code in row["license_types"] or [ALL_TYPES]:
            found.setdefault(code, row["id"])
    return found


def consent_for(covered: Mapping[str, str], license_type: str) -> str | None:
    """The id of the consent covering ``license_type``, if any."""
    return covered.get(license_type) or covered.get(ALL_TYPES)


def give(
    *,
    hub: Hub,
    session: Session,
    call: Call,
    id_number: str,
    holder_kind: HolderKind,
    for_consumer: str | None,
    license_types: Sequence[str],
    expires_at: dt.datetime,
    audit: AuditSink,
) -> Consent:
    """Record a holder's consent and its audit row in one transaction (the caller commits)."""
    now = hub.now()
    key: str | None = None
    try:
        check_call(call, hub=hub, operation="consent")
        _canonical, key = resolve_holder(hub, holder_kind, id_number)
        beneficiary = (
            get_consumer(session=session, name=for_consumer).name
            if for_consumer is not None
            else call.consumer.name
        )
        consent = record_consent(
            session=session,
            catalog=hub.catalog,
            holder_key=key,
            consumer=beneficiary,
            recorded_by=call.consumer.name,
            purpose=call.purpose,
            license_types=license_types,
            expires_at=expires_at,
            now=now,
        )
    except OneHubError as exc:
        session.rollback()
        audit(call.entry(at=now, action="consent_record", holder_key=key, result=exc.code))
        raise
    append(
        session=session,
        entry=call.entry(
            at=now,
            action="consent_record",
            holder_key=key,
            result="ok",
            detail={
                "consent_id": consent.id,
                "consumer": consent.consumer,
                "license_types": list(consent.license_types),
                "expires_at": consent.expires_at.isoformat(),
            },
        ),
    )
    return consent


def revoke(*, hub: Hub, session: Session, call: Call, consent_id: str, audit: AuditSink) -> Consent:
    """Revoke a consent and audit it in one transaction (the caller commits)."""
    now = hub.now()
    try:
        check_call(call, hub=hub, operation="consent")
        consent = revoke_consent(
            session=session, consent_id=consent_id, by=call.consumer.name, now=now
        )
    except OneHubError as exc:
        session.rollback()
        audit(call.entry(at=now, action="consent_revoke", holder_key=None, result=exc.code))
        raise
    append(
        session=session,
        entry=call.entry(
            at=now,
            action="consent_revoke",
            holder_key=consent.holder_key,
            result="ok",
            detail={"consent_id": consent.id},
        ),
    )
    return consent


def holder_consents(
    *,
    hub: Hub,
    session: Session,
    call: Call,
    id_number: str,
    holder_kind: HolderKind,
    include_inactive: bool,
    audit: AuditSink,
) -> tuple[str, list[Consent]]:
    """The holder's consents, newest first, for an intake system serving the holder in person.

    Returns the canonical ID number (for masking) and the consents: active ones only, or also
    the revoked and expired ones. Audited like the access history.
    """
    now = hub.now()
    try:
        check_call(call, hub=hub, operation="history")
        canonical, key = resolve_holder(hub, holder_kind, id_number)
    except OneHubError as exc:
        audit(call.entry(at=now, action="consent_list", holder_key=None, result=exc.code))
        raise
    found = list(
        session.scalars(
            sa.select(Consent)
            .where(Consent.holder_key == key)
            .order_by(Consent.granted_at.desc(), Consent.id)
        )
    )
    if not include_inactive:
        found = [c for c in found if c.revoked_at is None and _aware(c.expires_at) > now]
    audit(
        call.entry(
            at=now,
            action="consent_list",
            holder_key=key,
            result="ok",
            detail={"consents": [c.id for c in found]},
        )
    )
    return canonical, found


def revoke_for_holder(
    *,
    hub: Hub,
    session: Session,
    call: Call,
    consent_id: str,
    id_number: str,
    holder_kind: HolderKind,
    audit: AuditSink,
) -> Consent:
    """Revoke one of the holder's consents at the holder's request, whoever recorded it.

    The calling intake system vouches that it authenticated the holder, as when it records a
    consent; the consent must be the holder's (to anyone else it does not exist). The caller
    commits.
    """
    now = hub.now()
    key: str | None = None
    try:
        check_call(call, hub=hub, operation="consent")
        _canonical, key = resolve_holder(hub, holder_kind, id_number)
        consent = revoke_consent(
            session=session, consent_id=consent_id, by=call.consumer.name, now=now, holder_key=key
        )
    except OneHubError as exc:
        session.rollback()
        audit(call.entry(at=now, action="consent_revoke", holder_key=key, result=exc.code))
        raise
    append(
        session=session,
        entry=call.entry(
            at=now,
            action="consent_revoke",
            holder_key=key,
            result="ok",
            detail={"consent_id": consent.id, "at_holder_request": True},
        ),
    )
    return consent
