"""Paged JSON APIs: page number, offset, cursor or next link; bearer or HMAC; retries.

- **Where.** The connection resolves to the API's base URL; credentials ride in its user part
  (``https://<token>@api.dept.gov.cn`` for a bearer token, ``https://<key id>:<secret>@...`` for
  HMAC). They are taken out before any request and never logged.
- **Paging** (``pagination.style``): ``page`` (``page=1,2,...``), ``offset`` (``offset=0,500,...``),
  both ending at a short or empty page; ``cursor`` (the body's ``cursor_path`` value is sent as
  ``cursor_param`` until it is null); ``next_link`` (the body's ``next_path`` URL, or the
  ``Link: <...>; rel="next"`` header, until there is none); ``none`` (one request).
- **Signing** (``auth: hmac``): headers ``key_header`` = key id, ``timestamp_header`` = Unix
  seconds, ``signature_header`` = hex HMAC-SHA256 of the secret over
  ``GET\\n<path?query>\\n<timestamp>\\n<sha256 hex of the body>`` (the body is empty for GET).
- **Retries.** 429 and 5xx answers and transport failures raise :class:`RestRetriableError`;
  tenacity retries only :class:`~catalog_schemas.errors.RetriableError`, waiting
  ``backoff_seconds * 2**(n-1)`` or the answer's ``Retry-After`` (seconds or an HTTP date),
  each capped at ``max_backoff_seconds``. After ``max_retries`` retries the read stops with
  :class:`RestRetriesExhaustedError` (a FatalError) naming the request and the last failure.
  401/403 and other 4xx answers stop at once.
- **Incremental.** With ``watermark`` set the state keeps the highest watermark read and the
  primary keys read at exactly that value; the next run sends it as ``since_param``
  (inclusive) and drops records already read (older, or equal and seen), so it works whatever
  order the API returns. Without ``watermark`` every run reads the whole collection (the lake
  leaves unchanged records alone). Within a run, each batch's state also records the paging
  position (``run``), so a run that died resumes at the page after the last committed one.

State: ``{"watermark": W, "seen": [pk, ...], "run": {"since": W0, "seen0": [...], "position":
{...}, "pages": n, "max": M, "max_seen": [...]} | None}``.
Values are strings as :func:`connectors.cell.cell_text` renders them; columns appear in the
order first met in the batch; ``_row_ref`` is ``p<page>:<index>`` (the page counted from the run's
first request).
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import httpx
import pyarrow as pa
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from catalog_schemas.errors import FatalError, RetriableError
from catalog_schemas.model import RestConnector, Source
from connectors.base import ROW_REF, Backlog, ReadBatch
from connectors.cell import cell_text

logger = logging.getLogger(__name__)


class RestRetriableError(RetriableError):
    """A 429/5xx answer or a transport failure; ``retry_after`` is the server's wish, if any."""

    code = "source_unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RestRetriesExhaustedError(FatalError):
    """The API kept failing after the configured number of retries."""

    code = "source_retries_exhausted"


class RestResponseError(FatalError):
    """The API answered in a way no retry will fix (4xx, not JSON, no records list)."""

    code = "source_bad_response"


@dataclass
class _Run:
    """The progress of one run through the pages (kept in the state between batches)."""

    since: Any
    seen0: list[str]
    position: dict[str, Any]
    pages: int = 0
    max: Any = None
    max_seen: list[str] = field(default_factory=list)

    def as_state(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "seen0": self.seen0,
            "position": self.position,
            "pages": self.pages,
            "max": self.max,
            "max_seen": self.max_seen,
        }


