"""The file-drop connector on real files in a temporary drop folder."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pytest

from catalog_schemas.catalog import shipped_catalog
from catalog_schemas.errors import FatalError
from catalog_schemas.model import Source
from connectors import ROW_REF, FileDropConnector, ReadBatch, apply_mapping, open_connector

HEADER = ["zsbh", "sfzh", "xm", "xwjb", "xkml", "xwsydw", "sysj"]
ROWS = [
    ["1055812016000001", "440106199001010011", "张三", "学士", "工学", "中山大学", "2016-06-30"],
    [
        "1055812016000002",
        "44010619900101002X",
        "李𠮷",
        "硕士",
        "理学",
        "华南理工大学",
        "2016年6月30日",
    ],
    ["1055812016000003", "440106199001010038", "王五", "博士", "医学", "暨南大学", "20160630"],
]
LATER = 10_000.0  # a clock reading long after every file in the test was written


def source(**connector: Any) -> Source:
    """The shipped edu_degree source with connector changes."""
    shipped = shipped_catalog().source("edu_degree")
    return shipped.model_copy(update={"connector": shipped.connector.model_copy(update=connector)})


def connector(folder: Path, src: Source) -> FileDropConnector:
    """A connector whose clock says every file has long been complete."""
    return FileDropConnector(src, location=folder, clock=lambda: time.time() + LATER)


def write(path: Path, rows: list[list[str]], encoding: str, sep: str = ",") -> Path:
    lines = [sep.join(HEADER)] + [sep.join(r) for r in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def read(conn: FileDropConnector, state: dict[str, Any] | None) -> list[ReadBatch]:
    """Every batch of one run, each state passed through JSON as the pipeline commits it."""
    return [ReadBatch(b, json.loads(json.dumps(s))) for b, s in conn.read(state)]


def rows_of(batches: list[ReadBatch]) -> list[dict[str, Any]]:
    return [r for b in batches for r in b.batch.to_pylist()]


@pytest.mark.parametrize(
    ("declared", "written"),
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
        ("gb18030", "gb18030"),
        ("auto", "utf-8"),
        ("auto", "utf-8-sig"),
        ("auto", "gb18030"),
    ],
)
def test_csv_in_each_encoding_reads_the_chinese_text(
    tmp_path: Path, declared: str, written: str
) -> None:
    write(tmp_path / "degrees.csv", ROWS, written)

    batches = read(connector(tmp_path, source(encoding=declared)), None)

    got = rows_of(batches)
    assert [[r[h] for h in HEADER] for r in got] == ROWS
    assert [r[ROW_REF] for r in got] == ["degrees.csv:2", "degrees.csv:3", "degrees.csv:4"]
    assert all(f.type == pa.string() for f in batches[0].batch.schema)


def test_gbk_csv_reads_declared_and_auto(tmp_path: Path) -> None:
    gbk_rows = [[*r[:2], "李四", *r[3:]] for r in ROWS]  # 𠮷 is not in GBK
    for encoding in ("gbk", "auto"):
        folder = tmp_path / encoding
        folder.mkdir()
        write(folder / "degrees.csv", gbk_rows, "gbk")
        got = rows_of(read(connector(folder, source(encoding=encoding)), None))
        assert [[r[h] for h in HEADER] for r in got] == gbk_rows


def test_tsv_and_jsonl(tmp_path: Path) -> None:
    tsv = tmp_path / "tsv"
    tsv.mkdir()
    write(tsv / "degrees.tsv", ROWS, "utf-8", sep="\t")
    got = rows_of(read(connector(tsv, source(format="tsv", pattern="*.tsv")), None))
    assert [[r[h] for h in HEADER] for r in got] == ROWS

    jsonl = tmp_path / "jsonl"
    jsonl.mkdir()
    records: list[dict[str, Any]] = [dict(zip(HEADER, r, strict=True)) for r in ROWS]
    records[1]["extra"] = 7
    lines = [json.dumps(records[0], ensure_ascii=False), "", *(json.dumps(r) for r in records[1:])]
    (jsonl / "degrees.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    batches = read(connector(jsonl, source(format="jsonl", pattern="*.jsonl")), None)
    got = rows_of(batches)
    assert [[r[h] for h in HEADER] for r in got] == ROWS
    assert [r["extra"] for r in got] == [None, "7", None]
    assert [r[ROW_REF] for r in got] == ["degrees.jsonl:1", "degrees.jsonl:3", "degrees.jsonl:4"]


def test_batches_are_cut_to_size_and_a_resumed_run_skips_what_was_yielded(tmp_path: Path) -> None:
    rows = [[f"10558120160000{i:02d}", *ROWS[0][1:]] for i in range(7)]
    write(tmp_path / "a.csv", rows, "utf-8")
    write(tmp_path / "b.csv", ROWS[:1], "utf-8")
    src = source(batch_size=3)

    batches = read(connector(tmp_path, src), None)

    assert [b.batch.num_rows for b in batches] == [3, 3, 1, 1]
    assert batches[0].state["current"]["rows"] == 3
    assert batches[0].state["done"] == []
    assert len(batches[2].state["done"]) == 1 and batches[2].state["current"] is None
    resumed = read(connector(tmp_path, src), batches[0].state)
    assert rows_of(resumed) == rows_of(batches)[3:]
    assert [r[ROW_REF] for r in rows_of(resumed)][:2] == ["a.csv:5", "a.csv:6"]


def test_each_file_is_read_once_and_archived_after_finish(tmp_path: Path) -> None:
    write(tmp_path / "day1.csv", ROWS, "utf-8-sig")
    (tmp_path / "day1.csv.done").touch()
    conn = connector(tmp_path, source())
    state = read(conn, None)[-1].state

    # Committed but not yet finished: the same file, or a copy of it, is not read again.
    (tmp_path / "day1-copy.csv").write_bytes((tmp_path / "day1.csv").read_bytes())
    (tmp_path / "day1-copy.csv.done").touch()
    assert read(connector(tmp_path, source()), state) == []

    connector(tmp_path, source()).finish(state)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive"]
    assert sorted(p.name for p in (tmp_path / "archive").iterdir()) == [
        "day1-copy.csv",
        "day1-copy.csv.done",
        "day1.csv",
        "day1.csv.done",
    ]


def test_a_half_read_file_is_not_archived(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", ROWS, "utf-8")
    conn = connector(tmp_path, source(batch_size=2))
    first = next(iter(conn.read(None)))
    conn.finish(first.state)
    assert (tmp_path / "a.csv").exists()


def test_an_undecodable_file_is_quarantined_and_reading_goes_on(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", ROWS, "gb18030")  # declared utf-8 below: not decodable
    write(tmp_path / "b.csv", ROWS[:1], "utf-8")
    conn = connector(tmp_path, source(encoding="utf-8"))

    got = rows_of(read(conn, None))

    assert [r[ROW_REF] for r in got] == ["b.csv:2"]
    assert not (tmp_path / "a.csv").exists()
    assert (tmp_path / "quarantine" / "a.csv").read_bytes() == "\r\n".join(
        [",".join(HEADER)] + [",".join(r) for r in ROWS]
    ).encode("gb18030") + b"\r\n"
    reason = (tmp_path / "quarantine" / "a.csv.reason.txt").read_text(encoding="utf-8")
    assert "bad_encoding: not valid utf-8" in reason
    assert conn.quarantined == [tmp_path / "quarantine" / "a.csv"]


def test_a_ragged_file_is_quarantined_without_its_content(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", ROWS, "utf-8")
    path.write_text(
        path.read_text(encoding="utf-8") + "1055812016000009,440106199001010054,多\n",
        encoding="utf-8",
    )

    assert read(connector(tmp_path, source()), None) == []

    reason = (tmp_path / "quarantine" / "a.csv.reason.txt").read_text(encoding="utf-8")
    assert "ragged_row: line 5: expected 7 columns, got 3" in reason
    assert "440106199001010054" not in reason


def test_a_file_without_its_marker_is_not_read_when_markers_are_used(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", ROWS[:1], "utf-8")
    write(tmp_path / "b.csv", ROWS[1:], "utf-8")
    (tmp_path / "a.csv.done").touch()

    got = rows_of(read(connector(tmp_path, source()), None))

    assert [r[ROW_REF] for r in got] == ["a.csv:2"]


def test_a_file_modified_too_recently_is_not_read(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", ROWS, "utf-8")
    written = path.stat().st_mtime
    src = source()

    fresh = FileDropConnector(src, location=tmp_path, min_age_seconds=2, clock=lambda: written + 1)
    assert read(fresh, None) == []
    settled = FileDropConnector(
        src, location=tmp_path, min_age_seconds=2, clock=lambda: written + 3
    )
    assert len(rows_of(read(settled, None))) == 3


def test_a_header_only_file_yields_one_empty_batch_that_completes_it(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", [], "utf-8")

    batches = read(connector(tmp_path, source()), None)

    assert [b.batch.num_rows for b in batches] == [0]
    assert batches[0].batch.schema.names == [*HEADER, ROW_REF]
    assert len(batches[0].state["done"]) == 1


def test_files_are_read_in_name_order_and_mapped(tmp_path: Path) -> None:
    write(tmp_path / "2016-07-02.csv", ROWS[2:], "utf-8")
    write(tmp_path / "2016-07-01.csv", ROWS[:2], "utf-8")
    src = source(batch_size=10)
    lt = shipped_catalog().license_type("degree_certificate")

    batches = read(connector(tmp_path, src), None)
    mapped = pa.concat_tables(apply_mapping(b.batch, source=src, license_type=lt) for b in batches)

    assert mapped.column("degree").to_pylist() == ["bachelor", "master", "doctor"]
    assert [str(d) for d in mapped.column("award_date").to_pylist()] == ["2016-06-30"] * 3
    assert mapped.column(ROW_REF).to_pylist() == [
        "2016-07-01.csv:2",
        "2016-07-01.csv:3",
        "2016-07-02.csv:2",
    ]


def test_csv_header_row_skips_the_title_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", ROWS, "utf-8")
    path.write_text("学位授予信息导出\n导出日期：2016-07-01\n" + path.read_text("utf-8"), "utf-8")

    got = rows_of(read(connector(tmp_path, source(header_row=2)), None))

    assert [[r[h] for h in HEADER] for r in got] == ROWS
    assert [r[ROW_REF] for r in got] == ["a.csv:4", "a.csv:5", "a.csv:6"]


def xlsx(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for r in rows:
            sheet.append(r)
    book.save(path)
    return path


def test_xlsx_reads_the_named_sheet_after_the_header_offset(tmp_path: Path) -> None:
    typed = [[*r[:6], dt.date(2016, 6, 30)] for r in ROWS]
    typed[0][0] = 1055812016000001  # a number cell: read without ".0"
    xlsx(
        tmp_path / "degrees.xlsx",
        {
            "说明": [["not the data"]],
            "学位": [["学位授予信息"], [], HEADER, typed[0], [], *typed[1:]],
        },
    )
    src = source(format="xlsx", pattern="*.xlsx", sheet="学位", header_row=1)

    batches = read(connector(tmp_path, src), None)

    got = rows_of(batches)
    assert [r["zsbh"] for r in got] == [r[0] for r in ROWS]
    assert [r["xm"] for r in got] == ["张三", "李𠮷", "王五"]
    assert [r[ROW_REF] for r in got] == ["degrees.xlsx:4", "degrees.xlsx:6", "degrees.xlsx:7"]
    lt = shipped_catalog().license_type("degree_certificate")
    mapped = pa.concat_tables(apply_mapping(b.batch, source=src, license_type=lt) for b in batches)
    assert [str(d) for d in mapped.column("award_date").to_pylist()] == ["2016-06-30"] * 3
    assert mapped.column("_errors").to_pylist() == [[], [], []]
    connector(tmp_path, src).finish(batches[-1].state)
    assert (tmp_path / "archive" / "degrees.xlsx").exists()


def test_xlsx_first_sheet_by_default_and_batches_resume(tmp_path: Path) -> None:
    rows = [[f"10558120160000{i:02d}", *ROWS[0][1:]] for i in range(7)]
    xlsx(tmp_path / "a.xlsx", {"Sheet1": [HEADER, *rows], "Sheet2": [["x"]]})
    src = source(format="xlsx", pattern="*.xlsx", batch_size=3)

    batches = read(connector(tmp_path, src), None)
    resumed = read(connector(tmp_path, src), batches[0].state)

    assert [b.batch.num_rows for b in batches] == [3, 3, 1]
    assert rows_of(resumed) == rows_of(batches)[3:]


@pytest.mark.parametrize(
    ("sheets", "reason"),
    [
        ({"Other": [HEADER, ROWS[0]]}, "missing_sheet: no sheet named '学位'"),
        ({"学位": [HEADER, [*ROWS[0], "extra"]]}, "ragged_row: row 2"),
        ({"学位": [[*HEADER[:3], None, *HEADER[4:]], ROWS[0]]}, "bad_header"),
        ({"学位": [[*HEADER, "xm"], ROWS[0]]}, "duplicate_columns"),
        ({"学位": []}, "bad_header: the sheet has no header row"),
    ],
)
def test_an_unreadable_xlsx_is_quarantined_with_its_reason(
    tmp_path: Path, sheets: dict[str, list[list[Any]]], reason: str
) -> None:
    xlsx(tmp_path / "a.xlsx", sheets)
    src = source(format="xlsx", pattern="*.xlsx", sheet="学位")

    assert read(connector(tmp_path, src), None) == []

    text = (tmp_path / "quarantine" / "a.xlsx.reason.txt").read_text(encoding="utf-8")
    assert reason in text
    assert "440106199001010011" not in text


def test_a_corrupt_xlsx_is_quarantined_and_reading_goes_on(tmp_path: Path) -> None:
    good = xlsx(tmp_path / "b.xlsx", {"Sheet": [HEADER, ROWS[0]]})
    (tmp_path / "a.xlsx").write_bytes(good.read_bytes()[:300])  # a truncated zip
    src = source(format="xlsx", pattern="*.xlsx")

    got = rows_of(read(connector(tmp_path, src), None))

    assert [r[ROW_REF] for r in got] == ["b.xlsx:2"]
    reason = (tmp_path / "quarantine" / "a.xlsx.reason.txt").read_text(encoding="utf-8")
    assert "bad_xlsx: cannot open the workbook" in reason
    assert (tmp_path / "quarantine" / "a.xlsx").read_bytes() == good.read_bytes()[:300]


def test_sheet_is_refused_for_csv_at_load_time() -> None:
    with pytest.raises(ValueError, match="xlsx files only"):
        source(sheet="x").model_validate(
            {
                **source().model_dump(),
                "connector": {**source().connector.model_dump(), "sheet": "x"},
            }
        )


def test_backlog_counts_complete_files_not_yet_read(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", ROWS, "utf-8")
    write(tmp_path / "b.csv", ROWS[:1], "utf-8")
    conn = connector(tmp_path, source(batch_size=10))
    first = read(conn, None)[0].state  # a.csv done

    backlog = conn.backlog(first)

    assert (backlog.waiting, backlog.lag, backlog.unit) == (1, "1 file", "files")


def test_a_missing_drop_folder_is_fatal(tmp_path: Path) -> None:
    with pytest.raises(FatalError, match="does not exist"):
        list(open_connector(source(), location=str(tmp_path / "nowhere")).read(None))
