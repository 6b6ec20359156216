"""The pages: the counter desk (/desk), the holder's access page (/me) and the supervision
dashboard (/supervision), rendered on the server with Jinja2.

Their data come only from the public /v1 API (:mod:`exchange.web.gateway`), called with the
signed-in consumer's key, which the browser keeps in an HttpOnly, SameSite=Strict cookie scoped
to the page's path. Every form post carries a CSRF token that must match the ``onehub_csrf``
cookie (double submit). ID numbers travel only in POST bodies, are never put in a URL, a cookie
or a log, and the pages show them masked (as the API answers them).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.datastructures import FormData

from exchange.web.chart import colour, horizontal_bars, sparkline, stacked_bars
from exchange.web.gateway import ApiCallError, Gateway
from exchange.web.qr import encode_copy, qr_svg
from exchange.web.text import LANGS, Lang, translator

logger = logging.getLogger(__name__)

TEMPLATES_DIR: Final = Path(__file__).with_name("templates")
STATIC_DIR: Final = Path(__file__).with_name("static")
Area = Literal["desk", "me", "supervision"]
CSRF_COOKIE: Final = "onehub_csrf"
LANG_COOKIE: Final = "onehub_lang"
CHINA: Final = dt.timezone(dt.timedelta(hours=8))
HISTORY_PURPOSE: Final = "持证人查询本人数据使用记录 (holder views own access history)"
CONSENTS_PURPOSE: Final = "持证人查询本人授权 (holder views own consents)"
REVOKE_PURPOSE: Final = "持证人撤回授权 (holder revokes a consent)"
SUPERVISION_DAYS: Final = (7, 14, 30, 90)
# Pages hold personal data: never cached, never framed, only our own scripts and styles.
SECURITY_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def key_cookie(area: Area) -> str:
    """The name of the cookie holding the consumer key of ``area``'s pages."""
    return f"onehub_{area}_key"


@dataclass
class Page:
    """One page request: who is signed in, the language and the CSRF token."""

    request: Request
    area: Area | Literal["home"]
    lang: Lang
    lang_chosen: bool  # ?lang= given: remember it
    csrf: str
    csrf_new: bool

    @property
    def key(self) -> str | None:
        """The consumer key of this area (None: not signed in)."""
        if self.area == "home":
            return None
        return self.request.cookies.get(key_cookie(self.area)) or None

    def t(self, key: str) -> str:
        """The text of ``key`` in the page's language."""
        return translator(self.lang)(key)

    def gateway(self, *, public: bool = False) -> Gateway:
        """The /v1 API as the signed-in consumer (or without a key for public calls)."""
        return Gateway(
            self.request.app,
            None if public else self.key,
            request_id=self.request.headers.get("x-request-id"),
        )


def _page(request: Request, area: Area | Literal["home"]) -> Page:
    asked = request.query_params.get("lang")
    cookie = request.cookies.get(LANG_COOKIE)
    lang: Lang = "zh"
    if asked in LANGS:
        lang = asked
    elif cookie in LANGS:
        lang = cookie
    csrf = request.cookies.get(CSRF_COOKIE) or ""
    fresh = len(csrf) < 32
    return Page(
        request=request,
        area=area,
        lang=lang,
        lang_chosen=asked in LANGS,
        csrf=secrets.token_urlsafe(32) if fresh else csrf,
        csrf_new=fresh,
    )


def _csrf_ok(page: Page, form: FormData) -> bool:
    sent = form.get("csrf")
    return (
        not page.csrf_new
        and isinstance(sent, str)
        and secrets.compare_digest(sent.encode(), page.csrf.encode())
    )


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _parse(value: str) -> dt.datetime:
    """An ISO time from the API (UTC when it names no zone)."""
    at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def _local(value: str | None) -> str:
    """An ISO time from the API as China time, for people."""
    return _parse(value).astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if value else ""


def _problem_text(page: Page, exc: ApiCallError) -> str:
    specific = page.t(f"err_{exc.code}")
    if specific != f"err_{exc.code}":
        return specific
    return page.t("error_generic") + (exc.detail or exc.code)


