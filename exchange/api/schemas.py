"""Request and response bodies, kept apart from the tables."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class LookupRequest(BaseModel):
    """A one-number lookup. The ID number travels in the body, never in the URL."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id_number": "11010519491231002X",
                    "holder_kind": "natural_person",
                    "purpose": "办理人才引进落户",
                    "service_item": "talent_household_registration",
                }
            ]
        },
    )

    id_number: str = Field(
        min_length=1, max_length=64, description="Resident ID number or credit code"
    )
    holder_kind: Literal["natural_person", "legal_person"] = "natural_person"
    purpose: str = Field(
        min_length=2, max_length=256, description="用證事由: why the data is needed"
    )
    service_item: str | None = Field(default=None, max_length=64, description="Service item code")


class Provenance(BaseModel):
    source: str
    department: str
    department_name_zh: str
    as_of: str
    batch_id: str


class LicenseOut(BaseModel):
    license_id: str
    license_type: str
    name_zh: str
    name_en: str
    version: int
    status: str
    provenance: Provenance | None = None
    credential: dict[str, Any] | None = None
    reason: str | None = None


class LookupResponse(BaseModel):
    holder_kind: str
    id_masked: str
    licenses: list[LicenseOut]
    withheld: list[LicenseOut]
