"""The reader's own connection pool (exchange.reader._Connections) on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from exchange.reader import _Connections


def _dsn(postgres_url: str) -> str:
    return sa.make_url(postgres_url).set(drivername="postgresql").render_as_string(False)


def test_no_more_than_size_connections_and_every_call_gets_one(postgres_url: str) -> None:
    async def run() -> tuple[int, set[int]]:
        pool = _Connections(_dsn(postgres_url), 3)
        busy = 0
        most = 0
        backends: set[int] = set()

        async def call() -> None:
            nonlocal busy, most
            async with pool.lent() as connection:
                busy += 1
                most = max(most, busy)
                backends.add(await connection.fetchval("SELECT pg_backend_pid()"))
                await asyncio.sleep(0.005)
                busy -= 1

        await asyncio.gather(*(call() for _ in range(40)))
        await pool.close()
        return most, backends

    most, backends = asyncio.run(run())
    assert most == 3
    assert len(backends) == 3  # connections are lent again, not opened per call


def test_a_connection_left_mid_query_is_not_lent_again(postgres_url: str) -> None:
    async def run() -> None:
        pool = _Connections(_dsn(postgres_url), 1)
        with pytest.raises(asyncpg.PostgresError):
            async with pool.lent() as connection:
                first = await connection.fetchval("SELECT pg_backend_pid()")
                await connection.fetchval("SELECT 1/0")
        task = asyncio.create_task(_slow(pool))
        await asyncio.sleep(0.05)
        task.cancel()  # cancelled in the middle of its query
        with pytest.raises(asyncio.CancelledError):
            await task
        async with pool.lent() as connection:
            again = await connection.fetchval("SELECT pg_backend_pid()")
            assert await connection.fetchval("SELECT 41 + 1") == 42
        assert again != first
        await pool.close()

    asyncio.run(run())


async def _slow(pool: _Connections) -> None:
    async with pool.lent() as connection:
        await connection.execute("SELECT pg_sleep(5)")


def test_a_cancelled_waiter_does_not_keep_the_turn_it_was_given(postgres_url: str) -> None:
    async def run() -> None:
        pool = _Connections(_dsn(postgres_url), 1)
        holder = await pool.acquire()
        first = asyncio.create_task(pool.acquire())
        second = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0.01)
        pool.release(holder, clean=True)  # the first waiter is woken ...
        first.cancel()  # ... and cancelled before it runs
        connection = await asyncio.wait_for(second, 2)  # the second gets the connection
        pool.release(connection, clean=True)
        await pool.close()

    asyncio.run(run())


def test_reads_of_calls_ready_together_share_a_statement_and_get_their_own_rows(
    postgres_url: str,
) -> None:
    """Lookups that are ready in the same turn of the event loop are read in one statement;
    each gets exactly what it would have got alone (and an unknown key gets no consumer)."""
    from test_api_world import (
        PERSON,
        SPOUSE,
        STRANGER,
        add_consumer,
        issue_records,
        make_hub,
        standard_records,
    )

    from catalog_schemas.holder import holder_key
    from exchange.reader import PostgresReader

    hub = make_hub(postgres_url)
    try:
        issue_records(hub, standard_records(hub.catalog))
        keys = [add_consumer(hub, f"c{i}", kind="department", department="dps") for i in range(2)]
        key_ids = [key.split("_")[1] for key in keys] + ["nosuchkey000"]
        holders = [holder_key(hub.hub_key, "natural_person", p) for p in (PERSON, SPOUSE, STRANGER)]
        pairs = [(k, h) for k in key_ids for h in holders]

        async def run() -> tuple[list[Any], list[Any], int]:
            reader = PostgresReader.for_engine(hub.engine)
            alone = [await reader.caller_and_holder(k, h) for k, h in pairs]
            statements = 0
            original = reader._read

            async def counted(batch: Any) -> None:
                nonlocal statements
                statements += 1
                await original(batch)

            reader._read = counted  # type: ignore[method-assign]
            together = await asyncio.gather(*(reader.caller_and_holder(k, h) for k, h in pairs))
            await reader.close()
            return alone, list(together), statements

        alone, together, statements = asyncio.run(run())
        assert statements == 1
        assert together == alone
        assert [consumer is None for consumer, _ in alone] == [False] * 6 + [True] * 3
        assert any(prefetched.held for _, prefetched in alone)
    finally:
        hub.engine.dispose()
