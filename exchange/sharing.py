"""The sharing policy: may this consumer see this license type?"""

from __future__ import annotations

from typing import Literal

from catalog_schemas.model import LicenseType

Decision = Literal["allow", "consent_required", "deny"]


def decide(license_type: LicenseType, *, department: str, has_consent: bool = False) -> Decision:
    """The catalog's answer for a consumer of ``department`` (無條件/有條件/不予共享)."""
    sharing = license_type.sharing
    if sharing.sharing_class == "not_shared" or not sharing.readable_by(department):
        return "deny"
    if sharing.sharing_class == "conditional" and not has_consent:
        return "consent_required"
    return "allow"
