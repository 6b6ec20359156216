"""POST /v1/access-history: every access to a holder's data (数据使用记录); POST
/v1/holder-consents: the holder's consents (授權), for the holder's own page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from catalog_schemas.holder import mask_id
from exchange.access import Call
from exchange.api.deps import AuditRecorder, BearerDep, request_id_of, serve_call
from exchange.api.problem import responses
from exchange.api.routes.consents import consent_out
from exchange.api.schemas import (
    EXAMPLE_ID,
    AccessOut,
    ConsentOut,
    HistoryRequest,
    HistoryResponse,
    HolderKindField,
)
from exchange.consent import holder_consents
from exchange.lookup import holder_history
from exchange.model import Consumer

router = APIRouter(prefix="/v1", tags=["access history"])


@router.post(
    "/access-history",
    response_model=HistoryResponse,
    summary="A holder's access history",
    responses=responses(400, 401, 403, 413, 422, 429, 503),
)
async def post_history(
    body: HistoryRequest, request: Request, credentials: BearerDep
) -> HistoryResponse:
    """Who read the holder's data, when, for what purpose and which licenses, newest first —
    including reads of licenses the holder shares with someone else (a marriage certificate).
    Entries a consumer with the audit:restrict right marked restricted appear only from their
    embargo date. For intake systems serving the holder in person."""

    def work(session: Session, caller: Consumer, audit: AuditRecorder) -> HistoryResponse:
        call = Call(consumer=caller, purpose=body.purpose, request_id=request_id_of(request))
        result = holder_history(
            hub=request.app.state.hub,
            session=session,
            call=call,
            id_number=body.id_number,
            holder_kind=body.holder_kind,
            limit=body.limit,
            before_seq=body.before_seq,
            audit=audit,
        )
        accesses = [
            AccessOut(
                seq=a.seq,
                at=a.at,
                consumer=a.consumer,
                consumer_kind=a.consumer_kind,
                department=a.department,
                action=a.action,
                purpose=a.purpose,
                service_item=a.service_item,
                licenses=list(a.licenses),
                result=a.result,
            )
            for a in result.accesses
        ]
        return HistoryResponse(
            holder_kind=result.holder_kind,
            id_masked=result.id_masked,
            accesses=accesses,
            next_before_seq=accesses[-1].seq if len(accesses) == body.limit else None,
        )

    return await serve_call(request, credentials, work)


class ConsentSearchRequest(BaseModel):
    """The holder whose consents an intake system shows them (the caller vouches for them)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id_number": EXAMPLE_ID,
                    "holder_kind": "natural_person",
                    "purpose": "持证人查询本人授权",
                    "include_inactive": False,
                }
            ]
        },
    )

    id_number: str = Field(min_length=1, max_length=64)
    holder_kind: HolderKindField = "natural_person"
    purpose: str = Field(min_length=2, max_length=256, description="Why (audited)")
    include_inactive: bool = Field(
        default=False, strict=True, description="Also the revoked and expired consents"
    )


class ConsentList(BaseModel):
    """A holder's consents, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "holder_kind": "natural_person",
                    "id_masked": "110105********002X",
                    "consents": [ConsentOut.model_config["json_schema_extra"]["examples"][0]],  # type: ignore[index]
                }
            ]
        }
    )

    holder_kind: HolderKindField
    id_masked: str
    consents: list[ConsentOut]


@router.post(
    "/holder-consents",
    response_model=ConsentList,
    summary="A holder's consents (for the holder, through an intake system)",
    responses=responses(400, 401, 403, 413, 422, 429, 503),
)
async def search_consents(
    body: ConsentSearchRequest, request: Request, credentials: BearerDep
) -> ConsentList:
    """Every consent the holder gave, whoever recorded it and whoever it is for, newest first:
    active ones, or with `include_inactive` also the revoked and expired ones. For intake
    systems serving the holder in person (the history scope); audited like the access history.
    The ID number travels in the body, never in the URL."""

    def work(session: Session, caller: Consumer, audit: AuditRecorder) -> ConsentList:
        call = Call(consumer=caller, purpose=body.purpose, request_id=request_id_of(request))
        canonical, found = holder_consents(
            hub=request.app.state.hub,
            session=session,
            call=call,
            id_number=body.id_number,
            holder_kind=body.holder_kind,
            include_inactive=body.include_inactive,
            audit=audit,
        )
        return ConsentList(
            holder_kind=body.holder_kind,
            id_masked=mask_id(canonical),
            consents=[consent_out(c) for c in found],
        )

    return await serve_call(request, credentials, work)