class Pages:
    """The page handlers over one set of templates."""

    def __init__(self, templates: Jinja2Templates) -> None:
        self.templates = templates

    def render(
        self,
        page: Page,
        template: str,
        title_key: str,
        *,
        status: int = 200,
        **context: Any,
    ) -> Response:
        """The template rendered for ``page`` with the security headers and cookies."""
        response = self.templates.TemplateResponse(
            page.request,
            template,
            {
                "t": page.t,
                "lang": page.lang,
                "area": page.area,
                "csrf": page.csrf,
                "signed_in": page.key is not None,
                "title": page.t(title_key),
                "notice": None,
                "error": None,
                **context,
            },
            status_code=status,
        )
        return self.finish(page, response)

    def finish(self, page: Page, response: Response) -> Response:
        """Add the security headers, the CSRF cookie if new and the chosen language."""
        response.headers.update(SECURITY_HEADERS)
        secure = page.request.url.scheme == "https"
        if page.csrf_new:
            response.set_cookie(
                CSRF_COOKIE, page.csrf, httponly=True, samesite="strict", secure=secure, path="/"
            )
        if page.lang_chosen:
            response.set_cookie(
                LANG_COOKIE,
                page.lang,
                samesite="strict",
                secure=secure,
                path="/",
                max_age=366 * 86400,
            )
        return response

    def sign_in_page(self, page: Page, *, error: str | None = None, status: int = 200) -> Response:
        """The sign-in form of the page's area; an invalid key is forgotten."""
        response = self.render(page, "signin.html", str(page.area), status=status, error=error)
        if error is not None and page.area != "home":
            response.delete_cookie(key_cookie(page.area), path=f"/{page.area}")
        return response

    def refused(self, page: Page, exc: ApiCallError) -> Response | None:
        """The sign-in page when the key no longer works; None for other refusals."""
        if exc.status == 401 or exc.code == "consumer_disabled":
            return self.sign_in_page(page, error=page.t("key_invalid"), status=401)
        return None

    # -- sign-in ---------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        page = _page(request, "home")
        return self.render(page, "index.html", "home")

    async def sign_in(self, request: Request, area: Area) -> Response:
        page = _page(request, area)
        form = await request.form()
        if not _csrf_ok(page, form):
            return self.render(page, "signin.html", area, status=403, error=page.t("csrf_failed"))
        key = _field(form, "key")
        if not key.startswith("oh_") or not 8 <= len(key) <= 200 or not key.isascii():
            return self.sign_in_page(page, error=page.t("key_invalid"), status=401)
        response = RedirectResponse(f"/{area}", status_code=303)
        response.set_cookie(
            key_cookie(area),
            key,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=f"/{area}",
        )
        return self.finish(page, response)

    async def sign_out(self, request: Request, area: Area) -> Response:
        page = _page(request, area)
        form = await request.form()
        if not _csrf_ok(page, form):
            return self.render(page, "signin.html", area, status=403, error=page.t("csrf_failed"))
        response = RedirectResponse(f"/{area}", status_code=303)
        response.delete_cookie(key_cookie(area), path=f"/{area}")
        return self.finish(page, response)

    # -- the counter desk --------------------------------------------------------------------

    async def _items(self, page: Page) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = await page.gateway(public=True).get(
            "/v1/catalog/service-items"
        )
        return items

    async def desk(self, request: Request) -> Response:
        page = _page(request, "desk")
        if page.key is None:
            return self.sign_in_page(page)
        return self.render(
            page,
            "desk.html",
            "desk",
            items=await self._items(page),
            form={"service_item": "", "purpose": ""},
            result=None,
        )

    async def desk_check(self, request: Request) -> Response:
        page = _page(request, "desk")
        form = await request.form()
        if page.key is None:
            return self.sign_in_page(page)
        if not _csrf_ok(page, form):
            return self.render(
                page,
                "desk.html",
                "desk",
                status=403,
                error=page.t("csrf_failed"),
                items=await self._items(page),
                form={"service_item": "", "purpose": ""},
                result=None,
            )
        return await self._check(
            page,
            id_number=_field(form, "id_number"),
            item_text=_field(form, "service_item"),
            purpose=_field(form, "purpose"),
        )

    async def desk_consent(self, request: Request) -> Response:
        page = _page(request, "desk")
        form = await request.form()
        if page.key is None:
            return self.sign_in_page(page)
        id_number = _field(form, "id_number")
        item_text = _field(form, "service_item")
        purpose = _field(form, "purpose")
        if not _csrf_ok(page, form):
            return await self._check(
                page,
                id_number=id_number,
                item_text=item_text,
                purpose=purpose,
                error=page.t("csrf_failed"),
                status=403,
            )
        days = _field(form, "days")
        lifetime = dt.timedelta(days=int(days) if days in ("1", "7", "30") else 7)
        types = [v for v in form.getlist("license_types") if isinstance(v, str)]
        try:
            await page.gateway().post(
                "/v1/consents",
                {
                    "id_number": id_number,
                    "purpose": purpose,
                    "license_types": types,
                    "expires_at": (dt.datetime.now(dt.UTC) + lifetime).isoformat(),
                },
            )
        except ApiCallError as exc:
            refused = self.refused(page, exc)
            if refused is not None:
                return refused
            return await self._check(
                page,
                id_number=id_number,
                item_text=item_text,
                purpose=purpose,
                error=_problem_text(page, exc),
            )
        return await self._check(
            page,
            id_number=id_number,
            item_text=item_text,
            purpose=purpose,
            notice=page.t("consent_recorded"),
        )

    async def _check(
        self,
        page: Page,
        *,
        id_number: str,
        item_text: str,
        purpose: str,
        notice: str | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> Response:
        items = await self._items(page)
        item = _match_item(items, item_text)
        form = {
            "service_item": (item["name_zh"] if page.lang == "zh" else item["name_en"])
            if item
            else item_text,
            "purpose": purpose,
            "id_number": id_number,
        }

        def again(message: str, code: int = 422) -> Response:
            return self.render(
                page,
                "desk.html",
                "desk",
                status=code,
                items=items,
                form=form,
                result=None,
                error=message,
            )

        if item is None:
            return again(page.t("item_unknown"))
        if len(purpose) < 2:
            return again(page.t("purpose_missing"))
        if not id_number:
            return again(page.t("id_missing"))
        gateway = page.gateway()
        try:
            check = await gateway.post(
                "/v1/material-checks",
                {"id_number": id_number, "purpose": purpose, "service_item": item["code"]},
            )
        except ApiCallError as exc:
            return self.refused(page, exc) or again(_problem_text(page, exc), exc.status)
        name = "name_zh" if page.lang == "zh" else "name_en"
        materials = []
        consent_types: list[str] = []
        for m in check["materials"]:
            licenses = []
            for lic in m["licenses"]:
                licenses.append(await self._covered_license(page, gateway, lic, item, purpose))
            reason = m.get("reason")
            if m["status"] == "consent_required" and m.get("license_type"):
                consent_types.append(m["license_type"])
            materials.append(
                {
                    "code": m["code"],
                    "name": m[name],
                    "status": m["status"],
                    "reason": page.t(f"reason_{reason}") if reason else None,
                    "licenses": licenses,
                }
            )
        result = {
            "item_name": f"{item['name_zh']} · {item['name_en']}"
            if page.lang == "en"
            else item["name_zh"],
            "id_masked": check["id_masked"],
            "materials": materials,
            "covered_count": sum(1 for m in materials if m["status"] == "covered"),
            "paper": [m["name"] for m in materials if m["status"] != "covered"],
            "printed_at": dt.datetime.now(CHINA).strftime("%Y-%m-%d %H:%M"),
        }
        return self.render(
            page,
            "desk.html",
            "desk",
            status=status,
            items=items,
            form=form,
            result=result,
            consent_types=list(dict.fromkeys(consent_types)),
            notice=notice,
            error=error,
        )

    async def _covered_license(
        self,
        page: Page,
        gateway: Gateway,
        lic: Mapping[str, Any],
        item: Mapping[str, Any],
        purpose: str,
    ) -> dict[str, Any]:
        subject = lic["credential"].get("credentialSubject", {})
        authority = subject.get("issuingAuthority", {})
        issuer = (authority.get("nameEn") if page.lang == "en" else authority.get("name")) or lic[
            "provenance"
        ]["department_name_zh"]
        entry: dict[str, Any] = {
            "license_id": lic["license_id"],
            "name": lic["name_zh"] if page.lang == "zh" else lic["name_en"],
            "issuer": issuer,
            "status": lic["status"],
            "qr": None,
            "copy_error": None,
        }
        try:
            copy = await gateway.post(
                f"/v1/licenses/{quote(lic['license_id'], safe='')}/annotated-copies",
                {"purpose": purpose, "service_item": item["code"]},
            )
        except ApiCallError as exc:
            entry["copy_error"] = _problem_text(page, exc)
            return entry
        payload = encode_copy(copy["credential"])
        entry.update(
            qr=Markup(qr_svg(payload, title=f"{page.t('qr_caption')}: {entry['name']}")),
            payload=payload,
            payload_chars=len(payload),
            copy_until=_local(copy["valid_until"]),
        )
        return entry

    # -- the holder's page -------------------------------------------------------------------

    async def me(self, request: Request) -> Response:
        page = _page(request, "me")
        if page.key is None:
            return self.sign_in_page(page)
        return self.render(page, "me.html", "me", view=None)

    async def me_view(self, request: Request) -> Response:
        page = _page(request, "me")
        form = await request.form()
        if page.key is None:
            return self.sign_in_page(page)
        if not _csrf_ok(page, form):
            return self.render(
                page, "me.html", "me", status=403, view=None, error=page.t("csrf_failed")
            )
        return await self._holder_view(page, _field(form, "id_number"), _holder_kind(form))

    async def me_revoke(self, request: Request) -> Response:
        page = _page(request, "me")
        form = await request.form()
        if page.key is None:
            return self.sign_in_page(page)
        id_number, kind = _field(form, "id_number"), _holder_kind(form)
        if not _csrf_ok(page, form):
            return self.render(
                page, "me.html", "me", status=403, view=None, error=page.t("csrf_failed")
            )
        consent_id = _field(form, "consent_id")
        try:
            await page.gateway().post(
                f"/v1/consents/{quote(consent_id, safe='')}/revocations",
                {"id_number": id_number, "holder_kind": kind, "purpose": REVOKE_PURPOSE},
            )
        except ApiCallError as exc:
            return self.refused(page, exc) or await self._holder_view(
                page, id_number, kind, error=_problem_text(page, exc)
            )
        return await self._holder_view(page, id_number, kind, notice=page.t("revoked_notice"))

    async def _holder_view(
        self,
        page: Page,
        id_number: str,
        kind: str,
        *,
        notice: str | None = None,
        error: str | None = None,
    ) -> Response:
        if not id_number:
            return self.render(
                page, "me.html", "me", status=422, view=None, error=page.t("id_missing")
            )
        gateway = page.gateway()
        holder = {"id_number": id_number, "holder_kind": kind}
        try:
            history, consents, departments, items, types = await asyncio.gather(
                gateway.post(
                    "/v1/access-history", {**holder, "purpose": HISTORY_PURPOSE, "limit": 200}
                ),
                gateway.post(
                    "/v1/holder-consents",
                    {**holder, "purpose": CONSENTS_PURPOSE, "include_inactive": True},
                ),
                gateway.get("/v1/supervision/departments"),
                self._items(page),
                page.gateway(public=True).get("/v1/catalog/license-types"),
            )
        except ApiCallError as exc:
            return self.refused(page, exc) or self.render(
                page,
                "me.html",
                "me",
                status=exc.status,
                view=None,
                error=_problem_text(page, exc),
            )
        zh = page.lang == "zh"
        dept_names = {d["code"]: d["short_zh"] if zh else d["name_en"] for d in departments}
        item_names = {i["code"]: i["name_zh"] if zh else i["name_en"] for i in items}
        type_names = {lt["code"]: lt["name_zh"] if zh else lt["name_en"] for lt in types}
        now = dt.datetime.now(dt.UTC)
        view = {
            "id_masked": history["id_masked"],
            "id_number": id_number,
            "holder_kind": kind,
            "consents": [
                {
                    "consent_id": c["consent_id"],
                    "consumer": c["consumer"],
                    "purpose": c["purpose"],
                    "types": "、".join(type_names.get(code, code) for code in c["license_types"])
                    or page.t("all_conditional"),
                    "granted": _local(c["granted_at"]),
                    "expires": _local(c["expires_at"]),
                    "state": "revoked"
                    if c["revoked_at"]
                    else ("expired" if _parse(c["expires_at"]) <= now else "active"),
                }
                for c in consents["consents"]
            ],
            "accesses": [
                {
                    "when": _local(a["at"]),
                    "department": dept_names.get(a["department"] or "", a["department"] or ""),
                    "consumer": a["consumer"],
                    "action": page.t(f"act_{a['action']}"),
                    "purpose": a["purpose"],
                    "service_item": item_names.get(
                        a["service_item"] or "", a["service_item"] or ""
                    ),
                    "licenses": len(a["licenses"]) or "",
                    "result": a["result"],
                }
                for a in history["accesses"]
            ],
        }
        return self.render(page, "me.html", "me", view=view, notice=notice, error=error)

    # -- the supervision dashboard -----------------------------------------------------------

    async def supervision(self, request: Request) -> Response:
        page = _page(request, "supervision")
        if page.key is None:
            return self.sign_in_page(page)
        asked = request.query_params.get("days", "14")
        days = int(asked) if asked.isdigit() and int(asked) in SUPERVISION_DAYS else 14
        gateway = page.gateway()
        try:
            stats, departments, trends, use, items = await asyncio.gather(
                gateway.get("/v1/supervision/statistics"),
                gateway.get("/v1/supervision/departments"),
                gateway.get("/v1/supervision/trends", last=30),
                gateway.get("/v1/supervision/usage", days=days),
                self._items(page),
            )
        except ApiCallError as exc:
            return self.refused(page, exc) or self.render(
                page,
                "supervision.html",
                "supervision",
                status=exc.status,
                view=None,
                error=_problem_text(page, exc),
            )
        view = _dashboard(page, stats, departments, trends, use, items, days)
        return self.render(page, "supervision.html", "supervision", view=view)


def _holder_kind(form: FormData) -> str:
    kind = _field(form, "holder_kind")
    return kind if kind in ("natural_person", "legal_person") else "natural_person"


def _match_item(items: list[dict[str, Any]], text: str) -> dict[str, Any] | None:
    """The service item the clerk typed: its code, Chinese or English name (or "name · name")."""
    wanted = text.strip().casefold()
    if not wanted:
        return None
    for item in items:
        names = {
            item["code"].casefold(),
            item["name_zh"].casefold(),
            item["name_en"].casefold(),
            f"{item['name_zh']} · {item['name_en']}".casefold(),
        }
        if wanted in names:
            return item
    return None


def _dashboard(
    page: Page,
    stats: Mapping[str, Any],
    departments: list[dict[str, Any]],
    trends: list[dict[str, Any]],
    use: Mapping[str, Any],
    items: list[dict[str, Any]],
    days: int,
) -> dict[str, Any]:
    """The dashboard's figures and charts from the supervision API's answers."""
    zh = page.lang == "zh"
    dept_names = {d["code"]: d["short_zh"] if zh else d["name_en"] for d in departments}
    runs_of = {t["source"]: t["runs"] for t in trends}
    sources = []
    for s in stats["sources"]:
        rates = [r["quarantine_rate"] for r in runs_of.get(s["source"], [])]
        last = next((r for r in reversed(rates) if r is not None), None)
        sources.append(
            {
                "source": s["source"],
                "department": dept_names.get(s["department"], s["department"]),
                "freshness": s["freshness"],
                "quality": s["quality"],
                "last_load": _local(s["last_load_at"]) or page.t("never"),
                "age": f"{s['age_hours']:.1f} h" if s["age_hours"] is not None else "—",
                "sla": f"{s['sla_hours']:g}",
                "rows_loaded": s["rows_loaded"],
                "rows_quarantined": s["rows_quarantined"],
                "runs": s["runs"],
                "spark": sparkline(rates, title=f"{page.t('quarantine_trend')}: {s['source']}"),
                "last_rate": f"{last:.1%}" if last is not None else "—",
            }
        )
    since = dt.date.fromisoformat(use["since"])
    day_list = [since + dt.timedelta(days=i) for i in range(use["days"])]
    used_departments = sorted({d["department"] for d in use["daily"]})
    per = {(d["day"], d["department"]): d["lookups"] + d["material_checks"] for d in use["daily"]}
    series = {
        dept_names.get(dep, dep): [per.get((day.isoformat(), dep), 0) for day in day_list]
        for dep in used_departments
    }
    item_names = {i["code"]: i["name_zh"] if zh else i["name_en"] for i in items}
    material_names = {
        (i["code"], m["code"]): m["name_zh"] if zh else m["name_en"]
        for i in items
        for m in i["materials"]
    }
    savings = [
        {
            "code": s["service_item"],
            "name": item_names.get(s["service_item"], s["service_item"]),
            "checks": s["checks"],
            "not_asked": s["certificates_not_asked"],
            "by_material": "、".join(
                f"{material_names.get((s['service_item'], code), code)} {n}"
                for code, n in s["by_material"].items()
            ),
        }
        for s in use["savings"]
    ]
    batches = []
    for batch in sorted({d["batch"] for d in departments}):
        members = [d for d in departments if d["batch"] == batch]
        batches.append(
            {
                "batch": batch,
                "deadline": members[0]["deadline"],
                "total": len(members),
                "onboarded": sum(1 for d in members if d["onboarded"]),
                "departments": [
                    {
                        "code": d["code"],
                        "name": d["short_zh"] if zh else d["name_en"],
                        "onboarded": d["onboarded"],
                        "loaded": d["loaded"],
                    }
                    for d in sorted(members, key=lambda d: (not d["onboarded"], d["code"]))
                ],
            }
        )
    return {
        "as_of": _local(stats["as_of"]),
        "days": days,
        "sources": sources,
        "open_cards": stats["open_cards"],
        "use_chart": stacked_bars(
            [day.strftime("%m-%d") for day in day_list], series, title=page.t("chart_use")
        ),
        "use_legend": [(name, colour(i)) for i, name in enumerate(series)],
        "use_rows": [
            {
                "day": d["day"],
                "department": dept_names.get(d["department"], d["department"]),
                "lookups": d["lookups"],
                "material_checks": d["material_checks"],
            }
            for d in use["daily"]
        ],
        "savings_chart": horizontal_bars(
            [(s["name"], s["not_asked"]) for s in savings], title=page.t("chart_saving")
        ),
        "savings": savings,
        "batches": batches,
    }


def install(app: FastAPI) -> None:
    """Serve the pages and their static files from ``app`` (left out of the OpenAPI spec)."""
    pages = Pages(Jinja2Templates(directory=str(TEMPLATES_DIR)))
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
    router.add_api_route("/", pages.home, methods=["GET"])
    router.add_api_route("/desk", pages.desk, methods=["GET"])
    router.add_api_route("/desk/check", pages.desk_check, methods=["POST"])
    router.add_api_route("/desk/consent", pages.desk_consent, methods=["POST"])
    router.add_api_route("/me", pages.me, methods=["GET"])
    router.add_api_route("/me/view", pages.me_view, methods=["POST"])
    router.add_api_route("/me/revoke", pages.me_revoke, methods=["POST"])
    router.add_api_route("/supervision", pages.supervision, methods=["GET"])
    router.add_api_route("/{area}/sign-in", pages.sign_in, methods=["POST"])
    router.add_api_route("/{area}/sign-out", pages.sign_out, methods=["POST"])
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
