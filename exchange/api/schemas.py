"""Request and response bodies, kept apart from the tables."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

HolderKindField = Literal["natural_person", "legal_person"]
EXAMPLE_ID = "11010519491231002X"  # the worked example of GB 11643-1999, not a real person
EXAMPLE_LICENSE = "1.2.156.3005.2.114400000000000505001.114400000000000505.1.1.K"
EXAMPLE_CREDENTIAL: dict[str, Any] = {
    "@context": ["https://www.w3.org/ns/credentials/v2"],
    "id": f"urn:oid:{EXAMPLE_LICENSE}",
    "type": ["VerifiableCredential", "ELicense", "DegreeCertificate"],
    "issuer": {"id": "did:web:onehub.localhost", "name": "广东省政务数据共享交换平台 OneHub"},
    "name": "学位证书",
    "validFrom": "2012-06-30T16:00:00Z",
    "credentialSubject": {
        "licenseType": "degree_certificate",
        "licenseNumber": "1055842012000123",
        "holders": [{"role": "graduate", "kind": "natural_person", "idNumber": EXAMPLE_ID}],
    },
    "proof": {
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-jcs-2022",
        "created": "2026-11-27T02:00:00Z",
        "verificationMethod": "did:web:onehub.localhost#kid",
        "proofPurpose": "assertionMethod",
        "proofValue": "z3…",
    },
}

Purpose = Field(
    min_length=2, max_length=256, description="用證事由: why the data is needed (audited)"
)
ServiceItemCode = Field(
    default=None,
    max_length=64,
    description="Service item code (GET /v1/catalog/service-items); required for intake systems",
)
RestrictedUntil = Field(
    default=None,
    description=(
        "Hide this access from the holder's access history until this date (China time); "
        "only for consumers with the audit:restrict scope"
    ),
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """RFC 9457 problem details; ``code`` is stable, ``detail`` never holds an ID number."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "https://onehub.dev/problems/id_check_char",
                    "title": "id check char",
                    "status": 422,
                    "code": "id_check_char",
                    "detail": "resident ID number check character (GB 11643 MOD 11-2) does not "
                    "match",
                }
            ]
        }
    )

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None


class LookupRequest(_Body):
    """A one-number lookup. The ID number travels in the body, never in the URL."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id_number": EXAMPLE_ID,
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
    holder_kind: HolderKindField | None = Field(
        default=None, description="Default: the service item's applicant kind, else natural_person"
    )
    purpose: str = Purpose
    service_item: str | None = ServiceItemCode
    restricted_until: dt.date | None = RestrictedUntil


class MaterialCheckRequest(_Body):
    """Which materials of a service item the hub already holds for this applicant."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id_number": EXAMPLE_ID,
                    "purpose": "购房提取住房公积金",
                    "service_item": "housing_provident_withdrawal",
                }
            ]
        },
    )

    id_number: str = Field(
        min_length=1, max_length=64, description="Resident ID number or credit code"
    )
    holder_kind: HolderKindField | None = Field(
        default=None, description="Default: the service item's applicant kind"
    )
    purpose: str = Purpose
    service_item: str = Field(max_length=64, description="Service item code")
    restricted_until: dt.date | None = RestrictedUntil


class Provenance(BaseModel):
    source: str = Field(description="Catalog source the record came from")
    department: str = Field(description="Issuing department code")
    department_name_zh: str
    as_of: str = Field(description="When the hub read the record from the department (UTC)")
    batch_id: str = Field(description="Ingest batch that carried the record")


class LicenseOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "license_id": EXAMPLE_LICENSE,
                    "license_type": "degree_certificate",
                    "name_zh": "学位证书",
                    "name_en": "Degree Certificate",
                    "version": 1,
                    "status": "valid",
                    "provenance": {
                        "source": "edu_degree",
                        "department": "edu",
                        "department_name_zh": "广东省教育厅",
                        "as_of": "2026-11-27T01:00:00+00:00",
                        "batch_id": "edu_degree:3",
                    },
                    "credential": EXAMPLE_CREDENTIAL,
                }
            ]
        }
    )

    license_id: str
    license_type: str
    name_zh: str
    name_en: str
    version: int
    status: str = Field(description="valid, suspended, revoked, cancelled, expired or superseded")
    provenance: Provenance
    credential: dict[str, Any] = Field(
        description="The signed W3C Verifiable Credential (eddsa-jcs-2022); verifies offline"
    )


