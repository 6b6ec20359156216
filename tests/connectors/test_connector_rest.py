"""The REST connector against a real HTTP server on 127.0.0.1: auth, retries, hard stop, errors."""

from __future__ import annotations

import email.utils
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from connector_department import T0, Rec, RestDepartment, run

from catalog_schemas.errors import FatalError, RetriableError
from connectors import ReadBatch, RestRetriesExhaustedError, RestSourceConnector
from connectors.rest import RestResponseError

RECORDS = [Rec(i, 1, T0) for i in range(1, 6)]


@pytest.fixture
def api() -> Iterator[RestDepartment]:
    dept = RestDepartment("page")
    dept.write(RECORDS)
    yield dept
    dept.close()


def read(dept: RestDepartment, location: str | None = None, **connector: Any) -> list[ReadBatch]:
    src = dept.source(batch_size=100, **connector)
    conn = RestSourceConnector(src, location=location or dept.location(), sleep=lambda s: None)
    return [ReadBatch(b, json.loads(json.dumps(s))) for b, s in conn.read(None)]


def ids(batches: list[ReadBatch]) -> list[str]:
    return [v for b in batches for v in b.batch.column("id").to_pylist()]


def test_bearer_token_from_the_connection_is_sent(api: RestDepartment) -> None:
    assert ids(read(api)) == ["1", "2", "3", "4", "5"]

    wrong = api.location().replace("s3cr3t-token", "wrong")
    with pytest.raises(FatalError) as caught:
        read(api, wrong)
    assert caught.value.code == "source_auth_failed"
    assert "wrong" not in str(caught.value)


def test_hmac_signed_requests_pass_the_servers_check() -> None:
    dept = RestDepartment("offset", auth="hmac")
    try:
        dept.write(RECORDS)
        assert ids(run(dept, dept.source(batch_size=100), None)) == ["1", "2", "3", "4", "5"]
        forged = dept.location().replace(":hmac-secret-1@", ":not-the-secret@")
        with pytest.raises(FatalError) as caught:
            read(dept, forged)
        assert caught.value.code == "source_auth_failed"
    finally:
        dept.close()


def test_5xx_answers_are_retried_with_exponential_backoff(api: RestDepartment) -> None:
    api.api.failures = [(503, {}), (502, {}), (500, {})]
    waits: list[float] = []
    src = api.source(batch_size=100, backoff_seconds=0.5, max_backoff_seconds=10)

    got = list(RestSourceConnector(src, location=api.location(), sleep=waits.append).read(None))

    assert ids([ReadBatch(*b) for b in got]) == ["1", "2", "3", "4", "5"]
    assert waits == [0.5, 1.0, 2.0]


def test_429_retry_after_is_honoured_in_seconds_and_as_a_date(api: RestDepartment) -> None:
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    api.api.failures = [(429, {"Retry-After": "7"}), (429, {"Retry-After": date})]
    waits: list[float] = []
    src = api.source(batch_size=100, max_backoff_seconds=60)

    list(RestSourceConnector(src, location=api.location(), sleep=waits.append).read(None))

    assert waits[0] == 7
    assert 25 <= waits[1] <= 31


def test_retry_after_really_waits(api: RestDepartment) -> None:
    api.api.failures = [(429, {"Retry-After": "1"})]
    src = api.source(batch_size=100, max_backoff_seconds=5)
    started = time.monotonic()

    got = list(RestSourceConnector(src, location=api.location()).read(None))

    assert time.monotonic() - started >= 1.0
    assert sum(b.batch.num_rows for b in got) == 5


def test_after_the_retry_limit_the_read_stops_with_a_clear_error(api: RestDepartment) -> None:
    api.api.failures = [(503, {})] * 10
    src = api.source(batch_size=100, max_retries=3)

    with pytest.raises(RestRetriesExhaustedError) as caught:
        list(RestSourceConnector(src, location=api.location(), sleep=lambda s: None).read(None))

    message = str(caught.value)
    assert "failed 4 times" in message and "max_retries 3" in message and "HTTP 503" in message
    assert "/api/titles/page" in message
    assert not isinstance(caught.value, RetriableError)
    assert len(api.api.requests) == 4


def test_an_unreachable_api_is_retried_then_stops() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    dept = RestDepartment("page", auth="none")
    try:
        src = dept.source(batch_size=100, max_retries=2)
        waits: list[float] = []
        conn = RestSourceConnector(src, location=f"http://127.0.0.1:{port}", sleep=waits.append)
        with pytest.raises(RestRetriesExhaustedError, match="ConnectError"):
            list(conn.read(None))
        assert len(waits) == 2
    finally:
        dept.close()


def test_a_4xx_answer_stops_at_once(api: RestDepartment) -> None:
    with pytest.raises(RestResponseError, match="HTTP 404"):
        read(api, path="/api/nowhere")
    assert len(api.api.requests) == 1


def test_an_answer_without_the_records_list_is_fatal(api: RestDepartment) -> None:
    with pytest.raises(RestResponseError, match="no records list at 'items'"):
        read(api, records_path="items")


def test_auth_needs_credentials_in_the_connection(api: RestDepartment) -> None:
    with pytest.raises(FatalError, match="bearer needs a token"):
        RestSourceConnector(api.source(batch_size=10), location=api.server.base)
