"""The reader's own connection pool (exchange.reader._Connections) on a real PostgreSQL."""

from __future__ import annotations

import asyncio

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
