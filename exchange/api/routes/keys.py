"""Public keys: the hub's DID document (did:web) and a JWKS."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from exchange.api.deps import HubDep, SessionDep
from license_store.key import KeyRing

router = APIRouter(tags=["keys"])


@router.get("/.well-known/did.json", summary="The hub's DID document (did:web)")
def did_document(hub: HubDep, session: SessionDep) -> dict[str, Any]:
    return KeyRing(issuer_did=hub.issuer_did).did_document(session=session)


@router.get("/v1/keys", summary="The hub's public signing keys as a JWKS")
def jwks(hub: HubDep, session: SessionDep) -> dict[str, Any]:
    return KeyRing(issuer_did=hub.issuer_did).jwks(session=session)
