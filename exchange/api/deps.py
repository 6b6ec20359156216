"""FastAPI dependencies and the two ways a call on a holder's data is served.

:func:`serve_call` runs the call's database work in one worker thread (authentication, rate
limit, the call itself, all in one session). :func:`serve_read`, for lookups and material
checks, reads through the app's Reader on the event loop. Either way the call's audit rows go
to the process's audit writer and the answer leaves only once they are committed: the event
loop awaits the commit, so the rows of concurrent calls share one group commit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import Future
from typing import Annotated, Any, Final, Protocol, TypeVar

import msgspec
from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import State

from exchange.access import Call
from exchange.api.rate_limit import ConsumerRateLimiter
from exchange.audit import AsyncAuditWriter, AuditWriter, Entry
from exchange.consumer import authenticate, check_admission, parse_key
from exchange.hub import Hub
from exchange.model import Consumer
from exchange.reader import Prefetched, Reader

T = TypeVar("T")
JSON: Final = "application/json"

# auto_error=False: a missing key is answered by our own 401 problem, not FastAPI's 403.
bearer = HTTPBearer(
    auto_error=False, bearerFormat="oh_<key id>_<secret>", description="Consumer API key"
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(get_hub)]


def get_session(request: Request) -> Iterator[Session]:
    """A session in autocommit mode: reads without BEGIN/ROLLBACK round trips."""
    sessions: sessionmaker[Session] = request.app.state.read_sessions
    with sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def presented_key(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    return credentials.credentials if credentials else None


def _caller(request: Request, session: Session, presented: str | None) -> Consumer:
    consumer = authenticate(session=session, presented=presented)
    limiter: ConsumerRateLimiter = request.app.state.rate_limiter
    limiter.hit(consumer)
    return consumer


def get_caller(request: Request, session: SessionDep, credentials: BearerDep) -> Consumer:
    """The consumer whose key the request carries, within its rate limit."""
    return _caller(request, session, presented_key(credentials))


CallerDep = Annotated[Consumer, Depends(get_caller)]


class AuditRecorder:
    """The audit sink of one call: takes its rows, then lets the call wait until durable.

    With the thread writer (AuditWriter) a row is submitted at once, from whichever thread the
    call runs in; with the event-loop writer (AsyncAuditWriter) rows are submitted by
    :meth:`durable`, on the loop. Either way the answer waits for the commit.
    """

    def __init__(self, writer: AuditWriter | AsyncAuditWriter) -> None:
        self._writer = writer
        self._entries: list[Entry] = []
        self._futures: list[Future[int]] = []
        self._ticket: int | None = None

    def __call__(self, entry: Entry) -> None:
        if isinstance(self._writer, AuditWriter):
            self._futures.append(self._writer.submit(entry))
        else:
            self._entries.append(entry)

    def expect(self) -> None:
        """Tell the event-loop writer a row of this call is coming (it waits for it briefly
        before committing, so concurrent calls share the commit)."""
        if isinstance(self._writer, AsyncAuditWriter):
            self._ticket = self._writer.expect()

    async def durable(self) -> None:
        """Return once every row is committed; AuditUnavailableError if one is not."""
        # No timeout task per call: the writer resolves every future it takes, with the seq or
        # with AuditUnavailableError (its own retries are bounded).
        if isinstance(self._writer, AsyncAuditWriter):
            submitted = [self._writer.submit(entry) for entry in self._entries]
            if self._ticket is not None:
                self._writer.settle(self._ticket)
                self._ticket = None
            for row in submitted:
                await row
        for future in self._futures:
            await asyncio.wrap_future(future)


async def serve_call(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None,
    work: Callable[[Session, Consumer, AuditRecorder], T],
    *,
    write: bool = False,
) -> T:
    """Authenticate, run ``work`` in a worker thread, and return once its audit is durable.

    ``write`` gives ``work`` a session in a transaction (it commits what it changes) instead of
    an autocommit one for reads.
    """
    hub: Hub = request.app.state.hub
    sessions: sessionmaker[Session] = hub.sessions if write else request.app.state.read_sessions
    recorder = AuditRecorder(request.app.state.audit_writer)
    presented = presented_key(credentials)

    def run() -> T:
        with sessions() as session:
            caller = _caller(request, session, presented)
            return work(session, caller, recorder)

    try:
        return await run_in_threadpool(run)
    finally:
        # Answer (or refuse) only once the row saying so is durable.
        await recorder.durable()


class CallerCache:
    """Reuse the Consumer object of a consumers row read before, if it is the same row.

    The row is still read on every call (a disabled consumer is refused at once); only the
    ORM object is not built again. Callers must not change or attach the object they get.
    """

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._known: dict[tuple[Any, ...], Consumer] = {}

    def admit(self, row: Mapping[Any, Any] | None, secret: str) -> Consumer:
        """:func:`exchange.consumer.admit`, reusing the object made for an identical row."""
        checked = check_admission(row, secret)  # the secret and disabled checks, every time
        key = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in checked.items())
        known = self._known.get(key)
        if known is None:
            if len(self._known) >= self._size:
                self._known.clear()
            known = self._known[key] = Consumer(**checked)
        return known


async def serve_read(
    state: State,
    presented: str | None,
    work: Callable[[Consumer, AuditRecorder, Prefetched | None], Awaitable[T]],
    *,
    holder_key: str | None = None,
) -> T:
    """Authenticate through the app's Reader, run ``work`` on the event loop, and return once
    its audit is durable: the path of lookups and material checks (no worker thread when the
    reader is asynchronous, as on PostgreSQL).

    ``state``: the app's state; ``presented``: the bearer key the request carries, if any.
    ``holder_key``: the holder the body names, if its ID number is valid; the holder's rows are
    then read with the caller's in one round trip and handed to ``work`` (which uses them only
    once it has checked the caller and the call).
    """
    reader: Reader = state.reader
    recorder = AuditRecorder(state.audit_writer)
    recorder.expect()
    try:
        key_id, secret = parse_key(presented)
        prefetched: Prefetched | None = None
        if holder_key is None:
            row = await reader.consumer(key_id)
        else:
            row, prefetched = await reader.caller_and_holder(key_id, holder_key)
        callers: CallerCache = state.callers
        caller = callers.admit(row, secret)
        limiter: ConsumerRateLimiter = state.rate_limiter
        limiter.hit(caller)
        return await work(caller, recorder, prefetched)
    finally:
        await recorder.durable()


def request_id_of(request: Request) -> str | None:
    """The request's id (X-Request-ID, or the one the telemetry middleware made)."""
    request_id: str | None = getattr(request.state, "request_id", None)
    return request_id


