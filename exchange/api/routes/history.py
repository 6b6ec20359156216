"""POST /v1/access-history: every access to a holder's data (数据使用记录)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from exchange.access import Call
from exchange.api.deps import AuditRecorder, BearerDep, request_id_of, serve_call
from exchange.api.problem import responses
from exchange.api.schemas import AccessOut, HistoryRequest, HistoryResponse
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
