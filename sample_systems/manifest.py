"""What the sample department systems hold and what the hub should make of them.

Written next to the data as ``manifest.json``. Row references follow the connectors' format:

* SQL sources: ``pk=<primary key value>``.
* File sources: ``<file name>:<line>``, lines numbered from 1 with the header as line 1, so the
  first data row is line 2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Final, Literal

MANIFEST_NAME: Final = "manifest.json"


@dataclass
class DirtyRow:
    """One dirty row: where it is, its one defect, and whether the hub must quarantine it."""

    row_ref: str
    kind: str
    field: str
    quarantined: bool


@dataclass
class SourceManifest:
    """One department source as generated.

    ``location`` is relative to the output folder (``<connection>.db`` for a sample SQLite file,
    ``<connection>/`` for a drop folder) or, for a database the caller gave, its URL with the
    password masked.
    """

    name: str
    license_type: str
    connector: Literal["sql", "file", "rest"]
    connection: str
    location: str
    table: str | None
    files: list[str]
    rows: int
    expected_loaded: int
    expected_quarantined: int
    dirty: dict[str, int]  # rows per defect kind (a duplicate pair counts two)
    quarantined: list[str]  # row refs the hub must quarantine
    dirty_rows: list[DirtyRow]
    max_watermark: str | None = None  # ISO timestamp, SQL sources

    def refs(self, kind: str) -> list[str]:
        """Row refs of the dirty rows of ``kind``."""
        return [d.row_ref for d in self.dirty_rows if d.kind == kind]


@dataclass
class DemoPerson:
    """A person whose licenses are all clean, for a service-item demo."""

    resident_id: str
    name: str
    license_types: list[str]


@dataclass
class DemoCompany:
    """A company whose business license (and a real-estate title) are clean."""

    credit_code: str
    name: str
    license_types: list[str]


@dataclass
class DemoHolders:
    """Holders to demo talent_household_registration and enterprise_change_registration with."""

    people: list[DemoPerson] = field(default_factory=list)
    company: DemoCompany | None = None


@dataclass
class Mutation:
    """One :func:`sample_systems.mutate` run: the rows it changed and added, per source."""

    seed: int
    now: str
    updated: dict[str, list[str]]
    inserted: dict[str, list[str]]


@dataclass
class Manifest:
    """Everything generated, written as ``manifest.json`` in the output folder.

    ``resident_ids`` lists every canonical 18-digit ID number that appears in any generated row
    (in whatever form); ``id_variants`` the non-canonical forms written (wrong check character,
    15-digit, full-width). The hub's tests use both to prove no plaintext number leaks into its
    own data.
    """

    seed: int
    people: int
    companies: int
    dirty_rate: float
    now: str
    sources: dict[str, SourceManifest]
    resident_ids: list[str]
    id_variants: list[str]
    demo_holders: DemoHolders
    mutations: list[Mutation] = field(default_factory=list)

    def to_json(self) -> str:
        """Deterministic JSON (sorted keys, one item a line)."""
        return json.dumps(_plain(self), ensure_ascii=False, indent=1, sort_keys=True) + "\n"

    def save(self, out_dir: Path) -> Path:
        """Write ``<out_dir>/manifest.json``."""
        path = Path(out_dir) / MANIFEST_NAME
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse what :meth:`to_json` wrote."""
        raw: dict[str, Any] = json.loads(text)
        sources = {
            name: SourceManifest(**{**s, "dirty_rows": [DirtyRow(**d) for d in s["dirty_rows"]]})
            for name, s in raw["sources"].items()
        }
        demo = raw["demo_holders"]
        return cls(
            **{
                **raw,
                "sources": sources,
                "demo_holders": DemoHolders(
                    people=[DemoPerson(**p) for p in demo["people"]],
                    company=DemoCompany(**demo["company"]) if demo["company"] else None,
                ),
                "mutations": [Mutation(**m) for m in raw["mutations"]],
            }
        )

    @classmethod
    def load(cls, out_dir: Path) -> Manifest:
        """Read ``<out_dir>/manifest.json``."""
        return cls.from_json((Path(out_dir) / MANIFEST_NAME).read_text(encoding="utf-8"))


def _plain(value: Any) -> Any:
    """Dataclasses as dicts; unlike ``dataclasses.asdict``, no deep copy of million-item lists."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list) and value and is_dataclass(value[0]):
        return [_plain(v) for v in value]
    return value
