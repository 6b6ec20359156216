"""Pydantic models of the catalog: departments, license types, sources and service items.

Every model forbids unknown keys, so a typo in a YAML file fails at load time with the file and
the field named, instead of being ignored.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

HolderKind = Literal["natural_person", "legal_person"]
SharingClass = Literal["unconditional", "conditional", "not_shared"]
FieldType = Literal[
    "string", "date", "integer", "decimal", "code", "resident_id", "credit_code", "holder_id"
]

_CODE = r"^[a-z][a-z0-9_]*$"
Code = Annotated[str, Field(pattern=_CODE, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Department(_Strict):
    """A provincial department of the reform plan's annex."""

    code: Code
    name_zh: str = Field(description="Official simplified-Chinese name")
    short_zh: str = Field(description="The abbreviation used in the annex")
    name_en: str
    batch: Literal[1, 2, 3]
    deadline: dt.date
    onboarded: bool = False
    credit_code: str = Field(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$")


class FieldSpec(_Strict):
    """One field of a license type."""

    name: Code
    type: FieldType
    label_zh: str
    label_en: str
    required: bool = False
    max_length: int | None = Field(default=None, gt=0)
    pattern: str | None = None
    codes: dict[str, str] | None = Field(default=None, description="code -> label for type=code")
    min: float | None = None
    max: float | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value

    @model_validator(mode="after")
    def _codes_only_for_code(self) -> FieldSpec:
        if (self.type == "code") != (self.codes is not None):
            raise ValueError("a field has `codes` exactly when its type is `code`")
        return self


class HolderSpec(_Strict):
    """Who holds a license: which fields carry the holder's ID number and name."""

    role: Code
    label_zh: str
    kinds: tuple[HolderKind, ...] = Field(min_length=1)
    id_field: Code
    name_field: Code | None = None
    kind_field: Code | None = Field(
        default=None, description="For a holder of either kind: the field saying which kind it is"
    )

    @model_validator(mode="after")
    def _either_kind_needs_kind_field(self) -> HolderSpec:
        if len(self.kinds) > 1 and self.kind_field is None:
            raise ValueError("a holder that can be of more than one kind needs `kind_field`")
        return self


class Sharing(_Strict):
    """The sharing class (共享類型) and which departments may read the license."""

    sharing_class: SharingClass = Field(alias="class")
    readers: tuple[Annotated[str, Field(pattern=r"^(\*|[a-z][a-z0-9_]*)$")], ...] = Field(
        default=(), description="department codes, or ['*'] for all"
    )
    legal_basis: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def readable_by(self, department: str) -> bool:
        """Whether ``department`` is among the readers (``*`` means every department)."""
        return "*" in self.readers or department in self.readers


class LicenseType(_Strict):
    """A license type (證照類型) as the catalog defines it."""

    code: Code
    name_zh: str
    name_en: str
    issuer: Code = Field(description="issuing department code")
    type_seq: str = Field(
        pattern=r"^\d{3}$", description="3-digit sequence of the type under its definer"
    )
    holders: tuple[HolderSpec, ...] = Field(min_length=1)
    license_no_field: Code
    valid_from_field: Code | None = None
    valid_until_field: Code | None = None
    date_order: tuple[tuple[Code, Code], ...] = Field(
        default=(), description="pairs (earlier, later)"
    )
    fields: tuple[FieldSpec, ...] = Field(min_length=1)
    sharing: Sharing

    def field(self, name: str) -> FieldSpec:
        """The field called ``name``; KeyError if absent."""
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def id_fields(self) -> tuple[str, ...]:
        """Fields that hold an ID number (personal data: never stored in plaintext)."""
        return tuple(
            f.name for f in self.fields if f.type in ("resident_id", "credit_code", "holder_id")
        )

    @model_validator(mode="after")
    def _references_exist(self) -> LicenseType:
        names = {f.name for f in self.fields}
        if len(names) != len(self.fields):
            raise ValueError("duplicate field names")
        refs: list[tuple[str, str | None]] = [
            ("license_no_field", self.license_no_field),
            ("valid_from_field", self.valid_from_field),
            ("valid_until_field", self.valid_until_field),
        ]
        for holder in self.holders:
            refs += [
                (f"holders.{holder.role}.id_field", holder.id_field),
                (f"holders.{holder.role}.name_field", holder.name_field),
                (f"holders.{holder.role}.kind_field", holder.kind_field),
            ]
        for a, b in self.date_order:
            refs += [("date_order", a), ("date_order", b)]
        for where, ref in refs:
            if ref is not None and ref not in names:
                raise ValueError(f"{where} names unknown field {ref!r}")
        for holder in self.holders:
            id_type = self.field(holder.id_field).type
            expected_by_kinds: dict[tuple[str, ...], str] = {
                ("natural_person",): "resident_id",
                ("legal_person",): "credit_code",
            }
            expected = expected_by_kinds.get(tuple(holder.kinds), "holder_id")
            if id_type != expected:
                raise ValueError(
                    f"holder {holder.role!r}: id_field {holder.id_field!r} "
                    f"must have type {expected}"
                )
        return self


class Conversion(_Strict):
    """How one license field is computed from a source row."""

    column: str | None = Field(default=None, description="source column")
    const: str | None = Field(default=None, description="a constant value instead of a column")
    convert: tuple[Literal["trim", "halfwidth", "upper", "date", "integer", "decimal"], ...] = ()
    date_format: str | None = Field(
        default=None, description="strptime format when not auto-detected"
    )
    codes: dict[str, str] | None = Field(default=None, description="source code -> catalog code")

    @model_validator(mode="after")
    def _one_origin(self) -> Conversion:
        if (self.column is None) == (self.const is None):
            raise ValueError("give exactly one of `column` and `const`")
        return self


class SqlConnector(_Strict):
    kind: Literal["sql"]
    connection: Code = Field(description="connection id: an Airflow Connection or ONEHUB_CONN_<ID>")
    table: str | None = None
    query: str | None = Field(default=None, description="custom SELECT for a view-like source")
    primary_key: str
    watermark: str
    batch_size: int = Field(default=5000, gt=0, le=1_000_000)

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlConnector:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of `table` and `query`")
        return self


class FileConnector(_Strict):
    kind: Literal["file"]
    connection: Code = Field(description="connection id naming the drop folder")
    pattern: str = "*.csv"
    format: Literal["csv", "tsv", "jsonl", "xlsx"] = "csv"
    encoding: Literal["utf-8", "utf-8-sig", "gbk", "gb18030", "auto"] = "auto"
    header_row: int = Field(default=0, ge=0)
    primary_key: str
    batch_size: int = Field(default=5000, gt=0, le=1_000_000)


Connector = Annotated[SqlConnector | FileConnector, Field(discriminator="kind")]


class Source(_Strict):
    """A department source: where records of one license type come from and how to map them."""

    name: Code
    department: Code
    license_type: Code
    description: str
    connector: Connector
    mapping: dict[str, Conversion]
    schedule: str | None = "@daily"
    freshness_sla_hours: float = Field(default=24, gt=0)
    quarantine_threshold: float = Field(default=0.05, ge=0, le=1)

    @property
    def dag_id(self) -> str:
        return f"ingest__{self.department}__{self.name}"


class Material(_Strict):
    """A material (申請材料) a service item requires."""

    code: Code
    name_zh: str
    name_en: str
    license_type: Code | None = Field(default=None, description="covered by this license type")
    applicant_supplies: bool = False
    holder_role: Code | None = Field(
        default=None, description="which holder role the applicant must have, if it matters"
    )

    @model_validator(mode="after")
    def _covered_or_supplied(self) -> Material:
        if (self.license_type is None) != self.applicant_supplies:
            raise ValueError(
                "a material is either covered by a `license_type` or `applicant_supplies`"
            )
        return self


class ServiceItem(_Strict):
    """A government service item (事項) and its required materials."""

    code: Code
    name_zh: str
    name_en: str
    department: Code
    applicant_kind: HolderKind
    materials: tuple[Material, ...] = Field(min_length=1)