class RestSourceConnector:
    """Reads one paged JSON API; see the module docstring."""

    def __init__(
        self,
        source: Source,
        *,
        location: str,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(source.connector, RestConnector):
            raise FatalError(f"source {source.name!r} is not a REST source", code="connector_kind")
        self._source = source
        self._spec: RestConnector = source.connector
        parts = urlsplit(location)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FatalError(
                f"source {source.name!r}: connection is not an http(s) URL",
                code="connection_invalid",
            )
        self._login = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self._base = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        if self._spec.auth == "bearer" and not (self._password or self._login):
            raise FatalError(
                f"source {source.name!r}: auth bearer needs a token in the connection",
                code="connection_invalid",
            )
        if self._spec.auth == "hmac" and not (self._login and self._password):
            raise FatalError(
                f"source {source.name!r}: auth hmac needs key id and secret in the connection",
                code="connection_invalid",
            )
        self._transport = transport
        self._sleep = sleep
        self._clock = clock

    # -- protocol ----------------------------------------------------------------------------

    def read(self, state: dict[str, Any] | None) -> Iterator[ReadBatch]:
        """Yield the records after ``state``, page by page, in batches of about ``batch_size``."""
        state = dict(state or {})
        spec = self._spec
        saved = state.get("run")
        run = (
            _Run(**saved)
            if saved
            else _Run(
                since=state.get("watermark"),
                seen0=list(state.get("seen") or []),
                position=self._first_position(),
                max=state.get("watermark"),
                max_seen=list(state.get("seen") or []),
            )
        )
        seen0 = set(run.seen0)
        max_seen = set(run.max_seen)
        records: list[dict[str, Any]] = []
        refs: list[str] = []
        yielded = False
        with httpx.Client(transport=self._transport, timeout=spec.timeout_seconds) as client:
            position: dict[str, Any] | None = run.position
            while position is not None:
                body, response = self._get(client, self._request(position, run.since))
                page = _records(body, spec.records_path, self._source.name)
                run.pages += 1
                for index, record in enumerate(page):
                    if not isinstance(record, dict):
                        raise RestResponseError(
                            f"source {self._source.name!r}: record {index} of page {run.pages} "
                            "is not a JSON object"
                        )
                    if spec.watermark is not None:
                        pk = cell_text(record.get(spec.primary_key)) or ""
                        mark = record.get(spec.watermark)
                        if mark is not None and run.since is not None:
                            order = _compare(mark, run.since)
                            if order < 0 or (order == 0 and pk in seen0):
                                continue  # read by an earlier run
                        if mark is not None:
                            order = 1 if run.max is None else _compare(mark, run.max)
                            if order > 0:
                                run.max, max_seen = mark, {pk}
                            elif order == 0:
                                max_seen.add(pk)
                    records.append(record)
                    refs.append(f"p{run.pages}:{index}")
                position = self._next(position, body, response, len(page))
                run.position = position or {}
                run.max_seen = sorted(max_seen)
                if position is None:
                    final = {"watermark": run.max, "seen": run.max_seen}
                    if records or saved or yielded or final != _final_of(state):
                        yield ReadBatch(_batch(records, refs), {**final, "run": None})
                    return
                if len(records) >= spec.batch_size:
                    mid = {**_final_of(state), "run": run.as_state()}
                    yield ReadBatch(_batch(records, refs), mid)
                    records, refs, yielded = [], [], True

    def finish(self, state: dict[str, Any]) -> None:
        """Nothing to tidy up: the state alone records progress."""

    def backlog(self, state: dict[str, Any] | None) -> Backlog:
        """An API cannot tell what it holds without reading it: only the committed watermark."""
        return Backlog(source_watermark=None, lag=None, waiting=None)

    # -- requests ----------------------------------------------------------------------------

    def _first_position(self) -> dict[str, Any]:
        paging = self._spec.pagination
        if paging.style == "page":
            return {"page": paging.first_page}
        if paging.style == "offset":
            return {"offset": 0}
        return {}

    def _request(self, position: dict[str, Any], since: Any) -> httpx.Request:
        spec, paging = self._spec, self._spec.pagination
        if "url" in position:  # a next link carries its own query
            return httpx.Request("GET", position["url"])
        params: dict[str, str] = dict(spec.params)
        if spec.since_param is not None and since is not None:
            params[spec.since_param] = str(since)
        if paging.style in ("page", "offset") and paging.size_param:
            params[paging.size_param] = str(paging.page_size)
        if paging.style == "page":
            params[paging.page_param] = str(position["page"])
        elif paging.style == "offset":
            params[paging.offset_param] = str(position["offset"])
        elif paging.style == "cursor" and position.get("cursor") is not None:
            params[paging.cursor_param] = str(position["cursor"])
        url = self._base.rstrip("/") + "/" + spec.path.lstrip("/")
        return httpx.Request("GET", url, params=params)

    def _next(
        self, position: dict[str, Any], body: Any, response: httpx.Response, count: int
    ) -> dict[str, Any] | None:
        paging = self._spec.pagination
        if paging.style in ("page", "offset"):
            if count == 0 or (paging.size_param and count < paging.page_size):
                return None
            if paging.style == "page":
                return {"page": int(position["page"]) + 1}
            return {"offset": int(position["offset"]) + count}
        if paging.style == "cursor":
            cursor = _path(body, paging.cursor_path)
            if cursor in (None, ""):
                return None
            if cursor == position.get("cursor"):
                raise RestResponseError(
                    f"source {self._source.name!r}: the API returned the same cursor again"
                )
            return {"cursor": cursor}
        if paging.style == "next_link":
            link = _path(body, paging.next_path) if paging.next_path else None
            if link in (None, "") and "next" in response.links:
                link = response.links["next"].get("url")
            if link in (None, ""):
                return None
            url = urljoin(str(response.request.url), str(link))
            if url == str(response.request.url):
                raise RestResponseError(
                    f"source {self._source.name!r}: the API's next link points to the same page"
                )
            return {"url": url}
        return None

    def _get(self, client: httpx.Client, request: httpx.Request) -> tuple[Any, httpx.Response]:
        """Send ``request`` with retries; the parsed JSON body and the response."""
        spec = self._spec
        target = request.url.raw_path.decode("ascii")
        started = self._clock()
        retrying = Retrying(
            retry=retry_if_exception_type(RetriableError),
            stop=stop_after_attempt(spec.max_retries + 1),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts += 1
                    response = self._send(client, request)
        except RetriableError as exc:
            raise RestRetriesExhaustedError(
                f"source {self._source.name!r}: GET {urlsplit(target).path} failed {attempts} "
                f"times in {self._clock() - started:.1f} s (max_retries {spec.max_retries}); "
                f"last: {exc}"
            ) from exc
        try:
            return response.json(), response
        except ValueError:
            raise RestResponseError(
                f"source {self._source.name!r}: GET {urlsplit(target).path} did not answer JSON"
            ) from None

    def _send(self, client: httpx.Client, request: httpx.Request) -> httpx.Response:
        request = self._signed(client, request)
        try:
            response = client.send(request)
        except httpx.TransportError as exc:
            raise RestRetriableError(f"{type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise RestRetriableError(
                f"HTTP {status}", retry_after=_retry_after(response, now=self._clock())
            )
        if status in (401, 403):
            raise FatalError(
                f"source {self._source.name!r}: the API refused the credentials (HTTP {status})",
                code="source_auth_failed",
            )
        if status >= 400:
            raise RestResponseError(
                f"source {self._source.name!r}: GET {request.url.path} answered HTTP {status}"
            )
        return response

    def _signed(self, client: httpx.Client, request: httpx.Request) -> httpx.Request:
        """A fresh request (new timestamp on each attempt) with the configured auth headers."""
        headers = {"Accept": "application/json"}
        if self._spec.auth == "bearer":
            headers["Authorization"] = f"Bearer {self._password or self._login}"
        elif self._spec.auth == "hmac":
            assert self._login is not None and self._password is not None  # checked in __init__
            names = self._spec.hmac
            stamp = str(int(self._clock()))
            message = sign_message("GET", request.url.raw_path.decode("ascii"), stamp, b"")
            signature = hmac.new(self._password.encode(), message, hashlib.sha256).hexdigest()
            headers.update(
                {
                    names.key_header: self._login,
                    names.timestamp_header: stamp,
                    names.signature_header: signature,
                }
            )
        return client.build_request("GET", request.url, headers=headers)

    def _wait(self, state: RetryCallState) -> float:
        spec = self._spec
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        retry_after = getattr(error, "retry_after", None)
        delay = (
            float(retry_after)
            if retry_after is not None
            else spec.backoff_seconds * 2 ** (state.attempt_number - 1)
        )
        return float(min(max(delay, 0.0), spec.max_backoff_seconds))

    def _log_retry(self, state: RetryCallState) -> None:
        outcome = state.outcome
        logger.warning(
            "source %s: attempt %d failed (%s); retrying in %.1f s",
            self._source.name,
            state.attempt_number,
            outcome.exception() if outcome is not None else "?",
            state.upcoming_sleep,
            extra={"source": self._source.name},
        )


def sign_message(method: str, target: str, timestamp: str, body: bytes) -> bytes:
    """The bytes an HMAC signature covers: method, path with query, timestamp, body hash."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{method}\n{target}\n{timestamp}\n{digest}".encode()


def _retry_after(response: httpx.Response, *, now: float) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _path(body: Any, dotted: str | None) -> Any:
    if not dotted:
        return body
    node = body
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _records(body: Any, records_path: str, source: str) -> list[Any]:
    found = _path(body, records_path)
    if not isinstance(found, list):
        where = f"at {records_path!r}" if records_path else "as the body"
        raise RestResponseError(f"source {source!r}: the API answered no records list {where}")
    return found


def _compare(a: Any, b: Any) -> int:
    """Order two watermark values: numbers numerically, anything else as text."""
    numeric = (int, float)
    if isinstance(a, numeric) and isinstance(b, numeric):
        fa, fb = float(a), float(b)
        return (fa > fb) - (fa < fb)
    ta, tb = str(a), str(b)
    return (ta > tb) - (ta < tb)


def _final_of(state: dict[str, Any]) -> dict[str, Any]:
    return {"watermark": state.get("watermark"), "seen": list(state.get("seen") or [])}


def _batch(records: list[dict[str, Any]], refs: list[str]) -> pa.RecordBatch:
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(str(k) for k in record))
    if ROW_REF in names:
        raise RestResponseError(f"a record field may not be called {ROW_REF!r}")
    arrays = [pa.array([cell_text(r.get(n)) for r in records], pa.string()) for n in names]
    arrays.append(pa.array(refs, pa.string()))
    return pa.RecordBatch.from_arrays(arrays, names=[*names, ROW_REF])
