"""Scopes derived from the catalog, and the rule that a call gets the stricter of scopes and the
live catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_api_world import catalog_copy

from catalog_schemas.catalog import load_catalog
from exchange.sharing import KIND_OPERATIONS, decide, scopes_for


def test_scopes_follow_sharing_class_readers_and_kind() -> None:
    catalog = load_catalog()
    dps = scopes_for(catalog, department="dps", kind="counter")
    assert "license:degree_certificate" in dps  # unconditional, every reader
    assert "license:marriage_certificate:consent" in dps  # conditional, dps reads it
    assert "license:real_estate_title" in dps
    aic = scopes_for(catalog, department="aic", kind="department")
    assert not any(s.startswith("license:marriage_certificate") for s in aic)  # not a reader
    assert "consent" not in aic and "history" not in aic
    assert set(KIND_OPERATIONS["kiosk"]) <= set(scopes_for(catalog, department="dps", kind="kiosk"))
    assert "audit:restrict" in scopes_for(
        catalog, department="dps", kind="department", may_restrict=True
    )
    assert "audit:restrict" not in dps


def test_a_call_gets_the_stricter_of_scopes_and_the_live_catalog(tmp_path: Path) -> None:
    then = load_catalog()
    scopes = scopes_for(then, department="dps", kind="counter")

    def tighten(data: dict[str, Any]) -> None:
        if data["code"] == "degree_certificate":
            data["sharing"] = {"class": "conditional", "readers": ["*"]}
        if data["code"] == "real_estate_title":
            data["sharing"] = {"class": "not_shared", "readers": []}
        if data["code"] == "business_license":
            data["sharing"] = {"class": "unconditional", "readers": ["dca"]}

    now = catalog_copy(tmp_path / "tight", edit_types=tighten)
    degree = now.license_type("degree_certificate")
    assert decide(degree, department="dps", scopes=scopes) == "consent_required"
    assert decide(degree, department="dps", scopes=scopes, has_consent=True) == "allow"
    assert decide(now.license_type("real_estate_title"), department="dps", scopes=scopes) == "deny"
    assert decide(now.license_type("business_license"), department="dps", scopes=scopes) == "deny"

    def widen(data: dict[str, Any]) -> None:
        if data["code"] == "marriage_certificate":
            data["sharing"] = {"class": "unconditional", "readers": ["*"]}

    wider = catalog_copy(tmp_path / "wide", edit_types=widen)
    marriage = wider.license_type("marriage_certificate")
    # Widening reaches a consumer only with new scopes: the old ones still ask for consent...
    assert decide(marriage, department="dps", scopes=scopes) == "consent_required"
    # ...and a department that did not read it then still does not.
    aic = scopes_for(then, department="aic", kind="counter")
    assert decide(marriage, department="aic", scopes=aic) == "deny"
    assert decide(marriage, department="aic", scopes=None) == "allow"  # the catalog alone
