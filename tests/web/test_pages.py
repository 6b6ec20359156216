"""The pages in a real browser (Debian's Chromium through Playwright) against a served hub with
licenses issued by the real pipelines: the counter desk for every service item, a holder
revoking a consent on /me, the supervision dashboard's red card, accessibility (axe-core)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from deployment import T0, Served
from typer.testing import CliRunner

from exchange.model import IngestRun
from exchange.supervision import supervise
from exchange.web.qr import decode_copy
from onehub.cli import app as cli

AXE = (Path(__file__).with_name("vendor") / "axe.min.js").read_text(encoding="utf-8")
ITEMS = {
    # service item -> the counter department that serves it
    "talent_household_registration": "dps",
    "housing_provident_withdrawal": "dhurd",
    "enterprise_change_registration": "aic",
}
HOUSING = "housing_provident_withdrawal"


def api(served: Served, key: str, method: str, path: str, **kwargs: Any) -> Any:
    """A /v1 call made directly, as a third party would: what the pages must agree with."""
    response = httpx.request(
        method,
        served.base_url + path,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
        **kwargs,
    )
    assert response.status_code < 400, response.text
    return response.json()


def holder_of(served: Served, item: str) -> str:
    """A sample holder with licenses for ``item`` (the manifest's demo holders)."""
    demo = served.manifest.demo_holders
    if served.hub.catalog.service_item(item).applicant_kind == "legal_person":
        assert demo.company is not None
        return demo.company.credit_code
    return demo.people[0].resident_id


def assert_accessible(page: Any, name: str) -> None:
    """axe-core in the page: no serious or critical violation (WCAG 2 A/AA rules and more)."""
    page.evaluate(AXE)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{name}: " + "; ".join(bad)


def assert_id_only_in_hidden_fields(page: Any, id_number: str) -> None:
    """The ID number is never shown nor put in the URL; only a follow-up form may carry it."""
    assert id_number not in page.url
    assert id_number not in page.locator("body").inner_text()
    hidden = page.locator(f"input[type=hidden][value='{id_number}']").count()
    assert page.content().count(id_number) == hidden


def sign_in(page: Any, area: str, key: str) -> None:
    page.goto(f"/{area}")
    page.get_by_label("接入密钥").fill(key)
    page.locator(f"form[action='/{area}/sign-in'] button").click()
    page.wait_for_url(f"**/{area}")


def desk_check(page: Any, item_text: str, id_number: str, purpose: str) -> None:
    page.get_by_label("办理事项").fill(item_text)
    page.get_by_label("证件号码").fill(id_number)
    page.get_by_label(re.compile("^用证事由")).fill(purpose)
    with page.expect_navigation():
        page.locator("#check-form button[type=submit]").click()


def shown_statuses(page: Any) -> dict[str, str]:
    rows = page.locator("[data-material]")
    return {
        rows.nth(i).get_attribute("data-material"): rows.nth(i).get_attribute("data-status")
        for i in range(rows.count())
    }


def expected_statuses(served: Served, key: str, item: str, id_number: str, purpose: str) -> Any:
    body = {"id_number": id_number, "purpose": purpose, "service_item": item}
    return api(served, key, "POST", "/v1/material-checks", json=body)


@pytest.mark.parametrize("item", sorted(ITEMS))
def test_a_clerk_checks_the_materials_of_each_service_item(
    context: Any, served: Served, artifacts: Path, tmp_path: Path, item: str
) -> None:
    key = served.keys[ITEMS[item]]
    catalog_item = served.hub.catalog.service_item(item)
    id_number = holder_of(served, item)
    purpose = f"办理{catalog_item.name_zh}"
    page = context.new_page()
    sign_in(page, "desk", key)
    assert_accessible(page, "desk (empty)")

    # The purpose is mandatory: without it the page refuses and calls nothing.
    page.get_by_label("办理事项").fill(catalog_item.name_zh)
    page.get_by_label("证件号码").fill(id_number)
    page.locator("#purpose").evaluate("e => e.removeAttribute('required')")
    with page.expect_navigation():
        page.locator("#check-form button[type=submit]").click()
    assert "请填写用证事由" in page.locator("[role=alert]").inner_text()
    assert page.locator("[data-material]").count() == 0

    # The item is found by its Chinese name here, by its English name on the English page.
    desk_check(page, catalog_item.name_zh, id_number, purpose)
    expected = expected_statuses(served, key, item, id_number, purpose)
    shown = shown_statuses(page)
    assert shown == {m["code"]: m["status"] for m in expected["materials"]}
    assert "covered" in shown.values()
    assert page.get_by_test_id("id-masked").inner_text() == expected["id_masked"]
    assert_id_only_in_hidden_fields(page, id_number)
    for material in expected["materials"]:
        row = page.locator(f"[data-material='{material['code']}']")
        if material["status"] != "covered":
            assert row.locator("svg.qr").count() == 0
            continue
        for lic in material["licenses"]:
            assert lic["name_zh"] in row.inner_text()
            assert lic["provenance"]["department_name_zh"] in row.inner_text()
        # The QR code holds the annotated copy: decode it and verify it offline for this item.
        payload = row.locator("input.qr-payload").first.get_attribute("value")
        assert payload.startswith("OH1:") and row.locator("svg.qr").count() >= 1
        copy = decode_copy(payload)
        assert copy["credentialSubject"]["license"]["id"].endswith(
            material["licenses"][0]["license_id"]
        )
        keys_file = tmp_path / "did.json"
        keys_file.write_text(json.dumps(api(served, key, "GET", "/.well-known/did.json")))
        copy_file = tmp_path / f"{material['code']}.json"
        copy_file.write_text(json.dumps(copy, ensure_ascii=False), encoding="utf-8")
        outcome = CliRunner().invoke(
            cli, ["verify", str(copy_file), "--keys", str(keys_file), "--service-item", item]
        )
        assert outcome.exit_code == 0, outcome.output
    page.screenshot(path=str(artifacts / f"desk-{item}.png"), full_page=True)
    assert_accessible(page, f"desk ({item})")

    # The receipt prints on one page and lists only what the applicant did not bring.
    page.emulate_media(media="print")
    assert page.locator(".receipt").is_visible() and not page.locator("#result").is_visible()
    receipt = page.locator(".receipt").inner_text()
    for material in expected["materials"]:
        name = material["name_zh"]
        if material["status"] == "covered":
            assert name in receipt
    pdf = page.pdf(format="A4")
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 1
    (artifacts / f"receipt-{item}.pdf").write_bytes(pdf)
    page.emulate_media(media="screen")

    # A tablet in portrait: the same page, one column, nothing wider than the screen.
    page.set_viewport_size({"width": 820, "height": 1180})
    assert page.evaluate("document.documentElement.scrollWidth") <= 820
    page.screenshot(path=str(artifacts / f"desk-{item}-tablet.png"), full_page=True)
    page.close()


def test_english_toggle_and_search_by_english_name(context: Any, served: Served) -> None:
    item = "talent_household_registration"
    key = served.keys["dps"]
    page = context.new_page()
    sign_in(page, "desk", key)
    page.goto("/desk?lang=en")
    assert page.locator("html").get_attribute("lang") == "en"
    page.get_by_label("Service item").fill(served.hub.catalog.service_item(item).name_en)
    page.get_by_label("ID number").fill(holder_of(served, item))
    page.get_by_label("Purpose").fill("Talent household registration")
    with page.expect_navigation():
        page.locator("#check-form button[type=submit]").click()
    assert "Covered by an e-license" in page.locator("#result").inner_text()
    page.goto("/desk")  # the choice is remembered
    assert page.locator("html").get_attribute("lang") == "en"
    assert_accessible(page, "desk (English)")
    page.goto("/desk?lang=zh")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.close()


def test_a_holder_revokes_a_consent_and_the_counter_then_sees_consent_required(
    context: Any, served: Served, artifacts: Path
) -> None:
    counter_key, hall_key = served.keys["dhurd"], served.keys["hall"]
    id_number = holder_of(served, HOUSING)
    purpose = "购房提取住房公积金（测试撤回授权）"
    desk = context.new_page()
    sign_in(desk, "desk", counter_key)
    desk_check(desk, "购房提取住房公积金", id_number, purpose)
    assert shown_statuses(desk)["marriage_cert"] == "consent_required"

    # The holder, present, consents at the counter: the marriage certificate is now covered.
    with desk.expect_navigation():
        desk.locator("form.consent-form button[type=submit]").click()
    assert "已记录授权" in desk.locator("[role=status]").inner_text()
    assert shown_statuses(desk)["marriage_cert"] == "covered"
    desk.screenshot(path=str(artifacts / "desk-consent-recorded.png"), full_page=True)

    # Later, on the holder's page served by the online hall, the holder sees the access and
    # revokes the consent.
    me = context.new_page()
    sign_in(me, "me", hall_key)
    assert_accessible(me, "me (sign-in done)")
    me.get_by_label("证件号码").fill(id_number)
    with me.expect_navigation():
        me.locator("form[action='/me/view'] button").click()
    history = me.locator("#history").inner_text()
    assert purpose in history and "tianhe-counter-dhurd" in history
    consent_row = me.locator("tr[data-state='active']", has_text=purpose)
    assert consent_row.count() == 1
    consent_id = consent_row.get_attribute("data-consent")
    assert_id_only_in_hidden_fields(me, id_number)
    me.screenshot(path=str(artifacts / "me.png"), full_page=True)
    assert_accessible(me, "me (history and consents)")
    me.once("dialog", lambda dialog: dialog.accept())  # "Revoke this consent?"
    with me.expect_navigation():
        consent_row.get_by_role("button").click()
    assert "授权已撤回" in me.locator("[role=status]").inner_text()
    assert me.locator(f"tr[data-consent='{consent_id}']").get_attribute("data-state") == "revoked"
    me.screenshot(path=str(artifacts / "me-revoked.png"), full_page=True)
    # The API agrees: the consent is revoked, by the hall at the holder's request.
    found = api(
        served,
        hall_key,
        "POST",
        "/v1/holder-consents",
        json={"id_number": id_number, "purpose": "核对", "include_inactive": True},
    )
    (revoked,) = [c for c in found["consents"] if c["consent_id"] == consent_id]
    assert revoked["revoked_at"] is not None

    # Back at the counter, the same check: consent required again.
    desk_check(desk, "购房提取住房公积金", id_number, purpose)
    assert shown_statuses(desk)["marriage_cert"] == "consent_required"
    assert desk.locator("form.consent-form").count() == 1
    desk.screenshot(path=str(artifacts / "desk-consent-required.png"), full_page=True)
    desk.close()
    me.close()


def _age_source(served: Served, source: str, hours: float) -> None:
    """Move every run of ``source`` back by ``hours`` (its last load then looks that old)."""
    shift = dt.timedelta(hours=hours)
    with served.hub.sessions.begin() as session:
        for run in session.scalars(sa.select(IngestRun).where(IngestRun.source == source)):
            run.started_at = run.started_at - shift
            if run.finished_at is not None:
                run.finished_at = run.finished_at - shift


def test_the_dashboard_shows_a_red_card_for_a_source_aged_past_twice_its_sla(
    context: Any, served: Served, artifacts: Path
) -> None:
    catalog = served.hub.catalog
    red, yellow = "dlr_title", "hrss_insurance"
    _age_source(served, red, 2.2 * catalog.source(red).freshness_sla_hours)
    _age_source(served, yellow, 1.3 * catalog.source(yellow).freshness_sla_hours)
    supervise(served.hub, now=T0)  # what the maintenance DAG does: store the cards
    # A week of exchange use at the counters (the hub's clock moved back day by day).
    items = sorted(ITEMS)
    try:
        for days_ago, calls in ((6, 2), (5, 4), (4, 3), (3, 5), (2, 2), (1, 6), (0, 3)):
            served.clock.at = T0 - dt.timedelta(days=days_ago)
            for n in range(calls):
                item = items[(n + days_ago) % len(items)]
                key = served.keys[ITEMS[item]]
                expected_statuses(served, key, item, holder_of(served, item), "办理业务")
    finally:
        served.clock.at = T0

    page = context.new_page()
    sign_in(page, "supervision", served.keys["supervisor"])
    cards = page.locator("[data-source]")
    freshness = {
        cards.nth(i).get_attribute("data-source"): cards.nth(i).get_attribute("data-freshness")
        for i in range(cards.count())
    }
    stats = api(served, served.keys["supervisor"], "GET", "/v1/supervision/statistics")
    assert freshness == {s["source"]: s["freshness"] for s in stats["sources"]}
    assert freshness[red] == "red" and freshness[yellow] == "yellow"
    assert set(freshness.values()) == {"green", "yellow", "red"}
    assert "红牌" in page.locator(f"[data-source='{red}']").inner_text()
    assert red in page.locator(".cards-list").inner_text()  # the stored card, open

    # Certificates not asked for, per service item, as the API counts them; drawn as charts.
    use = api(served, served.keys["supervisor"], "GET", "/v1/supervision/usage?days=14")
    for saving in use["savings"]:
        cell = page.locator(f"tr[data-item='{saving['service_item']}'] [data-testid=not-asked]")
        assert int(cell.inner_text()) == saving["certificates_not_asked"]
    assert sum(s["certificates_not_asked"] for s in use["savings"]) > 0
    assert len({d["day"] for d in use["daily"]}) >= 7  # the week, bucketed by China day
    assert page.locator("details table tbody tr").count() == len(use["daily"])
    assert page.locator("svg.chart").count() >= 2
    assert page.locator(".spark svg polyline").count() >= 1  # a trend line of two runs or more
    # Departments by batch: as many as the catalog has, the onboarded ones marked.
    assert page.locator("[data-dept]").count() == len(catalog.departments)
    onboarded = {d.code for d in catalog.departments.values() if d.onboarded}
    assert {
        page.locator(".dept.on").nth(i).get_attribute("data-dept")
        for i in range(page.locator(".dept.on").count())
    } == onboarded
    page.screenshot(path=str(artifacts / "supervision.png"), full_page=True)
    assert_accessible(page, "supervision")
    page.set_viewport_size({"width": 820, "height": 1180})
    assert page.evaluate("document.documentElement.scrollWidth") <= 820
    page.screenshot(path=str(artifacts / "supervision-tablet.png"), full_page=True)
    page.close()


def test_a_bad_key_is_refused_and_forms_need_the_csrf_token(context: Any, served: Served) -> None:
    page = context.new_page()
    sign_in(page, "supervision", "oh_notakey_0000000000")
    assert "密钥无效" in page.locator("[role=alert]").inner_text()
    assert page.get_by_label("接入密钥").is_visible()
    # A cross-site form post carries no token (and no SameSite=Strict cookie): refused.
    answer = httpx.post(
        served.base_url + "/desk/check",
        data={"service_item": "talent_household_registration", "id_number": "x", "purpose": "xx"},
        cookies={"onehub_desk_key": served.keys["dps"], "onehub_csrf": "a" * 43},
    )
    assert answer.status_code == 403
    assert answer.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    page.goto("/")
    assert_accessible(page, "home")
    page.close()


def test_the_desk_works_with_the_keyboard_alone(context: Any, served: Served) -> None:
    item = "talent_household_registration"
    page = context.new_page()
    sign_in(page, "desk", served.keys["dps"])
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")  # skip the navigation

    def tab_to(element_id: str) -> None:
        for _ in range(20):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == element_id:
                return
        pytest.fail(f"#{element_id} cannot be reached with Tab")

    tab_to("service_item")
    page.keyboard.type(served.hub.catalog.service_item(item).name_zh)
    tab_to("id_number")
    page.keyboard.type(holder_of(served, item))
    tab_to("purpose")
    page.keyboard.type("办理人才引进落户")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("[data-material]").count() == len(
        served.hub.catalog.service_item(item).materials
    )
    # The answer takes the focus, so the next Tab goes through it.
    assert page.evaluate("document.activeElement.id") == "result"
    page.close()
