"""PostgreSQL: parallel status changes of one license leave one history, and none is lost."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog_schemas.cipher import FieldCipher
from license_store.error import ConcurrentStatusChangeError, StatusTransitionError
from license_store.issuance import issue
from license_store.key import KeyRing
from license_store.model import License, metadata
from license_store.record import LicenseRecord
from license_store.status import change_status, history

NOW = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC)
DCA = "11440000000000050C"
WORKERS = 20


@pytest.fixture
def pg(postgres_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(postgres_url, pool_size=WORKERS, max_overflow=0)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def _one_license(engine: sa.Engine, kek: bytes, cipher: FieldCipher, record: LicenseRecord) -> str:
    ring = KeyRing(issuer_did="did:web:onehub.gd.gov.cn")
    with Session(engine) as session, session.begin():
        result = issue(
            session=session,
            records=[record],
            signer=ring.signer(session=session, kek=kek, now=NOW),
            cipher=cipher,
            issuer_did=ring.issuer_did,
            type_codes={"marriage_certificate": DCA + "001"},
            issuer_codes={"dca": DCA},
            now=NOW,
        )
    return result.issued[0].license_id


def _race(engine: sa.Engine, actions: list[str], body: Callable[[int, str], None]) -> None:
    barrier = threading.Barrier(len(actions))
    errors: list[BaseException] = []

    def run(worker: int, action: str) -> None:
        try:
            barrier.wait(10)
            body(worker, action)
        except BaseException as exc:  # handed to the main thread, which fails the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors


def test_twenty_parallel_changes_leave_one_chain(
    pg: sa.Engine, kek: bytes, cipher: FieldCipher, make_record: Callable[..., LicenseRecord]
) -> None:
    license_id = _one_license(pg, kek, cipher, make_record(1))
    # Ten suspensions and ten reinstatements race; each retries until its turn comes. With no
    # lost update they all land, alternating, and the counter ends at 20.
    actions = ["suspend", "reinstate"] * (WORKERS // 2)
    landed: list[tuple[int, int]] = []
    conflicts = [0]
    lock = threading.Lock()

    def body(worker: int, action: str) -> None:
        for attempt in range(2000):
            try:
                with Session(pg) as session, session.begin():
                    change = change_status(
                        session=session,
                        license_id=license_id,
                        action=action,
                        reason=f"worker {worker} attempt {attempt}",
                        actor=f"worker-{worker}",
                        now=NOW + dt.timedelta(seconds=worker),
                    )
                with lock:
                    landed.append((worker, change.seq))
                return
            except (ConcurrentStatusChangeError, StatusTransitionError) as exc:
                if isinstance(exc, ConcurrentStatusChangeError):
                    with lock:
                        conflicts[0] += 1
        raise AssertionError(f"worker {worker} never got its turn")

    _race(pg, actions, body)
    with Session(pg) as session:
        chain = history(session=session, license_id=license_id)
        stored = session.get(License, license_id)
        assert stored is not None
        assert [h.seq for h in chain] == list(range(1, WORKERS + 1))
        for before, after in itertools.pairwise(chain):
            assert after.from_status == before.to_status  # one unbroken chain
        assert [h.to_status for h in chain] == ["suspended", "valid"] * (WORKERS // 2)
        assert (stored.status, stored.status_seq) == ("valid", WORKERS)
        assert sorted(seq for _, seq in landed) == list(range(1, WORKERS + 1))
        assert sorted(h.actor for h in chain) == sorted(f"worker-{i}" for i in range(WORKERS))
    assert conflicts[0] > 0, "the workers never actually raced"


def test_of_twenty_parallel_revocations_exactly_one_wins(
    pg: sa.Engine, kek: bytes, cipher: FieldCipher, make_record: Callable[..., LicenseRecord]
) -> None:
    license_id = _one_license(pg, kek, cipher, make_record(2))
    winners: list[int] = []
    losers: list[str] = []
    lock = threading.Lock()

    def body(worker: int, action: str) -> None:
        try:
            with Session(pg) as session, session.begin():
                change_status(
                    session=session,
                    license_id=license_id,
                    action=action,
                    reason=f"worker {worker}",
                    actor=f"worker-{worker}",
                    now=NOW,
                )
            with lock:
                winners.append(worker)
        except (ConcurrentStatusChangeError, StatusTransitionError) as exc:
            with lock:
                losers.append(exc.code)

    _race(pg, ["revoke"] * WORKERS, body)
    assert len(winners) == 1 and len(losers) == WORKERS - 1
    with Session(pg) as session:
        (only,) = history(session=session, license_id=license_id)
        assert (only.seq, only.to_status, only.actor) == (1, "revoked", f"worker-{winners[0]}")
