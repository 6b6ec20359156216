"""The SQL connector's behaviours, run over SQLite, MariaDB and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from catalog_schemas.catalog import shipped_catalog
from catalog_schemas.errors import FatalError, RetriableError
from catalog_schemas.model import SoftDelete, Source
from connectors import ROW_REF, ReadBatch, apply_mapping, open_connector

T0 = dt.datetime(2016, 3, 23, 9, 0, 0)
USAGE = {"10": "residential", "20": "commercial", "30": "industrial", "40": "office"}

metadata = sa.MetaData()
register = sa.Table(
    "property_register",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("bdcqzh", sa.String(64)),
    sa.Column("qlrlx", sa.String(4)),
    sa.Column("qlrzjh", sa.String(32)),
    sa.Column("qlr", sa.String(128)),
    sa.Column("zl", sa.String(256)),
    sa.Column("mj", sa.Numeric(12, 2)),
    sa.Column("yt", sa.String(4)),
    sa.Column("dbsj", sa.Date),
    sa.Column("last_modified", sa.DateTime, nullable=True),
)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("mariadb", marks=pytest.mark.mariadb),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """An engine on a fresh database of each backend, holding an empty property_register."""
    url = str(request.getfixturevalue(f"{request.param}_url"))
    eng = sa.create_engine(url)
    metadata.create_all(eng)
    yield eng
    eng.dispose()


def row(i: int, modified: dt.datetime | None, **changes: Any) -> dict[str, Any]:
    """A property_register row; every value derives from ``i`` so expectations can be rebuilt."""
    values = {
        "id": i,
        "bdcqzh": f"粤(2016)广州市不动产权第{i:07d}号",
        "qlrlx": "1" if i % 3 else "2",
        "qlrzjh": f"4401061990010{i:05d}",
        "qlr": f"权利人{i}",
        "zl": f"广州市天河区测试路{i}号",
        "mj": decimal.Decimal(f"{50 + i}.{i % 100:02d}"),
        "yt": ["10", "20", "30", "40"][i % 4],
        "dbsj": dt.date(2016, 1, 1) + dt.timedelta(days=i),
        "last_modified": modified,
    }
    values.update(changes)
    return values


def insert(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        conn.execute(register.insert(), rows)


def source(batch_size: int, **connector: Any) -> Source:
    """The shipped dlr_title source with a small batch size (and other connector changes)."""
    shipped = shipped_catalog().source("dlr_title")
    spec = shipped.connector.model_copy(update={"batch_size": batch_size, **connector})
    return shipped.model_copy(update={"connector": spec})


def read(src: Source, engine: sa.Engine, state: dict[str, Any] | None) -> list[ReadBatch]:
    """Every batch of one run, each state passed through JSON as the pipeline commits it."""
    out = []
    for batch, new_state in open_connector(src, location=engine.url.render_as_string(False)).read(
        state
    ):
        out.append(ReadBatch(batch, json.loads(json.dumps(new_state))))
    return out


def ids(batches: list[ReadBatch]) -> list[int]:
    return [int(v) for b in batches for v in b.batch.column("id").to_pylist()]


def expected_mapped(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the mapping must produce for ``rows``, built from the inserted Python values."""
    return [
        {
            "certificate_no": r["bdcqzh"],
            "owner_kind": {"1": "natural_person", "2": "legal_person"}[r["qlrlx"]],
            "owner_id": r["qlrzjh"],
            "owner_name": r["qlr"],
            "location": r["zl"],
            "area_m2": float(r["mj"]),
            "usage": USAGE[r["yt"]],
            "issue_date": r["dbsj"],
            ROW_REF: f"pk={r['id']}",
            "_errors": [],
        }
        for r in rows
    ]


