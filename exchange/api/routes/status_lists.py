"""Bitstring Status Lists: the signed revocation and suspension lists verifiers fetch."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Response

from exchange.api.deps import SessionDep
from license_store.status_list import PATH, stored_list

router = APIRouter(tags=["status-lists"])

# W3C VC 2.0 registers application/vc for credentials secured with an embedded proof.
MEDIA_TYPE = "application/vc"


@router.get(
    PATH + "/{purpose}/{list_id}",
    summary="A signed BitstringStatusListCredential (public: verifiers need no account)",
    response_class=Response,
    responses={
        200: {"content": {MEDIA_TYPE: {}}, "description": "The status list credential"},
        304: {"description": "Not modified since the ETag given in If-None-Match"},
        404: {"description": "No list of this purpose and id has been published"},
    },
)
def status_list(
    purpose: Literal["revocation", "suspension"],
    list_id: Annotated[int, Path(ge=0, le=1_000_000)],
    session: SessionDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    row = stored_list(session=session, purpose=purpose, list_id=list_id)
    # Each publication bumps the sequence, so the ETag changes exactly when the list does.
    headers = {"ETag": f'"{purpose}-{list_id}-{row.sequence}"', "Cache-Control": "max-age=300"}
    if if_none_match == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return Response(row.credential.encode("utf-8"), media_type=MEDIA_TYPE, headers=headers)
