"""Seed a hub database with N signed licenses for bench/load.py.

Every license is issued through ``license_store.issuance.issue`` — the code path of the
issuance DAG — so each one has its own credential, canonicalised (RFC 8785), signed with Ed25519
(eddsa-jcs-2022) and encrypted (AES-256-GCM), and its holders are indexed by holder_key. Nothing
is copied: each license verifies on its own. The records are synthetic (deterministic from the
license's index), the holders' ID numbers valid GB 11643 / GB 32100 numbers.

Population for N licenses: 0.4 N people and 0.1 N companies; license mix 30 % degree
certificates, 30 % social insurance certificates, 10 % marriage certificates (two people each),
20 % real estate titles, 10 % business licenses. A person's licenses follow from its index, so
bench/load.py can compute which ID numbers to ask for without reading the database.

    .venv/bin/python bench/load_seed.py \
        --db-url postgresql+psycopg://postgres@127.0.0.1/onehub_load_1m --licenses 1000000

Several issuing processes (``--processes``, default 2, at most one per license type): on
PostgreSQL issue() draws status-list indices from a sequence, so issuers of different types never
collide; serials are numbered per type, so each type has one writer. A batch that still collides
(ConcurrentIssuanceError, e.g. while the sequence catches up with a store seeded before it
existed) is rolled back and issued again. Commits do not wait for the WAL flush (``SET LOCAL
synchronous_commit = off``: a crash loses the last batches, never consistency). A run can be
stopped and started again: it goes on where the store is.

    .venv/bin/python bench/load_seed.py --db-url postgresql+psycopg://…/onehub_load_10m \
        --licenses 10000000 --processes 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import multiprocessing as mp
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog_schemas.catalog import Catalog, load_catalog  # noqa: E402
from catalog_schemas.cipher import FieldCipher  # noqa: E402
from catalog_schemas.holder import holder_key  # noqa: E402
from exchange.hub import Hub  # noqa: E402
from license_store.error import ConcurrentIssuanceError  # noqa: E402
from license_store.issuance import IssueResult, issue  # noqa: E402
from license_store.key import KeyRing  # noqa: E402
from license_store.record import HolderRef, LicenseRecord  # noqa: E402
from onehub.database import create_schema  # noqa: E402
from onehub.settings import make_engine  # noqa: E402
from sample_systems.identifier import credit_codes, resident_id_body, resident_ids  # noqa: E402

ISSUER_DID = "did:web:onehub.localhost"
SHARES = {
    "degree_certificate": 0.30,
    "social_insurance_certificate": 0.30,
    "marriage_certificate": 0.10,
    "real_estate_title": 0.20,
    "business_license": 0.10,
}
# Prefecture codes, valid for any birth year (sample_systems.region).
PREFECTURES = np.array([440100 + 100 * i for i in range(9)], dtype=np.int64)
AS_OF = dt.datetime(2026, 11, 20, 1, 0, tzinfo=dt.UTC)
BATCH = 2000


def secrets_env(seed: str = "onehub-load") -> dict[str, str]:
    """Deterministic secrets for the bench deployment (never for a real one)."""

    def derive(label: str) -> str:
        return hashlib.sha256(f"{seed}:{label}".encode()).hexdigest()

    return {
        "ONEHUB_HUB_KEY": derive("hub"),
        "ONEHUB_KEK": derive("kek"),
        "ONEHUB_DATA_KEYS": json.dumps({"active": "k1", "keys": {"k1": derive("data")}}),
        "ONEHUB_ISSUER_DID": ISSUER_DID,
    }


def population(licenses: int) -> tuple[int, int]:
    """How many people and companies hold ``licenses`` licenses."""
    return max(1, int(licenses * 0.4)), max(1, round(licenses * SHARES["business_license"]))


def counts(licenses: int) -> dict[str, int]:
    """Licenses per type."""
    out = {code: int(licenses * share) for code, share in SHARES.items()}
    out["degree_certificate"] += licenses - sum(out.values())
    return out


def person_ids(index: np.ndarray) -> np.ndarray:
    """Resident ID numbers of people ``index`` (deterministic, valid)."""
    index = np.asarray(index, dtype=np.int64)
    region = PREFECTURES[index % 9]
    rest = index // 9
    birth = np.datetime64("1950-01-01") + (rest // 1000).astype("timedelta64[D]")
    return resident_ids(resident_id_body(region, birth, rest % 1000))


def company_ids(index: np.ndarray) -> np.ndarray:
    """Credit codes of companies ``index``."""
    index = np.asarray(index, dtype=np.int64)
    return credit_codes("91", PREFECTURES[index % 9], 10_000_000 + index)


def holders_of(code: str, j: np.ndarray, people: int) -> list[tuple[str, str, np.ndarray]]:
    """(role, kind, ID numbers) of licenses ``j`` of type ``code``."""
    if code == "degree_certificate":
        return [("graduate", "natural_person", person_ids(j % people))]
    if code == "social_insurance_certificate":
        return [("insured", "natural_person", person_ids((j + people // 4) % people))]
    if code == "marriage_certificate":
        return [
            ("party_a", "natural_person", person_ids((2 * j) % people)),
            ("party_b", "natural_person", person_ids((2 * j + 1) % people)),
        ]
    if code == "real_estate_title":
        return [("owner", "natural_person", person_ids((7 * j) % people))]
    return [("enterprise", "legal_person", company_ids(j))]


def people_with(code: str, licenses: int) -> np.ndarray:
    """Indices of people who hold a license of ``code`` (for the load client)."""
    people, _companies = population(licenses)
    j = np.arange(counts(licenses)[code], dtype=np.int64)
    if code == "degree_certificate":
        return np.unique(j % people)
    if code == "real_estate_title":
        return np.unique((7 * j) % people)
    if code == "marriage_certificate":
        return np.unique(np.concatenate([(2 * j) % people, (2 * j + 1) % people]))
    return np.unique((j + people // 4) % people)


def _value(spec: Any, j: int) -> Any:
    if spec.type == "date":
        return (dt.date(2000, 1, 1) + dt.timedelta(days=j % 9000)).isoformat()
    if spec.type == "integer":
        return j % 100
    if spec.type == "decimal":
        return round(50 + (j % 1000) / 10, 1)
    if spec.type == "code":
        keys = list(spec.codes or {"x": "x"})
        return keys[j % len(keys)]
    return f"{spec.label_en[:16]} {j}"


def records(
    catalog: Catalog, hub_key: bytes, code: str, start: int, stop: int, people: int
) -> list[LicenseRecord]:
    """The records of licenses ``start..stop`` of type ``code``."""
    lt = catalog.license_type(code)
    issuer = catalog.department(lt.issuer)
    j = np.arange(start, stop, dtype=np.int64)
    holders = holders_of(code, j, people)
    id_fields = set(lt.id_fields)
    out = []
    for i, n in enumerate(j.tolist()):
        number = f"{code[:3].upper()}{n:010d}"
        fields = {s.name: _value(s, n) for s in lt.fields if s.name not in id_fields}
        fields[lt.license_no_field] = number
        for spec in lt.holders:
            if spec.kind_field:
                fields[spec.kind_field] = "natural_person"
        valid_until = dt.date(2031, 12, 31) if lt.valid_until_field else None
        if lt.valid_until_field:
            fields[lt.valid_until_field] = valid_until.isoformat() if valid_until else None
        refs = tuple(
            HolderRef(
                role=role,
                kind=kind,  # type: ignore[arg-type]
                holder_key=holder_key(hub_key, kind, str(ids[i])),  # type: ignore[arg-type]
                id_number=str(ids[i]),
                name=f"持证人{n}",
            )
            for role, kind, ids in holders
        )
        out.append(
            LicenseRecord(
                record_key=f"{code}:{issuer.code}:{number}",
                license_type=code,
                type_name_zh=lt.name_zh,
                type_name_en=lt.name_en,
                issuer_department=issuer.code,
                issuer_name_zh=issuer.name_zh,
                issuer_name_en=issuer.name_en,
                license_no=number,
                holders=refs,
                fields=fields,
                valid_from=dt.date(2010, 1, 1),
                valid_until=valid_until,
                source=f"bench_{code}",
                batch_id=f"bench_{code}:{start // BATCH}",
                as_of=AS_OF,
                row_hash=hashlib.sha256(number.encode()).hexdigest(),
            )
        )
    return out


@dataclass(frozen=True)
class Job:
    db_url: str
    code: str
    start: int
    stop: int
    people: int


def _hub(db_url: str) -> Hub:
    env = secrets_env()
    keys = json.loads(env["ONEHUB_DATA_KEYS"])
    return Hub(
        catalog=load_catalog(),
        engine=make_engine(db_url),
        lake_uri="unused",
        hub_key=bytes.fromhex(env["ONEHUB_HUB_KEY"]),
        cipher=FieldCipher({k: bytes.fromhex(v) for k, v in keys["keys"].items()}, keys["active"]),
        kek=bytes.fromhex(env["ONEHUB_KEK"]),
        issuer_did=ISSUER_DID,
        resolve_connection=str,
    )


def run_jobs(jobs: Sequence[Job], progress: Any) -> None:
    """Issue the licenses of ``jobs`` in batches, one transaction per batch."""
    hub = _hub(jobs[0].db_url)
    ring = KeyRing(issuer_did=ISSUER_DID)
    for job in jobs:
        department = hub.catalog.department(hub.catalog.license_type(job.code).issuer)
        type_codes = {
            job.code: department.credit_code + hub.catalog.license_type(job.code).type_seq
        }
        issuer_codes = {department.code: department.credit_code}
        for start in range(job.start, job.stop, BATCH):
            batch = records(
                hub.catalog, hub.hub_key, job.code, start, min(start + BATCH, job.stop), job.people
            )
            for attempt in range(5):
                try:
                    result = _issue_batch(hub, ring, batch, type_codes, issuer_codes)
                    break
                except ConcurrentIssuanceError:
                    if attempt == 4:
                        raise
                    time.sleep(0.1 * (attempt + 1))
            if result.rejected:
                raise SystemExit(f"{job.code}: rejected {result.rejected[:3]}")
            progress.put(len(result.issued))
    hub.engine.dispose()


def _issue_batch(
    hub: Hub,
    ring: KeyRing,
    batch: list[LicenseRecord],
    type_codes: dict[str, str],
    issuer_codes: dict[str, str],
) -> IssueResult:
    with hub.sessions.begin() as session:
        if hub.engine.dialect.name == "postgresql":
            # A bench store: losing the last batches in a crash is fine, the run resumes.
            session.execute(sa.text("SET LOCAL synchronous_commit = off"))
        signer = ring.signer(session=session, kek=hub.kek, now=AS_OF)
        return issue(
            session=session,
            records=batch,
            signer=signer,
            cipher=hub.cipher,
            issuer_did=ISSUER_DID,
            type_codes=type_codes,
            issuer_codes=issuer_codes,
            now=AS_OF,
        )


def plan(db_url: str, licenses: int, processes: int, done: dict[str, int]) -> list[list[Job]]:
    """Split the work by license type (serials are per type, so one writer per type)."""
    people, _companies = population(licenses)
    per_type = counts(licenses)
    buckets: list[list[Job]] = [[] for _ in range(processes)]
    load = [0] * processes
    for code, n in sorted(per_type.items(), key=lambda kv: -kv[1]):
        start = done.get(code, 0)
        if start >= n:
            continue
        target = load.index(min(load))
        buckets[target].append(Job(db_url, code, start, n, people))
        load[target] += n - start
    return [b for b in buckets if b]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--licenses", type=int, default=1_000_000)
    parser.add_argument(
        "--processes", type=int, default=2, help="issuing processes, one or more license types each"
    )
    args = parser.parse_args()
    if args.db_url.startswith("sqlite"):
        args.processes = 1  # one writer: SQLite status-list indices follow the highest
    hub = _hub(args.db_url)
    create_schema(hub.engine)
    with hub.sessions.begin() as session:
        KeyRing(issuer_did=ISSUER_DID).signer(session=session, kek=hub.kek, now=AS_OF)
        # Resume: how far each type got (issue() numbers serials 1.. per type in order).
        from license_store.model import License

        done = {
            code: int(n)
            for code, n in session.execute(
                sa.select(License.license_type, sa.func.count()).group_by(License.license_type)
            )
        }
    hub.engine.dispose()
    total = sum(counts(args.licenses).values())
    already = sum(done.values())
    print(f"seeding {total - already} of {total} licenses ({already} already there)", flush=True)
    started = time.perf_counter()
    progress: Any = mp.get_context("spawn").Queue()
    workers = [
        mp.get_context("spawn").Process(target=run_jobs, args=(jobs, progress))
        for jobs in plan(args.db_url, args.licenses, args.processes, done)
    ]
    for p in workers:
        p.start()
    issued = 0
    last = time.perf_counter()
    analyzed = already
    while any(p.is_alive() for p in workers) or not progress.empty():
        try:
            issued += progress.get(timeout=1)
        except Exception:  # queue.Empty: nothing this second
            continue
        if already + issued >= 2 * max(analyzed, 250_000):
            # Fresh statistics as the tables grow (autovacuum may be off or behind): with the
            # planner still thinking they are small, issue()'s planning reads turn into scans
            # (measured: 7,000 licenses/s fell to 1,100/s at 2.8 M until an ANALYZE).
            _analyze(args.db_url)
            analyzed = already + issued
        if time.perf_counter() - last > 15:
            rate = issued / (time.perf_counter() - started)
            print(f"  {already + issued:>10} licenses, {rate:,.0f}/s", flush=True)
            last = time.perf_counter()
    for p in workers:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"a seeding process failed (exit {p.exitcode})")
    elapsed = time.perf_counter() - started
    print(f"issued {issued} licenses in {elapsed:.0f} s ({issued / max(elapsed, 1e-9):,.0f}/s)")
    _analyze(args.db_url)


def _analyze(db_url: str) -> None:
    engine = make_engine(db_url)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))
    engine.dispose()


if __name__ == "__main__":
    main()
