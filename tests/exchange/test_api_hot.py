"""The hot path (exchange.api.hot) answers lookups and material checks exactly as the framework
does, and hands the framework every request it does not take.

Each request is sent twice to the same app: once as a client sends it (the hot path takes it
if it can) and once with the hot path switched off (FastAPI, pydantic and the routes' own
handlers). Status, body and headers must be the same, and the hot path must have served
exactly the requests that are well-formed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_api_world import COMPANY, PERSON, STRANGER, World, add_consumer, world

from exchange.api.app import ExchangeApp
from exchange.api.hot import HotPath
from exchange.consumer import disable

TALENT = "talent_household_registration"
HOUSING = "housing_provident_withdrawal"
PURPOSE = "办理人才引进落户"


@pytest.fixture(scope="module")
def hot_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url = f"sqlite:///{tmp_path_factory.mktemp('hot') / 'hub.db'}"
    with world(url) as built:
        hub = built.hub
        built.keys = {
            "counter": add_consumer(hub, "dps-counter", kind="counter", department="dps"),
            "department": add_consumer(hub, "dps-dept", kind="department", department="dps"),
            "housing": add_consumer(hub, "dhurd-counter", kind="counter", department="dhurd"),
            "restrict": add_consumer(
                hub, "dps-police", kind="department", department="dps", may_restrict=True
            ),
            "slow": add_consumer(
                hub, "slow", kind="department", department="dps", rate_limit="2/minute"
            ),
            "gone": add_consumer(hub, "gone", kind="counter", department="dps"),
        }
        with hub.sessions.begin() as session:
            disable(session=session, name="gone", now=dt.datetime.now(dt.UTC))
        yield built


def _app(w: World) -> ExchangeApp:
    app = w.client.app
    assert isinstance(app, ExchangeApp) and app.hot is not None
    return app


def _send(w: World, path: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
    return w.client.post(path, content=content, headers=headers)


def both_ways(
    w: World, path: str, content: bytes, headers: dict[str, str]
) -> tuple[httpx.Response, httpx.Response, bool]:
    """The answer as served (hot path on), the framework's, and whether the hot path took it."""
    app = _app(w)
    hot: HotPath | None = app.hot
    assert hot is not None
    before = hot.served
    served = _send(w, path, content, headers)
    taken = hot.served == before + 1
    app.hot = None
    try:
        framework = _send(w, path, content, headers)
    finally:
        app.hot = hot
    return served, framework, taken


def assert_same(served: httpx.Response, framework: httpx.Response) -> None:
    assert served.status_code == framework.status_code, (served.text, framework.text)
    assert served.content == framework.content
    for name in ("content-type", "retry-after", "x-request-id", "content-length"):
        assert served.headers.get(name) == framework.headers.get(name), name


def json_headers(key: str | None, **extra: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "X-Request-ID": "hot-test", **extra}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def body(**fields: Any) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode()


WELL_FORMED = [
    ("counter", "/v1/lookups", {"id_number": PERSON, "purpose": PURPOSE, "service_item": TALENT}),
    ("department", "/v1/lookups", {"id_number": PERSON, "purpose": "户籍核查"}),
    (
        "department",
        "/v1/lookups",
        {"id_number": COMPANY, "purpose": "企业核查", "holder_kind": "legal_person"},
    ),
    ("department", "/v1/lookups", {"id_number": STRANGER, "purpose": "户籍核查"}),
    (
        "housing",
        "/v1/material-checks",
        {"id_number": PERSON, "purpose": "购房提取住房公积金", "service_item": HOUSING},
    ),
    (
        "restrict",
        "/v1/lookups",
        {"id_number": PERSON, "purpose": "案件调查", "restricted_until": "2027-01-31"},
    ),
    # Well-formed bodies the call refuses: the hot path answers with the framework's problem.
    ("counter", "/v1/lookups", {"id_number": PERSON[:-1] + "0", "purpose": PURPOSE}),
    ("counter", "/v1/lookups", {"id_number": "12345", "purpose": PURPOSE}),
    ("counter", "/v1/lookups", {"id_number": PERSON, "purpose": PURPOSE}),  # no service item
    ("counter", "/v1/lookups", {"id_number": PERSON, "purpose": PURPOSE, "service_item": "nope"}),
    ("department", "/v1/lookups", {"id_number": PERSON, "purpose": "x" * 256}),
    ("gone", "/v1/lookups", {"id_number": PERSON, "purpose": PURPOSE, "service_item": TALENT}),
    ("unknown", "/v1/lookups", {"id_number": PERSON, "purpose": PURPOSE}),
    (
        "department",
        "/v1/lookups",
        {"id_number": PERSON, "purpose": "调查", "restricted_until": "2027-01-31"},
    ),
    (
        "housing",
        "/v1/material-checks",
        {"id_number": PERSON, "purpose": "购房提取", "service_item": "nope"},
    ),
]


