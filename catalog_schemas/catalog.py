"""Load and cross-check the catalog YAML.

The catalog is a folder::

    departments.yaml
    license_types/*.yaml
    sources/*.yaml
    service_items/*.yaml

Each file is validated by its pydantic model; then references between files are checked (a
source's department and license type exist, its mapping only names fields of that type, a
material's license type exists). Every error names the file, the line and the field: the YAML
loader records the line of every mapping key and list item (:class:`_Located`), and each source
keeps ``<file>:<line>`` of its entries (:meth:`Source.where`) for errors found later, when a
mapped column turns out to be missing from the department's data.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from catalog_schemas.errors import CatalogError
from catalog_schemas.model import Department, LicenseType, ServiceItem, Source

M = TypeVar("M", bound=BaseModel)


def default_catalog_dir() -> Path:
    """The sample Guangdong catalog shipped with OneHub."""
    return Path(str(resources.files("catalog_schemas") / "catalog"))


@dataclass(frozen=True)
class Catalog:
    """The whole catalog, cross-checked."""

    directory: Path
    departments: dict[str, Department]
    license_types: dict[str, LicenseType]
    sources: dict[str, Source]
    service_items: dict[str, ServiceItem]

    def department(self, code: str) -> Department:
        return _get(self.departments, code, "department")

    def license_type(self, code: str) -> LicenseType:
        return _get(self.license_types, code, "license type")

    def source(self, name: str) -> Source:
        return _get(self.sources, name, "source")

    def service_item(self, code: str) -> ServiceItem:
        return _get(self.service_items, code, "service item")

    def sources_of(self, license_type: str) -> list[Source]:
        return [s for s in self.sources.values() if s.license_type == license_type]


def _get(table: dict[str, M], key: str, what: str) -> M:
    try:
        return table[key]
    except KeyError:
        raise CatalogError(f"unknown {what} {key!r}", code="catalog_unknown_reference") from None


class _LocatedDict(dict[Any, Any]):
    """A YAML mapping that remembers its own line and the line of each key (1-based)."""

    line: int = 0
    lines: dict[Any, int]


class _LocatedList(list[Any]):
    """A YAML sequence that remembers its own line and the line of each item (1-based)."""

    line: int = 0
    lines: list[int]


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings and sequences carry line numbers."""


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Any:
    data = _LocatedDict()
    data.line = node.start_mark.line + 1
    data.lines = {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        data[key] = loader.construct_object(value_node, deep=True)
        data.lines[key] = key_node.start_mark.line + 1


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> Any:
    data = _LocatedList()
    data.line = node.start_mark.line + 1
    data.lines = [item.start_mark.line + 1 for item in node.value]
    yield data
    data.extend(loader.construct_object(item, deep=True) for item in node.value)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_LineLoader)  # a SafeLoader subclass: no object tags
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from exc


def _line(data: Any, loc: Iterable[Any]) -> int | None:
    """The line of the deepest YAML node along ``loc`` (pydantic's error location)."""
    line = getattr(data, "line", None)
    node = data
    for part in loc:
        # Anything else is a union tag or a model's own name in the location: skip it.
        found = (isinstance(node, _LocatedDict) and part in node) or (
            isinstance(node, _LocatedList) and isinstance(part, int) and part < len(node)
        )
        if found:
            line, node = node.lines[part], node[part]
    return line


def _at(path: Path, line: int | None) -> str:
    return f"{path}:{line}" if line else str(path)


def _parse(model: type[M], data: Any, path: Path, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_at(path, _line(data, err['loc']))}: "
            f"{prefix}{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise CatalogError(problems) from None


def _origins(data: Any, path: Path) -> dict[str, str]:
    """``<file>:<line>`` of each top-level key, connector key and mapping entry of a source."""
    out: dict[str, str] = {}
    if not isinstance(data, _LocatedDict):
        return out
    for key in data:
        out[str(key)] = _at(path, data.lines[key])
        child = data[key]
        if key in ("mapping", "connector") and isinstance(child, _LocatedDict):
            for sub in child:
                out[f"{key}.{sub}"] = _at(path, child.lines[sub])
    return out


def _files(directory: Path) -> Iterable[Path]:
    return sorted(directory.glob("*.yaml")) if directory.is_dir() else []


def _load_many(model: type[M], directory: Path, key: str) -> dict[str, tuple[M, Path]]:
    out: dict[str, tuple[M, Path]] = {}
    for path in _files(directory):
        data = _read_yaml(path)
        item = _parse(model, data, path)
        if isinstance(item, Source):
            item._origin = _origins(data, path)
        name = getattr(item, key)
        if name in out:
            raise CatalogError(f"{path}: {key} {name!r} is already defined in {out[name][1]}")
        if path.stem != name:
            raise CatalogError(f"{path}: {key} {name!r} must match the file name {path.stem!r}")
        out[name] = (item, path)
    return out


