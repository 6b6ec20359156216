"""GET /v1/catalog/*: license types, service items and sharing conditions (public)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from exchange.api.deps import HubDep

router = APIRouter(prefix="/v1/catalog", tags=["catalog"])


@router.get("/license-types", summary="License types and their sharing conditions")
def license_types(hub: HubDep) -> list[dict[str, Any]]:
    return [
        {
            "code": lt.code,
            "name_zh": lt.name_zh,
            "name_en": lt.name_en,
            "issuer": lt.issuer,
            "sharing_class": lt.sharing.sharing_class,
            "readers": list(lt.sharing.readers),
        }
        for lt in hub.catalog.license_types.values()
    ]


@router.get("/service-items", summary="Service items and their required materials")
def service_items(hub: HubDep) -> list[dict[str, Any]]:
    return [item.model_dump(mode="json") for item in hub.catalog.service_items.values()]
