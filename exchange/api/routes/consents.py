"""POST /v1/consents: record a holder's consent; DELETE /v1/consents/{id}: revoke it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from exchange.access import Call
from exchange.api.deps import AuditDep, CallerDep, HubDep, RequestIdDep, WriteSessionDep
from exchange.api.problem import responses
from exchange.api.schemas import ConsentOut, ConsentRequest
from exchange.consent import give, revoke
from exchange.model import Consent

router = APIRouter(prefix="/v1/consents", tags=["consents"])


def _out(consent: Consent) -> ConsentOut:
    return ConsentOut(
        consent_id=consent.id,
        consumer=consent.consumer,
        recorded_by=consent.recorded_by,
        purpose=consent.purpose,
        license_types=list(consent.license_types),
        granted_at=consent.granted_at,
        expires_at=consent.expires_at,
        revoked_at=consent.revoked_at,
    )


@router.post(
    "",
    response_model=ConsentOut,
    status_code=201,
    summary="Record a holder's consent (授權)",
    responses=responses(401, 403, 404, 413, 422, 429, 503),
)
def post_consent(
    body: ConsentRequest,
    hub: HubDep,
    session: WriteSessionDep,
    caller: CallerDep,
    audit: AuditDep,
    request_id: RequestIdDep,
) -> JSONResponse:
    """The calling intake system vouches that it authenticated the holder. The consent lets
    `consumer` (default: the caller) read the holder's conditional-share licenses of
    `license_types` (default: all) for exactly this `purpose` until `expires_at`."""
    call = Call(consumer=caller, purpose=body.purpose, request_id=request_id)
    consent = give(
        hub=hub,
        session=session,
        call=call,
        id_number=body.id_number,
        holder_kind=body.holder_kind,
        for_consumer=body.consumer,
        license_types=body.license_types,
        expires_at=body.expires_at,
        audit=audit,
    )
    out = _out(consent)
    session.commit()  # the consent and its audit row, durable before the response leaves
    return JSONResponse(
        out.model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"/v1/consents/{consent.id}"},
    )


@router.delete(
    "/{consent_id}",
    response_model=ConsentOut,
    summary="Revoke a consent",
    responses=responses(401, 403, 404, 409, 422, 429, 503),
)
def delete_consent(
    consent_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
    hub: HubDep,
    session: WriteSessionDep,
    caller: CallerDep,
    audit: AuditDep,
    request_id: RequestIdDep,
    purpose: Annotated[
        str, Query(min_length=2, max_length=256, description="Why (audited)")
    ] = "holder revoked consent",
) -> ConsentOut:
    """Only the consumer that recorded the consent or the one it is for may revoke it; to any
    other caller it does not exist. Revoking twice answers 409 `consent_revoked`."""
    call = Call(consumer=caller, purpose=purpose, request_id=request_id)
    consent = revoke(hub=hub, session=session, call=call, consent_id=consent_id, audit=audit)
    out = _out(consent)
    session.commit()
    return out
