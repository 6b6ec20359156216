"""One behaviour suite over every kind of department system the hub reads.

Backends: SQL on SQLite, MariaDB and PostgreSQL; file drops in every format × encoding (CSV, TSV
and JSON Lines in UTF-8, UTF-8 with BOM, GBK and GB18030; XLSX); REST with each paging style.
Each behaviour runs the real connector and the real mapping, passes every state through JSON as
the lake commit stores it, and applies the batches to a mirror of the lake (deletions remove).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from connector_department import (
    FILE_CASES,
    REST_CASES,
    T0,
    Department,
    FileDepartment,
    Mirror,
    Rec,
    RestDepartment,
    SqlDepartment,
    batch_rows,
    cert_no,
    expected,
    run,
)

from catalog_schemas.catalog import shipped_catalog
from connectors import DELETED, apply_mapping

SQL_CASES = [
    "sqlite",
    pytest.param("mariadb", marks=pytest.mark.mariadb),
    pytest.param("postgres", marks=pytest.mark.postgres),
]
CASES = [
    *(pytest.param(("sql", c), id=f"sql-{c}") for c in ("sqlite",)),
    pytest.param(("sql", "mariadb"), id="sql-mariadb", marks=pytest.mark.mariadb),
    pytest.param(("sql", "postgres"), id="sql-postgres", marks=pytest.mark.postgres),
    *(pytest.param(("file", f"{f}:{e}"), id=f"file-{f}-{e}") for f, e in FILE_CASES),
    *(pytest.param(("rest", s), id=f"rest-{s}") for s in REST_CASES),
]


@pytest.fixture(params=CASES)
def dept(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Department]:
    family, case = request.param
    department: Department
    if family == "sql":
        url = (
            f"sqlite:///{tmp_path / 'dept.db'}"
            if case == "sqlite"
            else str(request.getfixturevalue(f"{case}_url"))
        )
        department = SqlDepartment(url, case)
    elif family == "file":
        fmt, encoding = case.split(":")
        department = FileDepartment(tmp_path / "drop", fmt, encoding)
    else:
        department = RestDepartment(case)
    yield department
    department.close()


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def records(ids: range | list[int], *, version: int = 1, minutes: float | None = None) -> list[Rec]:
    """Records with these ids; each its own timestamp unless ``minutes`` gives them one."""
    return [Rec(i, version, at(minutes if minutes is not None else i)) for i in ids]


def load(dept: Department, truth: dict[int, Rec], recs: list[Rec]) -> None:
    dept.write(recs)
    truth.update({r.id: r for r in recs})


def test_full_load_reads_every_row_once(dept: Department) -> None:
    truth: dict[int, Rec] = {}
    load(dept, truth, records(range(1, 12)))
    src = dept.source(batch_size=4)

    batches = run(dept, src, None)
    mirror = Mirror()
    mirror.apply(src, batches)

    assert mirror.rows == expected(truth)
    assert sorted(mirror.seen) == sorted(cert_no(i) for i in range(1, 12))
    assert len(batches) >= 2  # the batch size was honoured, so there were batch edges


def test_incremental_load_after_inserts_and_updates_reads_only_those(dept: Department) -> None:
    truth: dict[int, Rec] = {}
    load(dept, truth, records(range(1, 12)))
    src = dept.source(batch_size=4)
    mirror = Mirror()
    first = run(dept, src, None)
    mirror.apply(src, first)

    changed = [Rec(3, 2, at(60)), Rec(7, 2, at(61)), *records([20, 21], minutes=62)]
    load(dept, truth, changed)
    second = run(dept, src, first[-1].state)
    delta = Mirror()
    delta.apply(src, second)
    mirror.apply(src, second)

    assert sorted(delta.seen) == sorted(cert_no(i) for i in (3, 7, 20, 21))
    assert delta.rows[cert_no(3)] == "权利人3号v2"
    assert mirror.rows == expected(truth)


def test_rows_sharing_one_timestamp_across_batch_edges_are_read_once_even_on_resume(
    dept: Department,
) -> None:
    truth: dict[int, Rec] = {}
    load(dept, truth, [*records([1, 2]), *records(range(10, 27), minutes=5), *records([99])])
    src = dept.source(batch_size=4)

    batches = run(dept, src, None)
    counts = Counter(cert_no for cert_no in _certs(src, batches))

    assert set(counts) == {cert_no(i) for i in truth}
    assert set(counts.values()) == {1}
    assert len(batches) >= 3
    # A run that died after any committed batch resumes with exactly the rows after it.
    for k in range(len(batches) - 1):
        resumed = run(dept, src, batches[k].state)
        before = _certs(src, batches[: k + 1])
        assert sorted(before + _certs(src, resumed)) == sorted(_certs(src, batches))


def test_deletions_reach_the_mapping_as_deleted_rows(dept: Department) -> None:
    truth: dict[int, Rec] = {}
    load(dept, truth, records(range(1, 9)))
    src = dept.source(batch_size=4)
    mirror = Mirror()
    first = run(dept, src, None)
    mirror.apply(src, first)

    load(dept, truth, [Rec(2, 2, at(30), deleted=True), Rec(5, 2, at(31), deleted=True)])
    second = run(dept, src, first[-1].state)
    mirror.apply(src, second)

    lt = shipped_catalog().license_type(src.license_type)
    flagged = {
        row["certificate_no"]: row[DELETED]
        for b in second
        for row in apply_mapping(b.batch, source=src, license_type=lt).to_pylist()
    }
    assert flagged == {cert_no(2): True, cert_no(5): True}
    assert mirror.rows == expected(truth)
    assert cert_no(2) not in mirror.rows


def test_a_rerun_after_a_complete_run_reads_nothing(dept: Department) -> None:
    truth: dict[int, Rec] = {}
    load(dept, truth, records(range(1, 10)))
    src = dept.source(batch_size=4)
    final = run(dept, src, None)[-1].state

    again = run(dept, src, final)

    assert batch_rows(again) == 0
    assert again == [] or again[-1].state == final


def _certs(src, batches) -> list[str]:  # type: ignore[no-untyped-def]
    lt = shipped_catalog().license_type(src.license_type)
    return [
        c
        for b in batches
        for c in apply_mapping(b.batch, source=src, license_type=lt)
        .column("certificate_no")
        .to_pylist()
    ]
