"""POST /v1/consents: record a holder's consent; DELETE /v1/consents/{id}: revoke it;
POST /v1/consents/{id}/revocations: the holder revokes one through any intake system that
vouches for them (their consents are listed by POST /v1/holder-consents, routes/history.py)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from exchange.access import Call
from exchange.api.deps import AuditRecorder, BearerDep, request_id_of, serve_call
from exchange.api.problem import responses
from exchange.api.schemas import EXAMPLE_ID, ConsentOut, ConsentRequest, HolderKindField
from exchange.consent import give, revoke, revoke_for_holder
from exchange.model import Consent, Consumer

router = APIRouter(prefix="/v1/consents", tags=["consents"])

ConsentId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


class HolderRevocationRequest(BaseModel):
    """The holder, present at an intake system that authenticated them, revokes a consent."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id_number": EXAMPLE_ID,
                    "holder_kind": "natural_person",
                    "purpose": "持证人撤回授权",
                }
            ]
        },
    )

    id_number: str = Field(min_length=1, max_length=64)
    holder_kind: HolderKindField = "natural_person"
    purpose: str = Field(
        default="holder revoked consent", min_length=2, max_length=256, description="Audited"
    )


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes, which the hub always stores in UTC.
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


def consent_out(consent: Consent) -> ConsentOut:
    """A stored consent as the API shows it."""
    return ConsentOut(
        consent_id=consent.id,
        consumer=consent.consumer,
        recorded_by=consent.recorded_by,
        purpose=consent.purpose,
        license_types=list(consent.license_types),
        granted_at=_utc(consent.granted_at),  # type: ignore[arg-type]
        expires_at=_utc(consent.expires_at),  # type: ignore[arg-type]
        revoked_at=_utc(consent.revoked_at),
    )


@router.post(
    "",
    response_model=ConsentOut,
    status_code=201,
    summary="Record a holder's consent (授權)",
    responses=responses(400, 401, 403, 404, 413, 422, 429, 503),
)
async def post_consent(
    body: ConsentRequest, request: Request, credentials: BearerDep
) -> JSONResponse:
    """The calling intake system vouches that it authenticated the holder. The consent lets
    `consumer` (default: the caller) read the holder's conditional-share licenses of
    `license_types` (default: all) for exactly this `purpose` until `expires_at`."""

    def work(session: Session, caller: Consumer, audit: AuditRecorder) -> ConsentOut:
        call = Call(consumer=caller, purpose=body.purpose, request_id=request_id_of(request))
        consent = give(
            hub=request.app.state.hub,
            session=session,
            call=call,
            id_number=body.id_number,
            holder_kind=body.holder_kind,
            for_consumer=body.consumer,
            license_types=body.license_types,
            expires_at=body.expires_at,
            audit=audit,
        )
        out = consent_out(consent)
        session.commit()  # the consent and its audit row, durable before the response leaves
        return out

    out = await serve_call(request, credentials, work, write=True)
    return JSONResponse(
        out.model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"/v1/consents/{out.consent_id}"},
    )


@router.delete(
    "/{consent_id}",
    response_model=ConsentOut,
    summary="Revoke a consent",
    responses=responses(401, 403, 404, 409, 422, 429, 503),
)
async def delete_consent(
    consent_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
    request: Request,
    credentials: BearerDep,
    purpose: Annotated[
        str, Query(min_length=2, max_length=256, description="Why (audited)")
    ] = "holder revoked consent",
) -> ConsentOut:
    """Only the consumer that recorded the consent or the one it is for may revoke it; to any
    other caller it does not exist. Revoking twice answers 409 `consent_revoked`."""

    def work(session: Session, caller: Consumer, audit: AuditRecorder) -> ConsentOut:
        call = Call(consumer=caller, purpose=purpose, request_id=request_id_of(request))
        consent = revoke(
            hub=request.app.state.hub,
            session=session,
            call=call,
            consent_id=consent_id,
            audit=audit,
        )
        out = consent_out(consent)
        session.commit()
        return out

    return await serve_call(request, credentials, work, write=True)


@router.post(
    "/{consent_id}/revocations",
    response_model=ConsentOut,
    summary="The holder revokes one of their consents",
    responses=responses(400, 401, 403, 404, 409, 413, 422, 429, 503),
)
async def post_holder_revocation(
    consent_id: ConsentId,
    body: HolderRevocationRequest,
    request: Request,
    credentials: BearerDep,
) -> ConsentOut:
    """Revoke a consent of the holder named in the body, whichever consumer recorded it: the
    calling intake system vouches that it authenticated the holder, as when it records one. A
    consent of another holder does not exist to this call (404); revoking twice answers 409
    `consent_revoked`."""

    def work(session: Session, caller: Consumer, audit: AuditRecorder) -> ConsentOut:
        call = Call(consumer=caller, purpose=body.purpose, request_id=request_id_of(request))
        consent = revoke_for_holder(
            hub=request.app.state.hub,
            session=session,
            call=call,
            consent_id=consent_id,
            id_number=body.id_number,
            holder_kind=body.holder_kind,
            audit=audit,
        )
        out = consent_out(consent)
        session.commit()  # the revocation and its audit row together
        return out

    return await serve_call(request, credentials, work, write=True)
