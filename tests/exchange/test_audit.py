"""The audit chain: concurrent appends make one unbroken chain, and deleting, editing or
reordering any row (or cutting the tail) is caught by `onehub audit verify`, which names it."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from test_api_world import NOW, make_hub
from typer.testing import CliRunner

from exchange.audit import AuditWriter, Entry, append, verify_chain
from exchange.hub import Hub
from exchange.model import AuditEntry, AuditHead


def entry(i: int, *, licenses: tuple[str, ...] = ()) -> Entry:
    return Entry(
        at=NOW + dt.timedelta(seconds=i),
        consumer=f"consumer-{i % 3}",
        action="lookup",
        purpose=f"purpose {i}",
        service_item=None,
        holder_key=f"{i:064x}",
        licenses=licenses,
        result="ok",
        request_id=f"r{i}",
    )


@pytest.fixture
def hub(hub_db_url: str) -> Iterator[Hub]:
    built = make_hub(hub_db_url)
    yield built
    built.engine.dispose()


def test_concurrent_writers_extend_one_chain(hub: Hub) -> None:
    # Two writers stand for two API processes; a third thread appends synchronously the way
    # a consent is recorded. Every row lands once, in one unbroken chain.
    writers = [AuditWriter(hub.engine, max_batch=16) for _ in range(2)]
    seqs: list[int] = []
    lock = threading.Lock()

    def via_writer(w: AuditWriter, offset: int) -> None:
        for i in range(offset, offset + 60):
            seq = w.append(entry(i, licenses=(f"L{i}",)))
            with lock:
                seqs.append(seq)

    def direct() -> None:
        for i in range(1000, 1020):
            with hub.sessions.begin() as session:
                seq = append(session=session, entry=entry(i))
            with lock:
                seqs.append(seq)

    threads = [
        threading.Thread(target=via_writer, args=(writers[0], 0)),
        threading.Thread(target=via_writer, args=(writers[0], 100)),
        threading.Thread(target=via_writer, args=(writers[1], 200)),
        threading.Thread(target=direct),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in writers:
        w.close()
    assert sorted(seqs) == list(range(1, 201))
    with hub.sessions() as session:
        assert verify_chain(session=session) is None
        head = session.get(AuditHead, 1)
        assert head is not None and head.seq == 200
        request_ids = set(session.scalars(sa.select(AuditEntry.request_id)))
    assert request_ids == {
        f"r{i}" for i in [*range(0, 60), *range(100, 160), *range(200, 260), *range(1000, 1020)]
    }


def _fill(hub: Hub, n: int = 12) -> None:
    with hub.sessions.begin() as session:
        for i in range(n):
            append(session=session, entry=entry(i))


def _exec(hub: Hub, *statements: str) -> None:
    with hub.engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))


TAMPERING: dict[str, tuple[Callable[[Hub], None], int]] = {
    "delete a middle row": (lambda h: _exec(h, "DELETE FROM audit_log WHERE seq = 5"), 5),
    "delete the first row": (lambda h: _exec(h, "DELETE FROM audit_log WHERE seq = 1"), 1),
    "delete the last row": (lambda h: _exec(h, "DELETE FROM audit_log WHERE seq = 12"), 12),
    "edit a purpose": (
        lambda h: _exec(h, "UPDATE audit_log SET purpose = 'nothing to see' WHERE seq = 7"),
        7,
    ),
    "edit the consumer": (
        lambda h: _exec(h, "UPDATE audit_log SET consumer = 'someone-else' WHERE seq = 3"),
        3,
    ),
    "edit the time": (
        lambda h: (
            _exec(h, "UPDATE audit_log SET at = at - INTERVAL '1 day' WHERE seq = 9")
            if h.engine.dialect.name == "postgresql"
            else _exec(h, "UPDATE audit_log SET at = '2020-01-01 00:00:00.000000' WHERE seq = 9")
        ),
        9,
    ),
    "swap two rows' seq": (
        lambda h: _exec(
            h,
            "UPDATE audit_log SET seq = -4 WHERE seq = 4",
            "UPDATE audit_log SET seq = 4 WHERE seq = 6",
            "UPDATE audit_log SET seq = 6 WHERE seq = -4",
        ),
        4,
    ),
    "swap two rows' content, hashes and all": (lambda h: _swap_rows(h, 8, 9), 8),
    "re-hash an edited row": (lambda h: _edit_and_rehash(h, 6), 7),
    "cut the head back": (
        lambda h: _exec(h, "UPDATE audit_head SET seq = 11"),
        12,
    ),
}


def _swap_rows(hub: Hub, a: int, b: int) -> None:
    # Reordering: rows a and b trade places (every column but seq moves).
    cols = [
        "at",
        "consumer",
        "action",
        "purpose",
        "service_item",
        "holder_key",
        "licenses",
        "result",
        "request_id",
        "restricted_until",
        "detail",
        "prev_hash",
        "row_hash",
    ]
    with hub.engine.begin() as conn:
        rows = {
            r.seq: r
            for r in conn.execute(sa.select(AuditEntry.__table__).where(AuditEntry.seq.in_([a, b])))
        }
        for target, source in ((a, b), (b, a)):
            conn.execute(
                sa.update(AuditEntry.__table__)
                .where(AuditEntry.seq == target)
                .values({c: getattr(rows[source], c) for c in cols})
            )


def _edit_and_rehash(hub: Hub, seq: int) -> None:
    # An editor who also recomputes the edited row's own hash: the next row no longer follows.
    from exchange.audit import _digest, _payload

    with hub.engine.begin() as conn:
        row = dict(
            conn.execute(sa.select(AuditEntry.__table__).where(AuditEntry.seq == seq))
            .mappings()
            .one()
        )
        row["purpose"] = "rewritten"
        conn.execute(
            sa.update(AuditEntry.__table__)
            .where(AuditEntry.seq == seq)
            .values(purpose="rewritten", row_hash=_digest(row["prev_hash"], _payload(row)))
        )


@pytest.fixture
def verify_cli(
    hub: Hub, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], tuple[int, str]]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ONEHUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ONEHUB_DB_URL", hub.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("ONEHUB_HUB_KEY", hub.hub_key.hex())
    monkeypatch.setenv("ONEHUB_KEK", hub.kek.hex())
    monkeypatch.setenv("ONEHUB_DATA_KEYS", json.dumps({"active": "k1", "keys": {"k1": "00" * 32}}))
    monkeypatch.setenv("COLUMNS", "200")

    def run() -> tuple[int, str]:
        from onehub.cli import app

        result = CliRunner().invoke(app, ["audit", "verify"])
        return result.exit_code, result.output

    return run


def test_audit_verify_names_the_first_broken_row(
    hub: Hub, verify_cli: Callable[[], tuple[int, str]]
) -> None:
    # One database per backend; the log is rebuilt for each way of tampering with it.
    for how, (tamper, broken) in TAMPERING.items():
        _exec(hub, "DELETE FROM audit_licenses", "DELETE FROM audit_log", "DELETE FROM audit_head")
        _fill(hub)
        code, output = verify_cli()
        assert code == 0, (how, output)
        assert "intact" in output and "12 rows" in output, how
        tamper(hub)
        code, output = verify_cli()
        assert code == 1, (how, output)
        assert f"broken at row {broken}:" in output, (how, output)
        with hub.sessions() as session:
            found = verify_chain(session=session)
        assert found is not None and found.seq == broken, how


def test_an_empty_log_verifies(hub: Hub) -> None:
    with hub.sessions() as session:
        assert verify_chain(session=session) is None


def test_a_missing_head_is_reported(hub: Hub) -> None:
    _fill(hub, 3)
    _exec(hub, "DELETE FROM audit_head")
    with hub.sessions() as session:
        found = verify_chain(session=session)
    assert found is not None and "head" in found.reason


def tricky(i: int) -> Entry:
    """Rows whose canonical JSON the PostgreSQL append function must not mis-split."""
    return Entry(
        at=NOW + dt.timedelta(microseconds=i),
        consumer=f'consumer,"seq":0,"service_item":{i}',
        action="material_check",
        purpose=f'核验 \u2028 {i} "seq":0',
        service_item=None if i % 2 else f"item_{i}",
        holder_key=None if i % 5 == 0 else f"{i:064x}",
        licenses=(f"L{i}", f"L{i}", f"M{i}"),  # a repeated license is linked once
        result="ok",
        request_id=None,
        restricted_until=dt.date(2027, 1, 1) if i % 3 == 0 else None,
        detail={"covered": {"seq": 0, "service_item": "x"}, "n": i, "big": 2**53 - 1, "e": "𝄞"},
    )


def test_postgresql_writers_chain_in_the_database_as_python_would(postgres_url: str) -> None:
    """The event-loop writers of two API processes append through the database function; the
    chain they leave verifies in Python (the same hash, row by row) and links each license."""
    import asyncio

    from exchange.audit import AsyncAuditWriter

    hub = make_hub(postgres_url)
    try:
        with hub.sessions.begin() as session:  # the head row, as the first append makes it
            append(session=session, entry=entry(0))

        def process(offset: int) -> list[int]:
            async def run() -> list[int]:
                writer = AsyncAuditWriter(hub.engine, max_batch=7)
                futures = [writer.submit(tricky(i)) for i in range(offset, offset + 40)]
                seqs = [await future for future in futures]
                await writer.close()
                return seqs

            return asyncio.run(run())

        results: dict[int, list[int]] = {}
        threads = [
            threading.Thread(target=lambda o=o: results.__setitem__(o, process(o)))
            for o in (1, 101)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results[1] + results[101]) == list(range(2, 82))
        with hub.sessions() as session:
            assert verify_chain(session=session) is None
            links = session.execute(sa.text("SELECT count(*) FROM audit_licenses")).scalar_one()
            assert links == 80 * 2
            row = session.get(AuditEntry, results[101][3])
            assert row is not None and row.purpose == tricky(104).purpose
            assert row.detail == json.loads(json.dumps(tricky(104).detail))
        # Any edit of a row the database chained is still caught.
        _exec(hub, f"UPDATE audit_log SET detail = '{{}}' WHERE seq = {results[1][5]}")
        with hub.sessions() as session:
            broken = verify_chain(session=session)
        assert broken is not None and broken.seq == results[1][5]
    finally:
        hub.engine.dispose()


def test_the_event_loop_writer_commits_the_rows_of_calls_under_way_together(
    postgres_url: str,
) -> None:
    """Rows of calls already under way when the writer wakes share its commit; a call that
    never submits holds the others back no longer than gather_seconds."""
    import asyncio
    import time

    from exchange.audit import AsyncAuditWriter

    hub = make_hub(postgres_url)
    try:
        with hub.sessions.begin() as session:
            append(session=session, entry=entry(0))

        async def run() -> tuple[list[int], float]:
            commits: list[int] = []
            writer = AsyncAuditWriter(hub.engine, on_commit=commits.append, gather_seconds=0.5)

            async def call(i: int, delay: float) -> int:
                ticket = writer.expect()
                await asyncio.sleep(delay)  # the call's read
                row = writer.submit(entry(i))
                writer.settle(ticket)
                return await row

            seqs = await asyncio.gather(*(call(i, 0.002 * i) for i in range(1, 6)))
            assert sorted(seqs) == [2, 3, 4, 5, 6]
            stuck = writer.expect()  # a call that never submits nor settles
            started = time.perf_counter()
            ticket = writer.expect()
            await writer.submit(entry(9))
            waited = time.perf_counter() - started
            writer.settle(ticket)
            writer.settle(stuck)
            await writer.close()
            return commits, waited

        commits, waited = asyncio.run(run())
        assert commits[0] == 5  # five calls, one commit
        assert commits[1:] == [1]
        assert 0.4 < waited < 2.0  # held back by the stuck call, but only gather_seconds
        with hub.sessions() as session:
            assert verify_chain(session=session) is None
    finally:
        hub.engine.dispose()
