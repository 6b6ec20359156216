"""POST /v1/lookups: one-number lookup; POST /v1/material-checks: what a counter may skip."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from exchange.api.deps import AuditRecorder, BearerDep, encoded_response, item_call, serve_read
from exchange.api.problem import responses
from exchange.api.schemas import (
    LookupRequest,
    LookupResponse,
    MaterialCheckRequest,
    MaterialCheckResponse,
)
from exchange.lookup import HolderHint, LookupResult, check_materials, holder_hint, lookup
from exchange.model import Consumer
from exchange.reader import Prefetched

router = APIRouter(prefix="/v1", tags=["lookups"])


def _hint(request: Request, body: LookupRequest | MaterialCheckRequest) -> HolderHint | None:
    return holder_hint(
        request.app.state.hub,
        service_item=body.service_item,
        holder_kind=body.holder_kind,
        id_number=body.id_number,
    )


@router.post(
    "/lookups",
    response_model=LookupResponse,
    summary="One-number lookup (一號申辦)",
    responses=responses(400, 401, 403, 404, 413, 422, 429, 503),
)
async def post_lookup(body: LookupRequest, request: Request, credentials: BearerDep) -> Response:
    """The licenses of one holder that the caller may see, each with its status, provenance
    and signed credential. Conditional-share types are listed under `withheld` with reason
    `consent_required` until the holder's consent for this consumer and purpose is recorded.
    Intake systems (counter, online_hall, kiosk) must name the service item; the lookup then
    covers only the license types of its materials. Every call is audited before the answer
    leaves."""
    hint = _hint(request, body)

    async def work(caller: Consumer, audit: AuditRecorder, rows: Prefetched | None) -> LookupResult:
        return lookup(
            prefetched=rows,
            hint=hint,
            hub=request.app.state.hub,
            call=item_call(caller, body, request),
            id_number=body.id_number,
            holder_kind=body.holder_kind,
            audit=audit,
        )

    return encoded_response(
        await serve_read(request, credentials, work, holder_key=hint.key if hint else None)
    )


@router.post(
    "/material-checks",
    response_model=MaterialCheckResponse,
    summary="Material check for a service item (免提交)",
    responses=responses(400, 401, 403, 404, 413, 422, 429, 503),
)
async def post_material_check(
    body: MaterialCheckRequest, request: Request, credentials: BearerDep
) -> Response:
    """For each material the service item requires: `covered` (with the licenses that cover
    it), `missing` (with the reason: applicant_supplies, not_shared, no_valid_license) or
    `consent_required`. `paper_needed` lists what the applicant must still bring."""
    hint = _hint(request, body)

    async def work(
        caller: Consumer, audit: AuditRecorder, rows: Prefetched | None
    ) -> dict[str, Any]:
        result = check_materials(
            prefetched=rows,
            hint=hint,
            hub=request.app.state.hub,
            call=item_call(caller, body, request),
            id_number=body.id_number,
            holder_kind=body.holder_kind,
            audit=audit,
        )
        return {
            "service_item": result.service_item,
            "holder_kind": result.holder_kind,
            "id_masked": result.id_masked,
            "materials": result.materials,
            "paper_needed": result.paper_needed,
        }

    return encoded_response(
        await serve_read(request, credentials, work, holder_key=hint.key if hint else None)
    )
