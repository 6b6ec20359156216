"""A small hub for the API tests: a real database, a signing key, licenses issued for a few
holders through license_store.issuance, and consumers registered the way the CLI does.

Imported by the test_api*/test_audit* modules (``from test_api_world import ...``); its own tests
check the world is what the others assume.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient
from stdnum.cn import uscc
from stdnum.iso7064 import mod_11_2

from catalog_schemas.catalog import Catalog, default_catalog_dir, load_catalog
from catalog_schemas.cipher import FieldCipher
from catalog_schemas.holder import holder_key
from catalog_schemas.model import HolderKind, LicenseType
from exchange.api.app import ApiConfig, create_app
from exchange.consumer import register
from exchange.hub import Hub
from license_store.issuance import issue
from license_store.key import KeyRing
from license_store.record import HolderRef, LicenseRecord
from onehub.database import create_schema
from onehub.settings import make_engine

NOW = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC)
ISSUER_DID = "did:web:onehub.test"
HUB_KEY = bytes(range(32))


def resident_id(region: str, born: str, sequence: int) -> str:
    """A valid 18-character resident ID number."""
    body = f"{region}{born}{sequence:03d}"
    return body + mod_11_2.calc_check_digit(body)


def credit_code(org: str) -> str:
    """A valid unified social credit code for an 8-digit organisation body."""
    first = "91440101" + org[:8]
    weights = [3, 7, 9, 10, 5, 8, 4, 2]
    check = 11 - sum(int(d) * w for d, w in zip(org[:8], weights, strict=True)) % 11
    first += {10: "X", 11: "0"}.get(check, str(check))
    return first + uscc.calc_check_digit(first)


PERSON = resident_id("440106", "19850315", 123)
SPOUSE = resident_id("440104", "19870704", 456)
STRANGER = resident_id("440105", "19900101", 789)  # has no licenses
COMPANY = credit_code("12345678")


def field_value(spec_type: str, name: str, codes: dict[str, str] | None) -> Any:
    if spec_type == "date":
        return "2015-06-01"
    if spec_type == "integer":
        return 3
    if spec_type == "decimal":
        return 88.5
    if spec_type == "code":
        return next(iter(codes or {"x": "x"}))
    return f"{name}-value"


def record_for(
    catalog: Catalog,
    license_type: LicenseType,
    holders: Sequence[tuple[str, HolderKind, str]],
    *,
    number: str,
    valid_until: dt.date | None = None,
) -> LicenseRecord:
    """A license record of ``license_type`` for ``holders`` (role, kind, ID number)."""
    issuer = catalog.department(license_type.issuer)
    id_fields = set(license_type.id_fields)
    fields = {
        spec.name: field_value(spec.type, spec.name, spec.codes)
        for spec in license_type.fields
        if spec.name not in id_fields
    }
    fields[license_type.license_no_field] = number
    return LicenseRecord(
        record_key=f"{license_type.code}:{issuer.code}:{number}",
        license_type=license_type.code,
        type_name_zh=license_type.name_zh,
        type_name_en=license_type.name_en,
        issuer_department=issuer.code,
        issuer_name_zh=issuer.name_zh,
        issuer_name_en=issuer.name_en,
        license_no=number,
        holders=tuple(
            HolderRef(
                role=role,
                kind=kind,
                holder_key=holder_key(HUB_KEY, kind, id_number),
                id_number=id_number,
                name="张三",
            )
            for role, kind, id_number in holders
        ),
        fields=fields,
        valid_from=dt.date(2015, 6, 1),
        valid_until=valid_until,
        source=f"src_{license_type.code}",
        batch_id=f"src_{license_type.code}:1",
        as_of=NOW - dt.timedelta(hours=3),
        row_hash=f"hash-{number}",
    )


def make_hub(url: str, *, catalog: Catalog | None = None, lake: Path | None = None) -> Hub:
    """A hub over ``url`` with fixed keys and clock; its schema created."""
    hub = Hub(
        catalog=catalog or load_catalog(),
        engine=make_engine(url),
        lake_uri=str(lake or "unused-lake"),
        hub_key=HUB_KEY,
        cipher=FieldCipher({"k1": bytes(range(32, 64))}, "k1"),
        kek=bytes(range(64, 96)),
        issuer_did=ISSUER_DID,
        resolve_connection=lambda conn: conn,
        now=lambda: NOW,
    )
    create_schema(hub.engine)
    return hub


def issue_records(hub: Hub, records: Sequence[LicenseRecord]) -> dict[str, str]:
    """Issue ``records``; license id by record key."""
    ring = KeyRing(issuer_did=hub.issuer_did)
    with hub.sessions.begin() as session:
        signer = ring.signer(session=session, kek=hub.kek, now=NOW)
        type_codes = {}
        issuer_codes = {}
        for record in records:
            department = hub.catalog.department(record.issuer_department)
            lt = hub.catalog.license_type(record.license_type)
            type_codes[lt.code] = department.credit_code + lt.type_seq
            issuer_codes[department.code] = department.credit_code
        result = issue(
            session=session,
            records=records,
            signer=signer,
            cipher=hub.cipher,
            issuer_did=hub.issuer_did,
            type_codes=type_codes,
            issuer_codes=issuer_codes,
            now=NOW,
        )
    assert not result.rejected, result.rejected
    return {item.record_key: item.license_id for item in result.issued}


def standard_records(catalog: Catalog) -> list[LicenseRecord]:
    """One license of every type: PERSON (with SPOUSE on the marriage certificate), COMPANY."""
    records = []
    for code, lt in sorted(catalog.license_types.items()):
        if code == "business_license":
            holders: list[tuple[str, HolderKind, str]] = [("enterprise", "legal_person", COMPANY)]
        elif code == "marriage_certificate":
            holders = [
                ("party_a", "natural_person", PERSON),
                ("party_b", "natural_person", SPOUSE),
            ]
        else:
            holders = [(lt.holders[0].role, "natural_person", PERSON)]
        records.append(record_for(catalog, lt, holders, number=f"N-{code.upper()}-1"))
    # The company also owns its premises (a real estate title with a legal-person owner).
    records.append(
        record_for(
            catalog,
            catalog.license_type("real_estate_title"),
            [("owner", "legal_person", COMPANY)],
            number="N-PREMISES-1",
        )
    )
    return records


def add_consumer(hub: Hub, name: str, *, kind: str, department: str, **extra: Any) -> str:
    """Register a consumer; its API key."""
    with hub.sessions.begin() as session:
        _consumer, key = register(
            session=session,
            catalog=hub.catalog,
            name=name,
            kind=kind,  # type: ignore[arg-type]
            department=department,
            now=NOW,
            **extra,
        )
    return key


def auth(key: str, request_id: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    return headers


@dataclass
class World:
    hub: Hub
    client: TestClient
    licenses: dict[str, str]
    keys: dict[str, str] = field(default_factory=dict)

    def license(self, record_key_part: str) -> str:
        """The license id whose record key contains ``record_key_part``."""
        (found,) = [lid for rk, lid in self.licenses.items() if record_key_part in rk]
        return found


@contextmanager
def world(
    url: str, *, catalog: Catalog | None = None, config: ApiConfig | None = None
) -> Iterator[World]:
    """A hub with the standard licenses and a running API client."""
    hub = make_hub(url, catalog=catalog)
    licenses = issue_records(hub, standard_records(hub.catalog))
    app = create_app(hub, config or ApiConfig(default_rate_limit="10000/second"))
    try:
        with TestClient(app) as client:
            yield World(hub=hub, client=client, licenses=licenses)
    finally:
        hub.engine.dispose()


def catalog_copy(tmp: Path, *, edit_types: Any = None, service_items: Any = ()) -> Catalog:
    """A copy of the shipped catalog with license type YAML edited and service items added."""
    target = tmp / "catalog"
    shutil.copytree(default_catalog_dir(), target)
    for path in sorted((target / "license_types").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if edit_types is not None:
            edit_types(data)
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    for item in service_items:
        (target / "service_items" / f"{item['code']}.yaml").write_text(
            yaml.safe_dump(item, allow_unicode=True), encoding="utf-8"
        )
    return load_catalog(target)


def test_the_world_has_a_license_of_every_type(sqlite_url: str) -> None:
    with world(sqlite_url) as w:
        types = {rk.split(":")[0] for rk in w.licenses}
        assert types == set(w.hub.catalog.license_types)
        assert w.client.get("/livez").json() == {"status": "ok"}
