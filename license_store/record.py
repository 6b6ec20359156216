"""What issuance is handed: one license record per source row, already validated upstream."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, get_args

from catalog_schemas.errors import RowRejectedError
from catalog_schemas.holder import mask_id
from catalog_schemas.model import HolderKind

FieldValue = str | int | float | bool | None

HOLDER_KINDS: Final = frozenset(get_args(HolderKind))
# Keys the credential subject already uses; a catalog field must not overwrite them.
RESERVED_FIELDS: Final = frozenset(
    {
        "id",
        "type",
        "licenseType",
        "licenseTypeName",
        "licenseTypeNameEn",
        "licenseNumber",
        "issuingAuthority",
        "holders",
    }
)
_CODE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_HOLDER_KEY: Final = re.compile(r"[0-9a-f]{64}")
_FIELD_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_SAFE_INT: Final = 2**53 - 1
_MAX_TEXT: Final = 4096


def _reject(message: str, reason: str) -> RowRejectedError:
    return RowRejectedError(message, reason=reason)


def _text(value: object, name: str, *, max_chars: int) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > max_chars:
        raise _reject(
            f"{name} must be a non-empty string of at most {max_chars} characters",
            f"license_record_{name}",
        )


@dataclass(frozen=True)
class HolderRef:
    """One holder of a license: role, kind, the lake's holder_key and the ID number itself."""

    role: str
    kind: HolderKind
    holder_key: str
    # Personal data: kept out of repr so it cannot reach a log line or a traceback.
    id_number: str = field(repr=False)
    name: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.role, str) or not _CODE.fullmatch(self.role):
            raise _reject("holder role must be a lower-case code", "license_record_holder_role")
        if self.kind not in HOLDER_KINDS:
            raise _reject(
                f"holder kind must be one of {sorted(HOLDER_KINDS)}", "license_record_holder_kind"
            )
        if not isinstance(self.holder_key, str) or not _HOLDER_KEY.fullmatch(self.holder_key):
            raise _reject(
                "holder_key must be 64 lower-case hex characters (HMAC-SHA256)",
                "license_record_holder_key",
            )
        if (
            not isinstance(self.id_number, str)
            or not 6 <= len(self.id_number) <= 64
            or not self.id_number.isascii()
            or not self.id_number.isalnum()
        ):
            raise _reject(
                "holder id_number must be 6-64 ASCII letters or digits, canonicalized",
                "license_record_holder_id",
            )
        if self.name is not None:
            _text(self.name, "holder_name", max_chars=256)

    @property
    def id_masked(self) -> str:
        """The ID number masked for display and for the holder index."""
        return mask_id(self.id_number)


@dataclass(frozen=True)
class LicenseRecord:
    """One license as a department's data describes it, at one moment (``as_of``)."""

    record_key: str
    license_type: str
    type_name_zh: str
    type_name_en: str
    issuer_department: str
    issuer_name_zh: str
    issuer_name_en: str
    license_no: str
    holders: tuple[HolderRef, ...]
    fields: Mapping[str, FieldValue]
    valid_from: dt.date | None
    valid_until: dt.date | None
    source: str
    batch_id: str
    as_of: dt.datetime
    row_hash: str

    def __post_init__(self) -> None:
        _text(self.record_key, "record_key", max_chars=255)
        for name in ("license_type", "issuer_department"):
            if not isinstance(getattr(self, name), str) or not _CODE.fullmatch(getattr(self, name)):
                raise _reject(f"{name} must be a lower-case catalog code", f"license_record_{name}")
        for name in ("type_name_zh", "type_name_en", "issuer_name_zh", "issuer_name_en"):
            _text(getattr(self, name), name, max_chars=256)
        _text(self.license_no, "license_no", max_chars=128)
        _text(self.source, "source", max_chars=128)
        _text(self.batch_id, "batch_id", max_chars=128)
        _text(self.row_hash, "row_hash", max_chars=128)
        holders = tuple(self.holders)
        if not holders or not all(isinstance(h, HolderRef) for h in holders):
            raise _reject("a license needs at least one HolderRef", "license_record_holders")
        if len({(h.role, h.holder_key) for h in holders}) != len(holders):
            raise _reject("a holder appears twice in the same role", "license_record_holders")
        object.__setattr__(self, "holders", holders)
        object.__setattr__(self, "fields", MappingProxyType(_checked_fields(self.fields)))
        for name in ("valid_from", "valid_until"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, dt.date) or isinstance(value, dt.datetime)
            ):
                raise _reject(f"{name} must be a date", f"license_record_{name}")
        if self.valid_from and self.valid_until and self.valid_from > self.valid_until:
            raise _reject("valid_from is after valid_until", "license_record_validity")
        if not isinstance(self.as_of, dt.datetime) or self.as_of.utcoffset() is None:
            raise _reject("as_of must be an aware datetime", "license_record_as_of")


def _checked_fields(fields: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
    if not isinstance(fields, Mapping):
        raise _reject("fields must be a mapping", "license_record_fields")
    result: dict[str, FieldValue] = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name) or name in RESERVED_FIELDS:
            raise _reject(f"field name {name!r} is not allowed", "license_record_field_name")
        if isinstance(value, bool) or value is None:
            pass
        elif isinstance(value, int):
            if not -_SAFE_INT <= value <= _SAFE_INT:
                raise _reject(
                    f"field {name!r} is outside the JSON-safe integer range",
                    "license_record_field_value",
                )
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise _reject(
                    f"field {name!r} is not a finite number", "license_record_field_value"
                )
        elif isinstance(value, str):
            if len(value) > _MAX_TEXT or not _encodable(value):
                raise _reject(
                    f"field {name!r} is too long or not valid Unicode", "license_record_field_value"
                )
        else:
            raise _reject(
                f"field {name!r} has type {type(value).__name__}; use str/int/float/bool",
                "license_record_field_value",
            )
        result[name] = value
    return result


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True
