"""One license by identifier, an annotated copy of it, and verifying a presented one."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy.orm import Session

from exchange.access import Call
from exchange.api.deps import AuditRecorder, BearerDep, item_call, request_id_of, serve_call
from exchange.api.problem import responses
from exchange.api.schemas import (
    AnnotatedCopyOut,
    AnnotatedCopyRequest,
    LicenseOut,
    VerificationRequest,
    VerificationResponse,
)
from exchange.lookup import annotated_copy, fetch_license, verify_presented
from exchange.model import Consumer

router = APIRouter(prefix="/v1", tags=["licenses"])

LicenseId = Annotated[
    str,
    Path(
        max_length=96,
        pattern=r"^[0-9A-Za-z.]+$",
        description="National e-license identifier 1.2.156.3005.2.…",
        examples=["1.2.156.3005.2.114400000000000505001.114400000000000505.1.1.K"],
    ),
]


@router.get(
    "/licenses/{license_id}",
    response_model=LicenseOut,
    summary="Fetch one license by identifier",
    responses=responses(401, 403, 404, 422, 429, 503),
)
async def get_license_by_id(
    license_id: LicenseId,
    purpose: Annotated[str, Query(min_length=2, max_length=256, description="用證事由 (audited)")],
    request: Request,
    credentials: BearerDep,
    service_item: Annotated[str | None, Query(max_length=64)] = None,
    restricted_until: Annotated[dt.date | None, Query()] = None,
) -> LicenseOut:
    """One license version, whatever its status (superseded, revoked, ... are shown as such).
    A type not shared with the caller answers 404 like an unknown identifier; a conditional
    type without the consent of one of its holders answers 403 `consent_required`."""

    def work(session: Session, caller: Consumer, audit: AuditRecorder) -> LicenseOut:
        call = Call(
            consumer=caller,
            purpose=purpose,
            service_item=service_item,
            request_id=request_id_of(request),
            restricted_until=restricted_until,
        )
        view = fetch_license(
            hub=request.app.state.hub,
            session=session,
            call=call,
            license_id=license_id,
            audit=audit,
        )
        return LicenseOut.model_validate(view)

    return await serve_call(request, credentials, work)


@router.post(
    "/licenses/{license_id}/annotated-copies",
    response_model=AnnotatedCopyOut,
    status_code=201,
    summary="Request an annotated copy (加注件)",
    responses=responses(400, 401, 403, 404, 409, 413, 422, 429, 503),
)
async def post_annotated_copy(
    license_id: LicenseId, body: AnnotatedCopyRequest, request: Request, credentials: BearerDep
) -> AnnotatedCopyOut:
    """A credential of its own, signed by the hub, that embeds the license unchanged and binds
    it to this purpose, service item and consumer until `expires_at`: "only for handling
    <item>, valid until <date>". Only a valid license the caller may see can be copied (409
    `license_not_valid` otherwise)."""

    def work(session: Session, caller: Consumer, audit: AuditRecorder) -> AnnotatedCopyOut:
        call = item_call(caller, body, request_id_of(request))
        copy = annotated_copy(
            hub=request.app.state.hub,
            session=session,
            call=call,
            license_id=license_id,
            expires=body.expires_at,
            audit=audit,
        )
        session.commit()  # a first signing key, if the hub had none
        return AnnotatedCopyOut(
            copy_id=copy["id"],
            license_id=license_id,
            valid_until=copy["validUntil"],
            credential=copy,
        )

    return await serve_call(request, credentials, work, write=True)


@router.post(
    "/verifications",
    response_model=VerificationResponse,
    summary="Verify a presented credential (signature, status, expiry)",
    responses=responses(400, 401, 403, 413, 422, 429, 503),
)
async def post_verification(
    body: VerificationRequest, request: Request, credentials: BearerDep
) -> VerificationResponse:
    """Checks the eddsa-jcs-2022 proof against the hub's keys, that the key belongs to the
    issuer, the license's status in this hub, and its validity period. A credential that fails
    is a normal answer (`verified: false` with the reason), not an error. The credential's
    content (it holds ID numbers) is never echoed."""

    def work(session: Session, caller: Consumer, audit: AuditRecorder) -> VerificationResponse:
        call = Call(consumer=caller, purpose=body.purpose, request_id=request_id_of(request))
        result = verify_presented(
            hub=request.app.state.hub,
            session=session,
            call=call,
            credential=body.credential,
            audit=audit,
        )
        return VerificationResponse.model_validate(result, from_attributes=True)

    return await serve_call(request, credentials, work)