def test_full_load_reads_every_row_once_and_maps_the_same_on_every_backend(
    engine: sa.Engine,
) -> None:
    rows = [row(i, T0 + dt.timedelta(minutes=i)) for i in range(1, 24)]
    insert(engine, rows)
    src = source(batch_size=5)

    batches = read(src, engine, None)

    assert [b.batch.num_rows for b in batches] == [5, 5, 5, 5, 3]
    assert ids(batches) == list(range(1, 24))
    # SQLite keeps its own text for a DATETIME, and the state keeps that text to compare with.
    assert dt.datetime.fromisoformat(batches[-1].state["watermark"]) == T0 + dt.timedelta(
        minutes=23
    )
    assert batches[-1].state["pk"] == 23
    first = batches[0].batch
    assert all(first.schema.field(n).type == pa.string() for n in first.schema.names)
    # The raw text is the same whichever backend stored it.
    assert first.column("mj")[0].as_py() == "51.01"
    assert first.column("dbsj")[0].as_py() == "2016-01-02"
    assert first.column("last_modified")[0].as_py() == "2016-03-23T09:01:00"
    lt = shipped_catalog().license_type("real_estate_title")
    mapped = pa.concat_tables(apply_mapping(b.batch, source=src, license_type=lt) for b in batches)
    assert mapped.to_pylist() == expected_mapped(rows)


def test_incremental_load_returns_inserts_and_updates_only(engine: sa.Engine) -> None:
    insert(engine, [row(i, T0 + dt.timedelta(minutes=i)) for i in range(1, 11)])
    src = source(batch_size=4)
    state = read(src, engine, None)[-1].state

    insert(engine, [row(i, T0 + dt.timedelta(hours=1, minutes=i)) for i in (11, 12)])
    with engine.begin() as conn:
        conn.execute(
            register.update()
            .where(register.c.id.in_([3, 7]))
            .values(qlr="新权利人", last_modified=T0 + dt.timedelta(hours=2))
        )
    batches = read(src, engine, state)

    assert ids(batches) == [11, 12, 3, 7]
    owners = [v for b in batches for v in b.batch.column("qlr").to_pylist()]
    assert owners[2:] == ["新权利人", "新权利人"]
    assert dt.datetime.fromisoformat(batches[-1].state["watermark"]) == T0 + dt.timedelta(hours=2)


def test_rows_sharing_a_timestamp_across_batch_edges_are_neither_lost_nor_doubled(
    engine: sa.Engine,
) -> None:
    same = T0 + dt.timedelta(minutes=5)
    rows = [row(i, same) for i in range(10, 27)]  # 17 rows, one timestamp
    rows += [row(1, T0), row(2, T0 + dt.timedelta(minutes=1)), row(99, T0 + dt.timedelta(hours=1))]
    insert(engine, rows)
    src = source(batch_size=4)

    batches = read(src, engine, None)

    assert ids(batches) == [1, 2, *range(10, 27), 99]
    # A run that stopped after the second batch resumes exactly where that batch ended.
    resumed = read(src, engine, batches[1].state)
    assert ids(resumed) == ids(batches)[8:]
    assert dt.datetime.fromisoformat(batches[1].state["watermark"]) == same
    assert (batches[1].state["pk"], batches[1].state["null_pks"]) == (15, [])