class ItemCallBody(Protocol):
    """A request body naming a purpose, a service item and an optional audit embargo."""

    @property
    def purpose(self) -> str: ...

    @property
    def service_item(self) -> str | None: ...

    @property
    def restricted_until(self) -> dt.date | None: ...


def item_call(caller: Consumer, body: ItemCallBody, request_id: str | None) -> Call:
    """The Call (who, why, for which service item) that a body-carrying request makes."""
    return Call(
        consumer=caller,
        purpose=body.purpose,
        service_item=body.service_item,
        request_id=request_id,
        restricted_until=body.restricted_until,
    )


def encoded_response(content: Any, status_code: int = 200) -> Response:
    """``content`` (dicts, lists, dataclasses, msgspec.Raw) as JSON, encoded by msgspec.

    For answers built as plain data with credentials embedded as their JSON text; the route's
    response_model documents the shape (tests/exchange/test_api_schema.py holds them to it).
    """
    return Response(msgspec.json.encode(content), status_code=status_code, media_type=JSON)


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """The model as JSON, serialised once by pydantic (the route's response_model documents it).

    Lookups carry signed credentials: letting FastAPI validate the model again and dump it
    through the json module costs more than the rest of the answer.
    """
    return Response(
        model.model_dump_json().encode(), status_code=status_code, media_type="application/json"
    )
