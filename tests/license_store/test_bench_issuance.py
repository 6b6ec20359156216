"""bench/issuance.py runs end to end on both backends, and refuses clearly what it cannot do.

The benchmark behind BENCHMARKS.md's issuance row must keep working as the code changes: here it
issues a few records per call and in one call, verifies every credential it stored (the bench
raises if one fails or if fewer licenses were issued than asked), and reports every ratio. No
timing is asserted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from types import ModuleType

import pytest
import sqlalchemy as sa


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_issuance_bench_issues_verifies_and_reports_every_ratio(
    backend: str,
    warm: bool,
    request: pytest.FixtureRequest,
    bench_script: Callable[[str], ModuleType],
) -> None:
    db_url = None if backend == "sqlite" else str(request.getfixturevalue("postgres_url"))
    bench = bench_script("issuance")

    result = bench.run(120, 1, 50, db_url, warm=warm)

    assert len(result["runs"]) == 1
    # Warm, the store already held 120 other licenses: the figures count the timed ones only.
    assert result["verified"] == 120
    for name in ("issue", "whole", "stage", "verify", "lists"):
        for clock in ("cpu", "wall"):
            assert result[f"{name}_ratio_{clock}"] > 0
    assert result["credential_bytes"] > 1000
    if backend == "sqlite":
        assert result["storage_us"] > 0
        # The hub's checkpoint thread copied the one call's pages into the database file.
        assert result["whole_checkpoint_us"] > 0
        assert "server_us" not in result
    else:
        # The server's CPU is read from /proc when it runs on this machine, for both runs.
        assert ("server_us" in result) == ("whole_server_us" in result)


def test_the_bench_says_what_role_a_checkpoint_needs(
    postgres_url: str, bench_script: Callable[[str], ModuleType]
) -> None:
    bench = bench_script("issuance")
    role = f"onehub_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
    engine = sa.create_engine(sa.make_url(postgres_url).set(username=role))
    try:
        with pytest.raises(SystemExit, match="pg_checkpoint"):
            bench._settle(engine)
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP ROLE "{role}"'))
        admin.dispose()


def test_the_sqlite_storage_bench_measures_every_variant(
    bench_script: Callable[[str], ModuleType],
) -> None:
    bench = bench_script("sqlite_storage")
    steps: list[str] = []

    # Enough rows that each variant's CPU is counted in whole kernel ticks.
    result = bench.run(400, 1, 100, steps.append)

    assert [label for label, *_ in result["rows"]] == [v.label for v in bench.VARIANTS]
    for _label, _user, _system, total, runs in result["rows"]:
        assert total > 0 and len(runs) == 1
    assert result["holders"] == 2 and result["token_bytes"] > 1000
    assert steps == ["repeat 1 of 1 done"]
