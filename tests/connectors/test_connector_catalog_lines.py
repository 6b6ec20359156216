"""A bad source YAML fails when the catalog loads, naming the file and the line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from catalog_schemas.catalog import default_catalog_dir, load_catalog
from catalog_schemas.errors import CatalogError, FatalError
from connectors import ROW_REF, apply_mapping


def catalog_with(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the shipped catalog with one edit in sources/dca_marriage.yaml."""
    root = tmp_path / "catalog"
    shutil.copytree(default_catalog_dir(), root)
    path = root / "sources" / "dca_marriage.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path.write_text(text.replace(old, new), encoding="utf-8")
    return root


def line_of(root: Path, needle: str) -> int:
    lines = (root / "sources" / "dca_marriage.yaml").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        ("convert: [trim, date]", "convert: [trim, dat]", "registration_date:", "convert.1"),
        ("  table: marriage_registration", "  tabel: marriage_registration", "tabel:", "tabel"),
        ("registration_office:", "registration_ofice:", "registration_ofice:", "has no field"),
        (
            "convert: [trim, date]}",
            "convert: [trim, date], date_format: '%Y%q'}",
            "date_format",
            "%q",
        ),
        ("convert: [trim, date]}", "convert: [trim], colum: x}", "registration_date:", "colum"),
        (
            "  watermark: updated_at",
            "  watermark: updated_at\n  soft_delete: {}",
            "soft_delete",
            "exactly one",
        ),
    ],
)
def test_bad_yaml_names_file_and_line(
    tmp_path: Path, old: str, new: str, needle: str, message: str
) -> None:
    root = catalog_with(tmp_path, old, new)

    with pytest.raises(CatalogError) as caught:
        load_catalog(root)

    text = str(caught.value)
    assert f"dca_marriage.yaml:{line_of(root, needle)}:" in text, text
    assert message in text


def test_a_column_missing_from_the_data_names_the_mapping_line(tmp_path: Path) -> None:
    root = catalog_with(tmp_path, "{column: office_name,", "{column: office_nam,")
    catalog = load_catalog(root)
    source = catalog.source("dca_marriage")
    columns = ["cert_no", "male_id_no", "male_name", "female_id_no", "female_name", "reg_date"]
    batch = pa.RecordBatch.from_pydict(
        {**{c: ["x"] for c in [*columns, "office_name", "updated_at"]}, ROW_REF: ["pk=1"]}
    )

    with pytest.raises(FatalError) as caught:
        apply_mapping(
            batch, source=source, license_type=catalog.license_type("marriage_certificate")
        )

    line = line_of(root, "office_nam,")
    assert re.search(rf"dca_marriage\.yaml:{line}: .*'office_nam'", str(caught.value))
    assert caught.value.code == "mapping_column_missing"


def test_an_empty_batch_needs_no_columns(tmp_path: Path) -> None:
    catalog = load_catalog(default_catalog_dir())
    source = catalog.source("dca_marriage")
    empty = pa.RecordBatch.from_pydict({ROW_REF: pa.array([], pa.string())})

    table = apply_mapping(
        empty, source=source, license_type=catalog.license_type("marriage_certificate")
    )

    assert table.num_rows == 0 and "certificate_no" in table.column_names
