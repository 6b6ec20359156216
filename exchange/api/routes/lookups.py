"""POST /v1/lookups: one-number lookup."""

from __future__ import annotations

from fastapi import APIRouter

from catalog_schemas.errors import OneHubError
from exchange.api.deps import CallerDep, HubDep, SessionDep
from exchange.api.schemas import LookupRequest, LookupResponse
from exchange.lookup import lookup

router = APIRouter(prefix="/v1/lookups", tags=["lookups"])


@router.post("", response_model=LookupResponse, summary="One-number lookup (一號申辦)")
def post_lookup(
    body: LookupRequest, hub: HubDep, session: SessionDep, caller: CallerDep
) -> LookupResponse:
    """The valid licenses of one holder that the caller may see; every call is audited."""
    try:
        result = lookup(
            hub=hub,
            session=session,
            consumer=caller,
            id_number=body.id_number,
            holder_kind=body.holder_kind,
            purpose=body.purpose,
            service_item=body.service_item,
        )
    except OneHubError:
        session.commit()  # the audit row of a refused lookup is kept
        raise
    session.commit()  # the audit row is durable before the response leaves
    return LookupResponse.model_validate(result, from_attributes=True)