class WithheldOut(BaseModel):
    """A license type or license the consumer may not be served now, and why."""

    license_type: str
    name_zh: str
    name_en: str
    reason: str = Field(
        description="consent_required (no license id: whether one exists needs the consent too), "
        "or the status of a license that is not valid now (expired, suspended, revoked, ...)"
    )
    license_id: str | None = None
    status: str | None = None


class LookupResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "holder_kind": "natural_person",
                    "id_masked": "110105********002X",
                    "licenses": [LicenseOut.model_config["json_schema_extra"]["examples"][0]],  # type: ignore[index]
                    "withheld": [
                        {
                            "license_type": "social_insurance_certificate",
                            "name_zh": "社会保险参保证明",
                            "name_en": "Social Insurance Enrolment Certificate",
                            "reason": "consent_required",
                        }
                    ],
                }
            ]
        }
    )

    holder_kind: HolderKindField
    id_masked: str
    licenses: list[LicenseOut]
    withheld: list[WithheldOut]


class MaterialOut(BaseModel):
    code: str
    name_zh: str
    name_en: str
    license_type: str | None = Field(description="License type that covers it; null: on paper")
    status: Literal["covered", "missing", "consent_required"]
    reason: str | None = Field(
        description="Why not covered: applicant_supplies, not_shared, no_valid_license, "
        "consent_required"
    )
    licenses: list[LicenseOut] = Field(description="The licenses that cover it")


class MaterialCheckResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "service_item": "housing_provident_withdrawal",
                    "holder_kind": "natural_person",
                    "id_masked": "110105********002X",
                    "materials": [
                        {
                            "code": "marriage_cert",
                            "name_zh": "结婚证",
                            "name_en": "Marriage certificate",
                            "license_type": "marriage_certificate",
                            "status": "consent_required",
                            "reason": "consent_required",
                            "licenses": [],
                        },
                        {
                            "code": "purchase_contract",
                            "name_zh": "购房合同",
                            "name_en": "Purchase contract",
                            "license_type": None,
                            "status": "missing",
                            "reason": "applicant_supplies",
                            "licenses": [],
                        },
                    ],
                    "paper_needed": ["marriage_cert", "purchase_contract"],
                }
            ]
        }
    )

    service_item: str
    holder_kind: HolderKindField
    id_masked: str
    materials: list[MaterialOut]
    paper_needed: list[str] = Field(description="Codes of the materials still needed on paper")


class VerificationRequest(_Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"credential": EXAMPLE_CREDENTIAL, "purpose": "核验申请人提交的学位证书"}]
        },
    )

    credential: dict[str, Any] = Field(description="The credential as presented (JSON object)")
    purpose: str = Purpose


class VerificationResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "verified": False,
                    "reason": "revoked",
                    "license_id": EXAMPLE_LICENSE,
                    "license_type": "degree_certificate",
                    "status": "revoked",
                    "issuer": None,
                    "issuer_bound": None,
                    "valid_from": None,
                    "valid_until": None,
                }
            ]
        }
    )

    verified: bool
    reason: str | None = Field(
        description="Why not: malformed, unsupported_cryptosuite, unknown_key, bad_signature, "
        "issuer_mismatch, not_yet_valid, expired, unknown_license, superseded, cancelled, "
        "suspended, revoked"
    )
    license_id: str | None
    license_type: str | None
    status: str | None = Field(description="Status in this hub's store")
    issuer: str | None
    issuer_bound: bool | None
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None


