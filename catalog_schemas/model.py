"""Pydantic models of the catalog: departments, license types, sources and service items.

Every model forbids unknown keys, so a typo in a YAML file fails at load time with the file and
the field named, instead of being ignored.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

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


class SoftDelete(_Strict):
    """How a source marks a row deleted: a flag column, or a deleted-at column.

    ``{flag: is_deleted}`` (deleted where the trimmed value is one of ``values``, compared
    case-insensitively) or ``{deleted_at: deleted_at}`` (deleted where the column holds any
    non-blank value). A deleted row becomes a deletion in the lake (``_deleted``).
    """

    flag: str | None = Field(default=None, description="flag column")
    deleted_at: str | None = Field(default=None, description="deleted-at column")
    values: tuple[str, ...] = Field(
        default=("1", "true", "t", "y", "yes"), min_length=1, description="flag values: deleted"
    )

    @model_validator(mode="after")
    def _one_column(self) -> SoftDelete:
        if (self.flag is None) == (self.deleted_at is None):
            raise ValueError("give exactly one of `flag` and `deleted_at`")
        return self

    @property
    def column(self) -> str:
        """The source column that says whether a row is deleted."""
        return self.flag if self.flag is not None else str(self.deleted_at)


class SqlConnector(_Strict):
    kind: Literal["sql"]
    connection: Code = Field(description="connection id: an Airflow Connection or ONEHUB_CONN_<ID>")
    table: str | None = None
    query: str | None = Field(default=None, description="custom SELECT for a view-like source")
    primary_key: str
    watermark: str
    batch_size: int = Field(default=5000, gt=0, le=1_000_000)
    soft_delete: SoftDelete | None = None

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
    header_row: int = Field(default=0, ge=0, description="rows (lines) before the header")
    sheet: str | None = Field(default=None, description="xlsx: the sheet's name (default first)")
    primary_key: str
    batch_size: int = Field(default=5000, gt=0, le=1_000_000)
    soft_delete: SoftDelete | None = None

    @model_validator(mode="after")
    def _sheet_only_for_xlsx(self) -> FileConnector:
        if self.sheet is not None and self.format != "xlsx":
            raise ValueError("`sheet` applies to xlsx files only")
        return self


class RestPagination(_Strict):
    """How a JSON API pages: by page number, by offset, by a cursor token, or by a next link."""

    style: Literal["page", "offset", "cursor", "next_link", "none"] = "page"
    page_param: str = "page"
    first_page: int = Field(default=1, ge=0)
    offset_param: str = "offset"
    size_param: str | None = Field(default="page_size", description="page-size query parameter")
    page_size: int = Field(default=500, gt=0, le=100_000)
    cursor_param: str = "cursor"
    cursor_path: str = Field(default="next_cursor", description="dotted path of the next cursor")
    next_path: str | None = Field(
        default="next", description="dotted path of the next URL (else the Link header)"
    )


class RestHmac(_Strict):
    """HMAC-SHA256 request signing; the key id and secret come from the connection."""

    key_header: str = "X-Key-Id"
    timestamp_header: str = "X-Timestamp"
    signature_header: str = "X-Signature"


class RestConnector(_Strict):
    kind: Literal["rest"]
    connection: Code = Field(description="connection id: the API's base URL (credentials inside)")
    path: str = Field(description="endpoint path under the base URL, e.g. /api/v1/degrees")
    params: dict[str, str] = Field(default_factory=dict, description="fixed query parameters")
    records_path: str = Field(
        default="data", description="dotted path of the records list ('' = the body itself)"
    )
    primary_key: str
    watermark: str | None = Field(default=None, description="record field to read incrementally")
    since_param: str | None = Field(
        default=None, description="query parameter carrying the committed watermark (inclusive)"
    )
    pagination: RestPagination = Field(default_factory=RestPagination)
    auth: Literal["none", "bearer", "hmac"] = "none"
    hmac: RestHmac = Field(default_factory=RestHmac)
    batch_size: int = Field(default=5000, gt=0, le=1_000_000)
    max_retries: int = Field(default=5, ge=0, le=20)
    backoff_seconds: float = Field(default=1.0, gt=0, description="first retry delay; doubles")
    max_backoff_seconds: float = Field(default=60.0, gt=0)
    timeout_seconds: float = Field(default=30.0, gt=0)
    soft_delete: SoftDelete | None = None

    @model_validator(mode="after")
    def _since_needs_watermark(self) -> RestConnector:
        if self.since_param is not None and self.watermark is None:
            raise ValueError("`since_param` needs `watermark`")
        return self


Connector = Annotated[SqlConnector | FileConnector | RestConnector, Field(discriminator="kind")]


ExpectationKind = Literal[
    "not_null", "pattern", "in_set", "range", "max_length", "date_order", "unique", "division_code"
]

# Which parameters each kind of source expectation takes (besides `name`); the rest must be unset.
_EXPECTATION_PARAMS: dict[str, frozenset[str]] = {
    "not_null": frozenset({"column"}),
    "pattern": frozenset({"column", "regex"}),
    "in_set": frozenset({"column", "values"}),
    "range": frozenset({"column", "min", "max"}),
    "max_length": frozenset({"column", "max_length"}),
    "date_order": frozenset({"columns"}),
    "unique": frozenset({"column"}),
    "division_code": frozenset({"column", "current_only"}),
}
_EXPECTATION_FIELD_TYPES: dict[str, frozenset[str]] = {
    "pattern": frozenset({"string", "code"}),
    "max_length": frozenset({"string", "code"}),
    "division_code": frozenset({"string", "code"}),
    "range": frozenset({"integer", "decimal"}),
    "date_order": frozenset({"date"}),
    # an ID number is unique in its canonical form, which only the license number gets
    "unique": frozenset({"string", "code", "integer", "decimal", "date"}),
}


class ExpectationSpec(_Strict):
    """An expectation a source adds to its license type's suite (docs/quality.md)."""

    type: ExpectationKind
    column: Code | None = None
    columns: tuple[Code, Code] | None = Field(
        default=None, description="date_order: (earlier, later)"
    )
    regex: str | None = None
    values: tuple[str, ...] | None = Field(default=None, min_length=1)
    min: float | None = None
    max: float | None = None
    max_length: int | None = Field(default=None, gt=0)
    current_only: bool = Field(
        default=False, description="division_code: only codes in use today, not historic ones"
    )
    name: Code | None = Field(
        default=None, description="reason prefix instead of `type` (reason = <name>:<column>)"
    )

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:  # not a ValueError: pydantic would let it through raw
                raise ValueError(f"regex does not compile: {exc}") from None
        return value

    @model_validator(mode="after")
    def _params_fit_the_type(self) -> ExpectationSpec:
        allowed = _EXPECTATION_PARAMS[self.type]
        params = ("column", "columns", "regex", "values", "min", "max", "max_length")
        given = {k for k in params if getattr(self, k) is not None}
        given |= {"current_only"} if self.current_only else set()
        extra = sorted(given - allowed)
        if extra:
            raise ValueError(f"{self.type} takes no {', '.join(extra)}")
        needed = allowed - {"min", "max", "current_only"}
        missing = sorted(needed - given)
        if missing:
            raise ValueError(f"{self.type} needs {', '.join(missing)}")
        if self.type == "range" and self.min is None and self.max is None:
            raise ValueError("range needs min or max")
        return self

    @property
    def targets(self) -> tuple[str, ...]:
        """The fields the expectation reads."""
        return self.columns if self.columns is not None else (self.column or "",)

    @property
    def reason(self) -> str:
        """What a failing row is told: ``<name or type>:<column>`` (dates: ``<a><=<b>``)."""
        prefix = self.name or self.type
        if self.columns is not None:
            return f"{prefix}:{self.columns[0]}<={self.columns[1]}"
        return f"{prefix}:{self.column}"

    def problem(self, license_type: LicenseType) -> str | None:
        """Why this expectation cannot apply to ``license_type``'s fields, or None."""
        kinds = _EXPECTATION_FIELD_TYPES.get(self.type)
        for target in self.targets:
            try:
                spec = license_type.field(target)
            except KeyError:
                return f"{license_type.code} has no field {target!r}"
            if kinds is not None and spec.type not in kinds:
                return (
                    f"{self.type} applies to {'/'.join(sorted(kinds))} fields, "
                    f"not {target!r} ({spec.type})"
                )
        return None


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
    expectations: tuple[ExpectationSpec, ...] = Field(
        default=(), description="extra expectations on top of the license type's suite"
    )
    # Orchestration (the ingest DAG): a task is retried at least twice, because a department
    # system that is briefly down should not page anybody.
    retries: int = Field(default=2, ge=2, le=10)
    retry_delay_minutes: float = Field(default=5, gt=0, le=24 * 60)
    timeout_minutes: float = Field(
        default=60, gt=0, le=7 * 24 * 60, description="per attempt of the ingest task"
    )
    tags: tuple[Code, ...] = Field(default=(), description="extra Airflow tags")
    start_date: dt.date | None = Field(
        default=None, description="first interval Airflow schedules (default 2026-01-01)"
    )
    backfill: bool = Field(
        default=False,
        description="Airflow catchup: every missed interval since start_date gets its own run",
    )
    _origin: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _expectations_read_mapped_fields(self) -> Source:
        for i, spec in enumerate(self.expectations):
            unmapped = [t for t in spec.targets if t not in self.mapping]
            if unmapped:
                raise ValueError(f"expectations.{i}: {unmapped} are not fields this source maps")
        return self

    @property
    def dag_id(self) -> str:
        return f"ingest__{self.department}__{self.name}"

    def where(self, key: str) -> str:
        """``<file>:<line>`` of the YAML entry ``key`` (``mapping.<field>``), else the source."""
        for candidate in (key, key.split(".")[0]):
            if candidate in self._origin:
                return self._origin[candidate]
        return f"source {self.name!r}"


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