@pytest.mark.parametrize(("who", "path", "fields"), WELL_FORMED)
def test_the_hot_path_answers_well_formed_calls_as_the_framework_does(
    hot_world: World, who: str, path: str, fields: dict[str, Any]
) -> None:
    key = hot_world.keys.get(who, "oh_000000000000_" + "x" * 43)
    served, framework, taken = both_ways(hot_world, path, body(**fields), json_headers(key))
    assert taken
    assert_same(served, framework)


MALFORMED = [
    ("no purpose", body(id_number=PERSON), {}),
    ("short purpose", body(id_number=PERSON, purpose="x"), {}),
    ("empty id", body(id_number="", purpose=PURPOSE), {}),
    ("unknown key", body(id_number=PERSON, purpose=PURPOSE, extra=1), {}),
    ("id not a string", body(id_number=110105194912310020, purpose=PURPOSE), {}),
    ("bad kind", body(id_number=PERSON, purpose=PURPOSE, holder_kind="robot"), {}),
    ("long item", body(id_number=PERSON, purpose=PURPOSE, service_item="x" * 65), {}),
    ("datetime", body(id_number=PERSON, purpose=PURPOSE, restricted_until="2027-01-31T00:00"), {}),
    ("not json", b"{id_number: 1", {}),
    ("a list", b"[]", {}),
    ("text/plain", body(id_number=PERSON, purpose=PURPOSE), {"Content-Type": "text/plain"}),
    ("lower-case bearer", body(id_number=PERSON, purpose=PURPOSE), {"Authorization": "bearer "}),
    ("no key", body(id_number=PERSON, purpose=PURPOSE), {"Authorization": ""}),
    ("too large", body(id_number=PERSON, purpose="x" * 300_000), {}),
]


@pytest.mark.parametrize(("case", "content", "extra"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_the_framework_answers_what_the_hot_path_does_not_take(
    hot_world: World, case: str, content: bytes, extra: dict[str, str]
) -> None:
    headers = json_headers(hot_world.keys["department"])
    if extra.get("Authorization") == "bearer ":
        extra = {"Authorization": "bearer " + hot_world.keys["department"]}
    headers.update(extra)
    if headers.get("Authorization") == "":
        del headers["Authorization"]
    served, framework, taken = both_ways(hot_world, "/v1/lookups", content, headers)
    assert not taken
    assert_same(served, framework)
    if case == "lower-case bearer":
        assert served.status_code == 200  # taken by the framework, and served there
    elif case == "datetime":
        # pydantic reads a midnight datetime as a date; msgspec does not, so the framework
        # serves it (and refuses the embargo: this consumer may not restrict).
        assert served.json()["code"] == "restriction_not_allowed"
    else:
        assert served.status_code in (400, 401, 413, 422), served.text


def test_rate_limits_count_calls_served_either_way(hot_world: World) -> None:
    """The limiter is the app's own: two calls pass, the third is refused the same both ways."""
    headers = json_headers(hot_world.keys["slow"])
    content = body(id_number=PERSON, purpose="户籍核查")
    served, framework, taken = both_ways(hot_world, "/v1/lookups", content, headers)
    assert taken and (served.status_code, framework.status_code) == (200, 200)
    served, framework, taken = both_ways(hot_world, "/v1/lookups", content, headers)
    assert taken and served.status_code == 429
    assert_same(served, framework)
    assert served.json()["code"] == "rate_limited"


def test_the_hot_path_counts_its_requests_in_the_metrics(hot_world: World) -> None:
    key = hot_world.keys["department"]
    served, _framework, taken = both_ways(
        hot_world, "/v1/lookups", body(id_number=PERSON, purpose="户籍核查"), json_headers(key)
    )
    assert taken and served.status_code == 200
    metrics = hot_world.client.get("/metrics").text
    line = 'onehub_http_requests_total{method="POST",route="/v1/lookups",status="200"}'
    assert line in metrics


_text = st.one_of(
    st.text(max_size=3),
    st.sampled_from([PERSON, COMPANY, STRANGER, PURPOSE, TALENT, HOUSING, "x" * 64, "x" * 65]),
)
_value = st.one_of(
    _text,
    st.none(),
    st.integers(),
    st.booleans(),
    st.sampled_from(["natural_person", "legal_person", "2027-01-31", "2027-02-30"]),
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "id_number": _value,
        "purpose": _value,
        "service_item": _value,
        "holder_kind": _value,
        "restricted_until": _value,
        "extra": _value,
    },
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(fields=_fields, path=st.sampled_from(["/v1/lookups", "/v1/material-checks"]))
def test_any_body_gets_the_same_answer_both_ways(
    hot_world: World, fields: dict[str, Any], path: str
) -> None:
    headers = json_headers(hot_world.keys["counter"])
    served, framework, taken = both_ways(hot_world, path, body(**fields), headers)
    assert_same(served, framework)
    if taken:
        # Only bodies the routes' pydantic models accept reach the hot path's answer.
        assert framework.status_code != 422 or framework.json()["code"] != "invalid_request"
