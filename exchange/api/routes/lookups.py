"""POST /v1/lookups: one-number lookup; POST /v1/material-checks: what a counter may skip.

The two calls are also served by :mod:`exchange.api.hot` without the framework's layers (a
well-formed request's body decoded by msgspec); both ways run :func:`run_lookup` and
:func:`run_material_check`, and whatever the hot path does not take comes here.
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import APIRouter, Request, Response
from starlette.datastructures import State

from catalog_schemas.holder import HolderKind
from exchange.api.deps import (
    AuditRecorder,
    BearerDep,
    ItemCallBody,
    encoded_response,
    item_call,
    presented_key,
    request_id_of,
    serve_read,
)
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


class HolderCallBody(ItemCallBody, Protocol):
    """The body of a lookup or material check (LookupRequest, MaterialCheckRequest, or the hot
    path's msgspec structs)."""

    @property
    def id_number(self) -> str: ...

    @property
    def holder_kind(self) -> HolderKind | None: ...


def _hint(state: State, body: HolderCallBody) -> HolderHint | None:
    return holder_hint(
        state.hub,
        service_item=body.service_item,
        holder_kind=body.holder_kind,
        id_number=body.id_number,
    )


async def run_lookup(
    state: State, body: HolderCallBody, presented: str | None, request_id: str | None
) -> LookupResult:
    """A lookup's answer, once its audit row is durable (or the OneHubError that refuses it)."""
    hint = _hint(state, body)

    async def work(caller: Consumer, audit: AuditRecorder, rows: Prefetched | None) -> LookupResult:
        return lookup(
            prefetched=rows,
            hint=hint,
            hub=state.hub,
            call=item_call(caller, body, request_id),
            id_number=body.id_number,
            holder_kind=body.holder_kind,
            audit=audit,
        )

    return await serve_read(state, presented, work, holder_key=hint.key if hint else None)


async def run_material_check(
    state: State, body: HolderCallBody, presented: str | None, request_id: str | None
) -> dict[str, Any]:
    """A material check's answer, once its audit row is durable."""
    hint = _hint(state, body)

    async def work(
        caller: Consumer, audit: AuditRecorder, rows: Prefetched | None
    ) -> dict[str, Any]:
        result = check_materials(
            prefetched=rows,
            hint=hint,
            hub=state.hub,
            call=item_call(caller, body, request_id),
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

    return await serve_read(state, presented, work, holder_key=hint.key if hint else None)


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
    return encoded_response(
        await run_lookup(
            request.app.state, body, presented_key(credentials), request_id_of(request)
        )
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
    return encoded_response(
        await run_material_check(
            request.app.state, body, presented_key(credentials), request_id_of(request)
        )
    )
