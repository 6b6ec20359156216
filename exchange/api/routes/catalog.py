"""GET /v1/catalog/*: license types, service items and sharing conditions (public)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from exchange.api.deps import HubDep
from exchange.api.schemas import LicenseTypeOut, SharingOut
from exchange.sharing import INTAKE_KINDS, KIND_OPERATIONS, OPERATIONS

router = APIRouter(prefix="/v1/catalog", tags=["catalog"])

SHARING_CLASSES = {
    "unconditional": "無條件共享: every reader department's consumers get it",
    "conditional": "有條件共享: a reader department's consumers get it with the holder's consent "
    "for that consumer and purpose",
    "not_shared": "不予共享: never served through the exchange",
}


@router.get(
    "/license-types",
    response_model=list[LicenseTypeOut],
    summary="License types and their sharing conditions",
)
def license_types(hub: HubDep) -> list[LicenseTypeOut]:
    return [
        LicenseTypeOut(
            code=lt.code,
            name_zh=lt.name_zh,
            name_en=lt.name_en,
            issuer=lt.issuer,
            sharing_class=lt.sharing.sharing_class,
            readers=list(lt.sharing.readers),
            legal_basis=lt.sharing.legal_basis,
        )
        for lt in hub.catalog.license_types.values()
    ]


@router.get("/service-items", summary="Service items and their required materials")
def service_items(hub: HubDep) -> list[dict[str, Any]]:
    return [item.model_dump(mode="json") for item in hub.catalog.service_items.values()]


@router.get(
    "/sharing",
    response_model=SharingOut,
    summary="Sharing classes and what each consumer kind does",
)
def sharing() -> SharingOut:
    return SharingOut(
        classes=SHARING_CLASSES,
        operations=dict(OPERATIONS),
        kinds={kind: list(ops) for kind, ops in KIND_OPERATIONS.items()},
        intake_kinds=sorted(INTAKE_KINDS),
    )
