"""Load and cross-check the catalog YAML.

The catalog is a folder::

    departments.yaml
    license_types/*.yaml
    sources/*.yaml
    service_items/*.yaml

Each file is validated by its pydantic model; then references between files are checked (a
source's department and license type exist, its mapping only names fields of that type, a
material's license type exists). Every error names the file and the field.
"""

from __future__ import annotations

import functools
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


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from exc


def _parse(model: type[M], data: Any, path: Path, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{prefix}{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise CatalogError(f"{path}: {problems}") from None


def _files(directory: Path) -> Iterable[Path]:
    return sorted(directory.glob("*.yaml")) if directory.is_dir() else []


def _load_many(model: type[M], directory: Path, key: str) -> dict[str, tuple[M, Path]]:
    out: dict[str, tuple[M, Path]] = {}
    for path in _files(directory):
        item = _parse(model, _read_yaml(path), path)
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
    names = {f.name for f in lt.fields}
    for target in src.mapping:
        if target not in names:
            raise CatalogError(
                f"{path}: mapping.{target}: {lt.code} has no field {target!r} "
                f"(fields: {', '.join(sorted(names))})"
            )
    for spec in lt.fields:
        if spec.required and spec.name not in src.mapping:
            raise CatalogError(
                f"{path}: mapping: required field {spec.name!r} of {lt.code} is not mapped"
            )
    for target, conv in src.mapping.items():
        if conv.codes is not None:
            spec = lt.field(target)
            allowed = set(spec.codes or {})
            bad = sorted(set(conv.codes.values()) - allowed) if allowed else []
            if bad:
                raise CatalogError(
                    f"{path}: mapping.{target}.codes: {bad} are not codes of {lt.code}.{target}"
                )


@functools.cache
def shipped_catalog() -> Catalog:
    """The shipped catalog, loaded once per process."""
    return load_catalog(default_catalog_dir())