def test_a_rerun_from_the_final_state_yields_nothing(engine: sa.Engine) -> None:
    insert(engine, [row(i, T0 + dt.timedelta(seconds=i // 2)) for i in range(1, 9)])
    src = source(batch_size=3)
    state = read(src, engine, None)[-1].state

    assert read(src, engine, state) == []


def test_the_window_end_is_fixed_when_the_run_starts(engine: sa.Engine) -> None:
    insert(engine, [row(i, T0 + dt.timedelta(minutes=i)) for i in range(1, 7)])
    src = source(batch_size=2)
    run = open_connector(src, location=engine.url.render_as_string(False)).read(None)
    seen = [next(run)]
    # Written during the run, after the window was fixed: left for the next run.
    insert(engine, [row(50, T0 + dt.timedelta(days=1))])
    seen += list(run)

    assert ids(seen) == [1, 2, 3, 4, 5, 6]
    assert ids(read(src, engine, json.loads(json.dumps(seen[-1].state)))) == [50]


def test_a_row_without_watermark_reaches_the_output_once(engine: sa.Engine) -> None:
    insert(engine, [row(i, T0 + dt.timedelta(minutes=i)) for i in range(1, 6)])
    insert(engine, [row(3_000, None), row(40, None)])
    src = source(batch_size=2)

    batches = read(src, engine, None)

    assert ids(batches) == [1, 2, 3, 4, 5, 40, 3_000]
    state = batches[-1].state
    assert state["null_pks"] == ["3000", "40"]
    lt = shipped_catalog().license_type("real_estate_title")
    mapped = pa.concat_tables(apply_mapping(b.batch, source=src, license_type=lt) for b in batches)
    refs, errs = mapped.column(ROW_REF).to_pylist(), mapped.column("_errors").to_pylist()
    errors = dict(zip(refs, errs, strict=True))
    assert errors["pk=40"] == errors["pk=3000"] == ["missing_watermark:last_modified"]
    assert errors["pk=1"] == []

    # Not again; but a new NULL row is, and a repaired one comes back through the window.
    assert read(src, engine, state) == []
    insert(engine, [row(41, None)])
    with engine.begin() as conn:
        conn.execute(
            register.update().where(register.c.id == 40).values(last_modified=T0 + dt.timedelta(1))
        )
    later = read(src, engine, state)
    assert ids(later) == [40, 41]
    assert later[-1].state["null_pks"] == ["3000", "41"]


def test_a_custom_query_is_read_as_a_subquery(engine: sa.Engine) -> None:
    insert(engine, [row(i, T0 + dt.timedelta(minutes=i)) for i in range(1, 9)])
    src = source(
        batch_size=3,
        table=None,
        query="SELECT id, bdcqzh, yt, last_modified FROM property_register WHERE yt <> '40';",
    )

    batches = read(src, engine, None)

    assert ids(batches) == [1, 2, 4, 5, 6, 8]
    assert batches[0].batch.schema.names == ["id", "bdcqzh", "yt", "last_modified", ROW_REF]
    assert read(src, engine, batches[-1].state) == []


def test_a_missing_table_is_fatal(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    with engine.connect():
        pass  # creates the (empty) database file
    engine.dispose()
    with pytest.raises(FatalError, match="property_register") as caught:
        list(open_connector(source(5), location=sqlite_url).read(None))
    assert caught.value.code == "source_table_missing"


def test_a_missing_watermark_column_is_fatal(engine: sa.Engine) -> None:
    src = source(5, watermark="updated_at")
    with pytest.raises(FatalError, match="updated_at"):
        list(open_connector(src, location=engine.url.render_as_string(False)).read(None))


def test_an_unreachable_database_is_retriable() -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    with pytest.raises(RetriableError) as caught:
        list(open_connector(source(5), location=url).read(None))
    assert caught.value.code == "source_unavailable"


def test_a_missing_sqlite_file_is_fatal_and_not_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nowhere.db'}"
    with pytest.raises(FatalError) as caught:
        list(open_connector(source(5), location=url).read(None))
    assert caught.value.code == "source_database_missing"
    assert not (tmp_path / "nowhere.db").exists()


def test_soft_deleted_rows_are_flagged_by_a_deleted_at_column(engine: sa.Engine) -> None:
    insert(engine, [row(i, T0 + dt.timedelta(minutes=i)) for i in range(1, 5)])
    # The department marks deletions with the time; the custom query exposes it.
    src = source(
        batch_size=3,
        table=None,
        query="SELECT p.*, CASE WHEN p.id IN (2, 3) THEN p.last_modified END AS deleted_on "
        "FROM property_register p",
        soft_delete=SoftDelete(deleted_at="deleted_on"),
    )
    lt = shipped_catalog().license_type("real_estate_title")

    batches = read(src, engine, None)
    mapped = pa.concat_tables(apply_mapping(b.batch, source=src, license_type=lt) for b in batches)

    assert mapped.column("_deleted").to_pylist() == [False, True, True, False]


def test_backlog_reports_the_newest_watermark_the_lag_and_rows_waiting(engine: sa.Engine) -> None:
    insert(engine, [row(i, T0 + dt.timedelta(minutes=i)) for i in range(1, 7)])
    src = source(batch_size=4)
    conn = open_connector(src, location=engine.url.render_as_string(False))
    state = read(src, engine, None)[0].state  # four rows committed, up to 09:04
    insert(engine, [row(50, T0 + dt.timedelta(hours=2, minutes=4))])

    backlog = conn.backlog(state)

    assert (backlog.lag, backlog.waiting) == ("2 h", 3)
    assert dt.datetime.fromisoformat(str(backlog.source_watermark)) == T0 + dt.timedelta(
        hours=2, minutes=4
    )
    assert conn.backlog(None).waiting == 7