class ConsentRequest(_Body):
    """A holder's consent, recorded by an intake system that authenticated the holder."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id_number": EXAMPLE_ID,
                    "holder_kind": "natural_person",
                    "purpose": "购房提取住房公积金",
                    "license_types": ["marriage_certificate"],
                    "expires_at": "2026-12-31T18:00:00+08:00",
                }
            ]
        },
    )

    id_number: str = Field(min_length=1, max_length=64)
    holder_kind: HolderKindField = "natural_person"
    purpose: str = Field(
        min_length=2, max_length=256, description="The purpose the consent is for (exact match)"
    )
    consumer: str | None = Field(
        default=None,
        max_length=128,
        description="Name of the consumer the consent is for; default the caller",
    )
    license_types: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="Conditional-share types it covers; empty: all of them",
    )
    expires_at: dt.datetime = Field(description="With a time zone; at most 366 days ahead")


class ConsentOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "consent_id": "3f1c0e6a9b2d4c5e8f7a6b5c4d3e2f10",
                    "consumer": "gz-tianhe-counter-01",
                    "recorded_by": "gz-tianhe-counter-01",
                    "purpose": "购房提取住房公积金",
                    "license_types": ["marriage_certificate"],
                    "granted_at": "2026-11-27T02:00:00Z",
                    "expires_at": "2026-12-31T10:00:00Z",
                    "revoked_at": None,
                }
            ]
        }
    )

    consent_id: str
    consumer: str
    recorded_by: str
    purpose: str
    license_types: list[str]
    granted_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None


class HistoryRequest(_Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"id_number": EXAMPLE_ID, "purpose": "持证人查询本人数据使用记录", "limit": 50}
            ]
        },
    )

    id_number: str = Field(min_length=1, max_length=64)
    holder_kind: HolderKindField = "natural_person"
    purpose: str = Purpose
    limit: int = Field(default=100, ge=1, le=1000)
    before_seq: int | None = Field(
        default=None, ge=1, le=2**62, description="Page on: the next_before_seq of the last page"
    )


class AccessOut(BaseModel):
    seq: int
    at: dt.datetime
    consumer: str
    consumer_kind: str | None
    department: str | None
    action: str
    purpose: str
    service_item: str | None
    licenses: list[str]
    result: str


class HistoryResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "holder_kind": "natural_person",
                    "id_masked": "110105********002X",
                    "accesses": [
                        {
                            "seq": 42,
                            "at": "2026-11-27T02:00:00Z",
                            "consumer": "gz-tianhe-counter-01",
                            "consumer_kind": "counter",
                            "department": "dps",
                            "action": "lookup",
                            "purpose": "办理人才引进落户",
                            "service_item": "talent_household_registration",
                            "licenses": [EXAMPLE_LICENSE],
                            "result": "ok",
                        }
                    ],
                    "next_before_seq": None,
                }
            ]
        }
    )

    holder_kind: HolderKindField
    id_masked: str
    accesses: list[AccessOut]
    next_before_seq: int | None = Field(description="Pass as before_seq for older entries")


class LicenseTypeOut(BaseModel):
    code: str
    name_zh: str
    name_en: str
    issuer: str
    sharing_class: Literal["unconditional", "conditional", "not_shared"]
    readers: list[str] = Field(description="Departments that may read it ('*': all)")
    legal_basis: str | None


class SharingOut(BaseModel):
    """How the hub decides, for every consumer."""

    classes: dict[str, str]
    operations: dict[str, str]
    kinds: dict[str, list[str]]
    intake_kinds: list[str] = Field(description="Kinds whose lookups must name a service item")


class AnnotatedCopyRequest(_Body):
    """An annotated copy (加注件): the license re-signed for one service item and purpose."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "purpose": "办理人才引进落户",
                    "service_item": "talent_household_registration",
                    "expires_at": "2026-12-04T18:00:00+08:00",
                }
            ]
        },
    )

    purpose: str = Purpose
    service_item: str = Field(max_length=64, description="The service item the copy is for")
    expires_at: dt.datetime | None = Field(
        default=None,
        description="With a time zone; default a week, never past the license's validity",
    )
    restricted_until: dt.date | None = RestrictedUntil


class AnnotatedCopyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "copy_id": "urn:uuid:2f0c6a52-6f0e-4a8e-9d59-3a1a3b0f2c11",
                    "license_id": EXAMPLE_LICENSE,
                    "valid_until": "2026-12-04T10:00:00Z",
                    "credential": {
                        "type": ["VerifiableCredential", "AnnotatedELicense"],
                        "credentialSubject": {
                            "annotation": "仅用于办理“人才引进落户”，有效期至2026-12-04",
                            "license": EXAMPLE_CREDENTIAL,
                        },
                    },
                }
            ]
        }
    )

    copy_id: str
    license_id: str
    valid_until: str
    credential: dict[str, Any] = Field(
        description="The signed annotated copy; it embeds the license unchanged"
    )
