"""`onehub verify` as a user runs it: the W3C vector and tampered copies of it."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from onehub.cli import app

VECTOR = Path(__file__).parents[1] / "vectors" / "vc_di_eddsa_jcs_2022" / "signedJCS.json"
runner = CliRunner()


@pytest.fixture
def no_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ONEHUB_DATA_DIR", str(tmp_path / "nohub"))
    return tmp_path


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, (*path, i))
    else:
        yield path


def _changed(value: Any) -> Any:
    if isinstance(value, str):
        return value + "x" if not value.endswith("x") else value[:-1] + "y"
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    return "changed"


def test_accepts_the_w3c_eddsa_jcs_2022_vector(no_hub: Path) -> None:
    result = runner.invoke(app, ["verify", str(VECTOR)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "not a DID" in result.output


def test_rejects_the_vector_with_any_field_changed(no_hub: Path) -> None:
    original = json.loads(VECTOR.read_text(encoding="utf-8"))
    paths = list(_leaves(original))
    assert len(paths) > 15
    for path in paths:
        tampered = copy.deepcopy(original)
        node = tampered
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = _changed(node[path[-1]])
        file = no_hub / "tampered.json"
        file.write_text(json.dumps(tampered), encoding="utf-8")
        result = runner.invoke(app, ["verify", str(file)])
        assert result.exit_code == 1, f"change at {path} was accepted"


def test_rejects_a_file_without_credentials(no_hub: Path) -> None:
    file = no_hub / "empty.json"
    file.write_text("{}", encoding="utf-8")
    assert runner.invoke(app, ["verify", str(file)]).exit_code == 1