def load_catalog(directory: Path | None = None) -> Catalog:
    """Read, validate and cross-check the catalog in ``directory`` (default: the shipped one)."""
    directory = Path(directory) if directory is not None else default_catalog_dir()
    dep_path = directory / "departments.yaml"
    if not dep_path.is_file():
        raise CatalogError(f"{dep_path}: missing")
    raw = _read_yaml(dep_path)
    if not isinstance(raw, dict) or not isinstance(raw.get("departments"), list):
        raise CatalogError(f"{dep_path}: expected a mapping with a `departments` list")
    departments: dict[str, Department] = {}
    for i, entry in enumerate(raw["departments"]):
        dep = _parse(Department, entry, dep_path, prefix=f"departments.{i}.")
        if dep.code in departments:
            raise CatalogError(f"{dep_path}: departments.{i}.code: duplicate code {dep.code!r}")
        departments[dep.code] = dep

    types = _load_many(LicenseType, directory / "license_types", "code")
    sources = _load_many(Source, directory / "sources", "name")
    items = _load_many(ServiceItem, directory / "service_items", "code")

    for lt, path in types.values():
        if lt.issuer not in departments:
            raise CatalogError(f"{path}: issuer: unknown department {lt.issuer!r}")
        for reader in lt.sharing.readers:
            if reader != "*" and reader not in departments:
                raise CatalogError(f"{path}: sharing.readers: unknown department {reader!r}")
    for src, path in sources.values():
        _check_source(src, path, departments, {k: v[0] for k, v in types.items()})
    for item, path in items.values():
        if item.department not in departments:
            raise CatalogError(f"{path}: department: unknown department {item.department!r}")
        for i, material in enumerate(item.materials):
            if material.license_type is None:
                continue
            lt_entry = types.get(material.license_type)
            if lt_entry is None:
                raise CatalogError(
                    f"{path}: materials.{i}.license_type: "
                    f"unknown license type {material.license_type!r}"
                )
            if material.holder_role and material.holder_role not in {
                h.role for h in lt_entry[0].holders
            }:
                raise CatalogError(
                    f"{path}: materials.{i}.holder_role: unknown role {material.holder_role!r}"
                )

    return Catalog(
        directory=directory,
        departments=departments,
        license_types={k: v[0] for k, v in types.items()},
        sources={k: v[0] for k, v in sources.items()},
        service_items={k: v[0] for k, v in items.items()},
    )


def _check_source(
    src: Source, path: Path, departments: dict[str, Department], types: dict[str, LicenseType]
) -> None:
    if src.department not in departments:
        raise CatalogError(f"{path}: department: unknown department {src.department!r}")
    lt = types.get(src.license_type)
    if lt is None:
        raise CatalogError(f"{path}: license_type: unknown license type {src.license_type!r}")
    for i, expectation in enumerate(src.expectations):
        problem = expectation.problem(lt)
        if problem is not None:
            raise CatalogError(f"{src.where('expectations')}: expectations.{i}: {problem}")
    names = {f.name for f in lt.fields}
    for target in src.mapping:
        if target not in names:
            raise CatalogError(
                f"{src.where(f'mapping.{target}')}: mapping.{target}: {lt.code} has no field "
                f"{target!r} (fields: {', '.join(sorted(names))})"
            )
    for spec in lt.fields:
        if spec.required and spec.name not in src.mapping:
            raise CatalogError(
                f"{src.where('mapping')}: mapping: required field {spec.name!r} of {lt.code} "
                "is not mapped"
            )
    for target, conv in src.mapping.items():
        if conv.date_format is not None:
            bad_format = _date_format_problem(conv.date_format)
            if bad_format:
                raise CatalogError(
                    f"{src.where(f'mapping.{target}')}: mapping.{target}.date_format: {bad_format}"
                )
        if conv.codes is not None:
            spec = lt.field(target)
            allowed = set(spec.codes or {})
            bad = sorted(set(conv.codes.values()) - allowed) if allowed else []
            if bad:
                raise CatalogError(
                    f"{src.where(f'mapping.{target}')}: mapping.{target}.codes: {bad} "
                    f"are not codes of {lt.code}.{target}"
                )


_DATE_DIRECTIVES = frozenset({"%Y", "%m", "%d", "%H", "%M", "%S", "%f", "%z", "%%"})


def _date_format_problem(date_format: str) -> str | None:
    """Why ``date_format`` cannot be used by the mapping's date parser, or None."""
    parts = re.findall(r"%.", date_format)
    unsupported = sorted(set(parts) - _DATE_DIRECTIVES)
    if unsupported:
        return f"{date_format!r}: directives {unsupported} are not supported"
    for needed in ("%Y", "%m", "%d"):
        if parts.count(needed) != 1:
            return f"{date_format!r} must contain {needed} exactly once"
    return None


@functools.cache
def shipped_catalog() -> Catalog:
    """The shipped catalog, loaded once per process."""
    return load_catalog(default_catalog_dir())
