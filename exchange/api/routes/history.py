"""POST /v1/access-history: every access to a holder's data (数据使用记录)."""

from __future__ import annotations

from fastapi import APIRouter

from exchange.access import Call
from exchange.api.deps import AuditDep, CallerDep, HubDep, RequestIdDep, SessionDep
from exchange.api.problem import responses
from exchange.api.schemas import AccessOut, HistoryRequest, HistoryResponse
from exchange.lookup import holder_history

router = APIRouter(prefix="/v1", tags=["access history"])


@router.post(
    "/access-history",
    response_model=HistoryResponse,
    summary="A holder's access history",
    responses=responses(401, 403, 413, 422, 429, 503),
)
def post_history(
    body: HistoryRequest,
    hub: HubDep,
    session: SessionDep,
    caller: CallerDep,
    audit: AuditDep,
    request_id: RequestIdDep,
) -> HistoryResponse:
    """Who read the holder's data, when, for what purpose and which licenses, newest first —
    including reads of licenses the holder shares with someone else (a marriage certificate).
    Entries a consumer with the audit:restrict right marked restricted appear only from their
    embargo date. For intake systems serving the holder in person."""
    call = Call(consumer=caller, purpose=body.purpose, request_id=request_id)
    result = holder_history(
        hub=hub,
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
