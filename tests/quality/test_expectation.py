"""The custom GX expectations agree with catalog_schemas.holder row for row."""

from __future__ import annotations

import datetime as dt
from typing import Any

import great_expectations as gx
import pandas as pd
import pyarrow as pa
import pytest
from quality_data import resident_ids, valid_credit_codes, vector_rows

from catalog_schemas import holder
from quality.expectation import (
    ExpectColumnPairValuesToBeHolderId,
    ExpectColumnValuesToBeCreditCode,
    ExpectColumnValuesToBeResidentId,
    check_holder_ids,
    check_ids,
)

TODAY = dt.date(2026, 11, 5)


@pytest.fixture(scope="module")
def batch_of() -> Any:
    context = gx.get_context(mode="ephemeral")
    definition = (
        context.data_sources.add_pandas("t")
        .add_dataframe_asset("rows")
        .add_batch_definition_whole_dataframe("all")
    )

    def make(frame: pd.DataFrame) -> Any:
        return definition.get_batch(batch_parameters={"dataframe": frame})

    return make


def _failing(reason: pa.Array) -> list[int]:
    return [i for i, r in enumerate(reason.to_pylist()) if r is not None]


def test_resident_id_expectation_flags_what_holder_rejects(batch_of: Any) -> None:
    values = [r["value"] for r in vector_rows("cn_ric/ric_cases.csv")] + [None]
    expected = _failing(holder.check_resident_ids(values, today=TODAY).reason)
    assert 0 < len(expected) < len(values) - 1  # both kinds are present
    result = batch_of(pd.DataFrame({"id": values})).validate(
        ExpectColumnValuesToBeResidentId(column="id", today=TODAY.isoformat()),
        result_format={"result_format": "COMPLETE", "exclude_unexpected_values": True},
    )
    assert result.success is False
    assert sorted(result.result["unexpected_index_list"]) == expected
    assert "unexpected_list" not in result.result  # no values copied into the result


def test_credit_code_expectation_flags_what_holder_rejects(batch_of: Any) -> None:
    values = [r["value"] for r in vector_rows("cn_uscc/uscc_cases.csv")]
    expected = _failing(holder.check_credit_codes(values).reason)
    assert expected
    result = batch_of(pd.DataFrame({"code": values})).validate(
        ExpectColumnValuesToBeCreditCode(column="code"),
        result_format={"result_format": "COMPLETE", "exclude_unexpected_values": True},
    )
    assert sorted(result.result["unexpected_index_list"]) == expected


def _mixed_holders() -> tuple[list[str | None], list[str | None]]:
    people: list[str] = [str(v) for v in resident_ids(6, seed=5)]
    firms: list[str] = valid_credit_codes()[:6]
    values: list[str | None] = [*people, *firms, people[0][:-1] + "0", firms[0][:-1] + "0", None]
    kinds: list[str | None] = [
        *(["natural_person"] * 6),
        *(["legal_person"] * 6),
        "natural_person",
        "legal_person",
        "legal_person",
    ]
    # swap some kinds: an ID of the other kind is checked by the other checker
    kinds[0], kinds[6] = "legal_person", "natural_person"
    # unknown and missing kinds
    values += [people[1], people[2], None]
    kinds += [None, "foreigner", None]
    return values, kinds


def test_holder_id_split_matches_holder_dispatch() -> None:
    values, kinds = _mixed_holders()
    ours = check_holder_ids(
        pa.array(values, pa.string()), pa.array(kinds, pa.string()), today=TODAY
    )
    reference = holder.check_holder_ids(kinds, values, today=TODAY)
    assert ours.reason.to_pylist() == reference.reason.to_pylist()
    assert ours.canonical.to_pylist() == reference.canonical.to_pylist()
    assert ours.reason.to_pylist()[-3:] == ["holder_kind", "holder_kind", None]


def test_holder_id_restricted_kinds() -> None:
    values = pa.array([str(resident_ids(1)[0]), valid_credit_codes()[0]], pa.string())
    kinds = pa.array(["natural_person", "legal_person"], pa.string())
    only_people = check_holder_ids(values, kinds, allowed=("natural_person",), today=TODAY)
    assert only_people.reason.to_pylist() == [None, "holder_kind"]


def test_holder_id_pair_expectation(batch_of: Any) -> None:
    values, kinds = _mixed_holders()
    expected = _failing(holder.check_holder_ids(kinds, values, today=TODAY).reason)
    result = batch_of(pd.DataFrame({"owner_id": values, "owner_kind": kinds})).validate(
        ExpectColumnPairValuesToBeHolderId(
            column_A="owner_id", column_B="owner_kind", today=TODAY.isoformat()
        ),
        result_format={"result_format": "COMPLETE", "exclude_unexpected_values": True},
    )
    assert sorted(result.result["unexpected_index_list"]) == expected


def test_check_ids_accepts_any_string_type() -> None:
    value = str(resident_ids(1, seed=9)[0])
    for typ in (pa.string(), pa.large_string(), pa.string_view()):
        check = check_ids(pa.array([value, None], typ), id_type="resident_id", today=TODAY)
        assert check.canonical.to_pylist() == [value, None]
        assert check.reason.to_pylist() == [None, None]
