"""The shipped catalog loads, and bad YAML fails naming the file and the field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from catalog_schemas.catalog import default_catalog_dir, load_catalog
from catalog_schemas.errors import CatalogError

BATCH_1 = [
    "发展改革委",
    "经济和信息化委",
    "民族宗教委",
    "安全厅",
    "民政厅",
    "住房城乡建设厅",
    "农业厅",
    "林业厅",
    "商务厅",
    "文化厅",
    "国资委",
    "体育局",
    "海洋渔业局",
    "质监局",
    "安全监管局",
    "旅游局",
    "人防办",
    "盐务局",
    "气象局",
    "地震局",
]
BATCH_2 = [
    "编办",
    "科技厅",
    "司法厅",
    "国土资源厅",
    "交通运输厅",
    "水利厅",
    "卫生计生委",
    "统计局",
    "工商局",
    "法制办",
    "金融办",
    "中医药局",
    "档案局",
]
BATCH_3 = [
    "教育厅",
    "公安厅",
    "财政厅",
    "人力资源社会保障厅",
    "环境保护厅",
    "审计厅",
    "地税局",
    "新闻出版广电局",
    "知识产权局",
    "食品药品监管局",
]


def test_shipped_catalog_has_the_annex_departments() -> None:
    catalog = load_catalog()
    by_batch: dict[int, list[str]] = {1: [], 2: [], 3: []}
    for dep in catalog.departments.values():
        by_batch[dep.batch].append(dep.short_zh)
        assert dep.name_zh.startswith("广东省")
    assert sorted(by_batch[1]) == sorted(BATCH_1)
    assert sorted(by_batch[2]) == sorted(BATCH_2)
    assert sorted(by_batch[3]) == sorted(BATCH_3)
    assert {d.deadline.isoformat() for d in catalog.departments.values() if d.batch == 3} == {
        "2016-12-31"
    }


def test_license_types_cover_the_required_shapes() -> None:
    catalog = load_catalog()
    marriage = catalog.license_type("marriage_certificate")
    assert [h.kinds for h in marriage.holders] == [("natural_person",), ("natural_person",)]
    business = catalog.license_type("business_license")
    assert business.holders[0].kinds == ("legal_person",)
    assert business.holders[1].kinds == ("natural_person",)
    assert set(catalog.license_type("real_estate_title").holders[0].kinds) == {
        "natural_person",
        "legal_person",
    }
    assert "degree_certificate" in catalog.license_types
    assert "social_insurance_certificate" in catalog.license_types
    uncovered = [
        m for item in catalog.service_items.values() for m in item.materials if m.applicant_supplies
    ]
    assert uncovered, "at least one material is not covered by any license"


@pytest.fixture
def catalog_copy(tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(default_catalog_dir(), target)
    return target


def test_unknown_key_names_file_and_field(catalog_copy: Path) -> None:
    path = catalog_copy / "sources" / "dca_marriage.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "shedule: '@daily'\n", encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_catalog(catalog_copy)
    assert "dca_marriage.yaml" in str(err.value) and "shedule" in str(err.value)


def test_mapping_to_unknown_field_is_rejected(catalog_copy: Path) -> None:
    path = catalog_copy / "sources" / "dca_marriage.yaml"
    text = path.read_text(encoding="utf-8").replace("registration_office:", "registration_ofice:")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_catalog(catalog_copy)
    assert "mapping.registration_ofice" in str(err.value)


def test_bad_department_reference_is_rejected(catalog_copy: Path) -> None:
    path = catalog_copy / "license_types" / "degree_certificate.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("issuer: edu", "issuer: education"),
        encoding="utf-8",
    )
    with pytest.raises(CatalogError) as err:
        load_catalog(catalog_copy)
    assert "degree_certificate.yaml" in str(err.value) and "issuer" in str(err.value)


def test_source_expectation_on_unknown_field_fails_at_load(catalog_copy: Path) -> None:
    path = catalog_copy / "sources" / "dca_marriage.yaml"
    text = path.read_text(encoding="utf-8")
    text += (
        "expectations:\n  - {type: expect_column_values_to_not_be_null, column: no_such_field}\n"
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_catalog(catalog_copy)
    assert "dca_marriage.yaml" in str(err.value) and "expectations.0" in str(err.value)
