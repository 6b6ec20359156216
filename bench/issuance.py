"""License issuance and verification against the raw Ed25519 rates of ``cryptography``.

In one process, alternating run by run, over the same synthetic marriage-certificate records:

* **raw sign**: ``Ed25519PrivateKey.sign`` over 64-byte messages (what eddsa-jcs-2022 signs),
  one thread, the same count as licenses.
* **issuance**: ``license_store.issuance.issue`` into a fresh hub database, ``--batch`` records
  per call and per commit: identifiers, status-list indices, credentials, RFC 8785, proofs,
  AES-GCM of the signed credential, bulk INSERT of licenses and holders, commit.
* **signing stage**: the same credentials built, canonicalized, hashed, signed and encrypted
  without a database (what issuance costs before it writes).
* **raw verify**: ``Ed25519PublicKey.verify`` of those signatures, one thread.
* **verification**: ``license_store.verification.verify_credential`` of every issued credential
  (already parsed): bounds, proof, RFC 8785, issuer binding, key, validity; and again with the
  hub's published status lists (revocation and suspension bits).

Rates are licenses per second; each ratio divides by the raw rate measured in the same repeat,
and the table shows the median of the repeats. The machine is shared, so the ratios (taken a
few seconds apart) are steadier than the rates.

    .venv/bin/python bench/issuance.py [--licenses 20000] [--repeats 3] [--batch 2000]
                                       [--db-url postgresql+psycopg://...]

Results go to bench/results/issuance.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cryptography
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session
from stdnum.iso7064 import mod_11_2

from catalog_schemas.cipher import FieldCipher
from catalog_schemas.holder import holder_key
from license_store import multikey
from license_store.canonical import canonicalize, canonicalize_plain
from license_store.credential import build_credential
from license_store.issuance import issue
from license_store.key import KeyRing
from license_store.model import License, metadata
from license_store.record import HolderRef, LicenseRecord
from license_store.status_list import StatusLists, publish, published_lists, status_entries
from license_store.store import credential_of
from license_store.verification import verify_credential

RESULTS = Path(__file__).resolve().parent / "results" / "issuance.md"
NOW = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC)
ISSUER_DID = "did:web:onehub.gd.gov.cn"
DCA = "11440000000000050C"
TYPE_CODES = {"marriage_certificate": DCA + "001"}
ISSUER_CODES = {"dca": DCA}
HUB_KEY = b"bench-hub-key-32-bytes-long!!!!!"
OFFICES = ("广州市越秀区民政局", "广州市天河区民政局", "深圳市福田区民政局", "佛山市南海区民政局")


def _resident_id(region: str, born: dt.date, sequence: int) -> str:
    body = f"{region}{born:%Y%m%d}{sequence % 1000:03d}"
    return body + mod_11_2.calc_check_digit(body)


def records(count: int) -> list[LicenseRecord]:
    """Deterministic marriage-certificate records, two holders each."""
    out = []
    for n in range(count):
        born_a = dt.date(1960, 1, 1) + dt.timedelta(days=n % 12000)
        born_b = dt.date(1962, 6, 1) + dt.timedelta(days=(n * 7) % 12000)
        id_a = _resident_id("440106", born_a, n)
        id_b = _resident_id("440104", born_b, n + 1)
        number = f"J440106-{2000 + n % 26}-{n:07d}"
        fields = {
            "certificate_no": number,
            "registration_date": f"{2000 + n % 26}-05-20",
            "registration_office": OFFICES[n % len(OFFICES)],
        }
        out.append(
            LicenseRecord(
                record_key=f"marriage_certificate:dca:{number}",
                license_type="marriage_certificate",
                type_name_zh="结婚证",
                type_name_en="Marriage Certificate",
                issuer_department="dca",
                issuer_name_zh="广东省民政厅",
                issuer_name_en="Department of Civil Affairs of Guangdong Province",
                license_no=number,
                holders=(
                    HolderRef(
                        "party_a",
                        "natural_person",
                        holder_key(HUB_KEY, "natural_person", id_a),
                        id_a,
                        "张三",
                    ),
                    HolderRef(
                        "party_b",
                        "natural_person",
                        holder_key(HUB_KEY, "natural_person", id_b),
                        id_b,
                        "李四",
                    ),
                ),
                fields=fields,
                valid_from=dt.date(2000 + n % 26, 5, 20),
                valid_until=None,
                source="dca_marriage",
                batch_id="bench:1",
                as_of=NOW,
                row_hash=hashlib.sha256(repr(sorted(fields.items())).encode()).hexdigest(),
            )
        )
    return out


def _timed(work: Callable[[], Any]) -> tuple[float, float, Any]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = work()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def _raw_sign(count: int) -> tuple[Any, list[bytes], list[bytes], tuple[float, float]]:
    key = Ed25519PrivateKey.generate()
    messages = [hashlib.sha512(i.to_bytes(8, "big")).digest() for i in range(count)]
    sign = key.sign
    wall, cpu, signatures = _timed(lambda: [sign(m) for m in messages])
    return key.public_key(), messages, signatures, (wall, cpu)


def _raw_verify(public_key: Any, messages: list[bytes], signatures: list[bytes]) -> Any:
    verify = public_key.verify

    def work() -> None:
        for message, signature in zip(messages, signatures, strict=True):
            verify(signature, message)

    return _timed(work)


def _fresh_engine(db_url: str | None, folder: Path) -> sa.Engine:
    if db_url is None:
        path = folder / "hub.db"
        path.unlink(missing_ok=True)
        engine = sa.create_engine(f"sqlite:///{path}")

        @sa.event.listens_for(engine, "connect")
        def _wal(dbapi_conn: Any, _record: Any) -> None:
            # As onehub.settings.make_engine sets up the embedded hub database.
            dbapi_conn.execute("PRAGMA journal_mode=WAL")

    else:
        engine = sa.create_engine(db_url)
        metadata.drop_all(engine)
    metadata.create_all(engine)
    return engine


def _issue_all(
    engine: sa.Engine, batch: list[LicenseRecord], size: int, cipher: FieldCipher, kek: bytes
) -> int:
    ring = KeyRing(issuer_did=ISSUER_DID)
    issued = 0
    with Session(engine) as session:
        signer = ring.signer(session=session, kek=kek, now=NOW)
        session.commit()
        for start in range(0, len(batch), size):
            result = issue(
                session=session,
                records=batch[start : start + size],
                signer=signer,
                cipher=cipher,
                issuer_did=ISSUER_DID,
                type_codes=TYPE_CODES,
                issuer_codes=ISSUER_CODES,
                now=NOW,
            )
            session.commit()
            issued += len(result.issued)
    return issued


def _signing_stage(batch: list[LicenseRecord], cipher: FieldCipher) -> int:
    """Build, canonicalize, hash, sign, encode and encrypt, as issue() does, without a DB."""
    key = Ed25519PrivateKey.generate()
    config_hash = hashlib.sha256(canonicalize({"created": "2026-11-27T02:00:00Z"})).digest()
    for index, record in enumerate(batch):
        license_id = f"1.2.156.3005.2.{DCA}001.{DCA}.{index:010d}.001.K"
        unsigned = canonicalize_plain(
            build_credential(
                record,
                license_id=license_id,
                issuer_did=ISSUER_DID,
                credential_status=status_entries("https://onehub.gd.gov.cn", index),
            )
        )
        signature = key.sign(config_hash + hashlib.sha256(unsigned).digest())
        signed = (
            unsigned[:-1]
            + b',"proof":{"proofValue":"'
            + multikey.encode_base58btc(signature).encode()
            + b'"}}'
        )
        cipher.encrypt(signed, aad=license_id)
    return len(batch)


def _credentials(engine: sa.Engine, cipher: FieldCipher) -> list[dict[str, Any]]:
    with Session(engine) as session:
        return [credential_of(lic, cipher) for lic in session.scalars(sa.select(License))]


def _verify_all(credentials: list[dict[str, Any]], keys: Any, lists: Any = None) -> int:
    later = NOW + dt.timedelta(hours=1)
    for credential in credentials:
        verify_credential(credential, keys=keys, now=later, status_lists=lists)
    return len(credentials)


def run(count: int, repeats: int, size: int, db_url: str | None) -> dict[str, Any]:
    """Measure every figure ``repeats`` times, alternating; the medians and every ratio."""
    batch = records(count)
    cipher = FieldCipher({"k1": os.urandom(32)}, "k1")
    kek = os.urandom(32)
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            public_key, messages, signatures, raw_sign = _raw_sign(count)
            engine = _fresh_engine(db_url, Path(tmp))
            issue_wall, issue_cpu, issued = _timed(
                lambda e=engine: _issue_all(e, batch, size, cipher, kek)
            )
            assert issued == count, issued
            stage = _timed(lambda: _signing_stage(batch, cipher))
            raw_verify = _raw_verify(public_key, messages, signatures)
            credentials = _credentials(engine, cipher)
            with Session(engine) as session:
                ring = KeyRing(issuer_did=ISSUER_DID)
                keys = ring.key_set(session=session)
                publish(
                    session=session,
                    signer=ring.signer(session=session, kek=kek, now=NOW),
                    issuer_did=ISSUER_DID,
                    now=NOW,
                )
                session.commit()
                lists = StatusLists.from_credentials(
                    published_lists(session=session), keys=keys, now=NOW
                )
            verify = _timed(lambda c=credentials, k=keys: _verify_all(c, k))
            listed = _timed(lambda c=credentials, k=keys, s=lists: _verify_all(c, k, s))
            engine.dispose()
            row: dict[str, float] = {}
            for clock, index in (("wall", 0), ("cpu", 1)):
                row[f"raw_sign_{clock}"] = count / raw_sign[index]
                row[f"issue_{clock}"] = count / (issue_wall, issue_cpu)[index]
                row[f"stage_{clock}"] = count / stage[index]
                row[f"raw_verify_{clock}"] = count / raw_verify[index]
                row[f"verify_{clock}"] = count / verify[index]
                row[f"lists_{clock}"] = count / listed[index]
                for name, raw in (("issue", "sign"), ("stage", "sign")):
                    row[f"{name}_ratio_{clock}"] = (
                        row[f"{name}_{clock}"] / row[f"raw_{raw}_{clock}"]
                    )
                for name in ("verify", "lists"):
                    row[f"{name}_ratio_{clock}"] = (
                        row[f"{name}_{clock}"] / row[f"raw_verify_{clock}"]
                    )
            rows.append(row)
            print(
                f"repeat {repeat + 1} (cpu | wall): issue {row['issue_ratio_cpu']:.0%} |"
                f" {row['issue_ratio_wall']:.0%}, stage {row['stage_ratio_cpu']:.0%} |"
                f" {row['stage_ratio_wall']:.0%}, verify {row['verify_ratio_cpu']:.0%} |"
                f" {row['verify_ratio_wall']:.0%}, with lists {row['lists_ratio_cpu']:.0%} |"
                f" {row['lists_ratio_wall']:.0%}",
                flush=True,
            )
    medians = {name: statistics.median(r[name] for r in rows) for name in rows[0]}
    return medians | {"runs": rows}


def write(result: dict[str, Any], args: argparse.Namespace) -> None:
    """Write the results table with the command that reproduced it."""
    backend = "PostgreSQL" if args.db_url else "SQLite (WAL, a file in a temp folder)"
    command = f".venv/bin/python bench/issuance.py --licenses {args.licenses} " + (
        f"--repeats {args.repeats} --batch {args.batch}"
        + (" --db-url postgresql+psycopg://…" if args.db_url else "")
    )

    def line(label: str, name: str, raw: str) -> str:
        return (
            f"| {label} | {result[f'{name}_cpu']:,.0f} | {result[f'{name}_ratio_cpu']:.0%} |"
            f" {result[f'{name}_wall']:,.0f} | {result[f'{name}_ratio_wall']:.0%} |"
            if raw
            else f"| {label} | {result[f'{name}_cpu']:,.0f} | 100% | {result[f'{name}_wall']:,.0f}"
            " | 100% |"
        )

    lines = [
        "# Issuance and verification vs raw Ed25519",
        "",
        f"`{command}`",
        "",
        f"{args.licenses:,} marriage-certificate licenses (two holders each, ~1.3 KB credentials),"
        f" {args.batch:,} per `issue()` call and commit; hub database: {backend}.",
        f"Median of {args.repeats} repeats; every ratio divides by the raw rate measured in the"
        " same repeat with the same clock. Everything here runs in one thread, so *per CPU"
        " second* (process time) is the work done; *per wall second* also counts waiting (disk"
        " syncs, and other programs on this shared machine).",
        f"Python {platform.python_version()}, cryptography {cryptography.__version__},"
        f" {os.cpu_count()} CPUs ({platform.machine()}).",
        "",
        "| what | per CPU s | vs raw | per wall s | vs raw |",
        "| --- | ---: | ---: | ---: | ---: |",
        line("raw Ed25519 sign (`cryptography`)", "raw_sign", ""),
        line("**issuance**, end to end (`issue()` + commit)", "issue", "sign"),
        line("signing stage only (build, JCS, sign, encrypt; no DB)", "stage", "sign"),
        line("raw Ed25519 verify (`cryptography`)", "raw_verify", ""),
        line("**verification** (`verify_credential`)", "verify", "verify"),
        line("verification with both status lists", "lists", "verify"),
        "",
        "Per repeat, issuance / verification vs raw (CPU): "
        + ", ".join(
            f"{r['issue_ratio_cpu']:.0%} / {r['verify_ratio_cpu']:.0%}" for r in result["runs"]
        ),
        "",
        "CPU microseconds per license: "
        f"Ed25519 sign {1e6 / result['raw_sign_cpu']:.0f}; signing stage"
        f" {1e6 / result['stage_cpu']:.0f} (the sign included); the rest of issuance (bulk"
        f" INSERT of the license and its holder rows, commit, planning)"
        f" {1e6 / result['issue_cpu'] - 1e6 / result['stage_cpu']:.0f}."
        f" Ed25519 verify {1e6 / result['raw_verify_cpu']:.0f}; verification"
        f" {1e6 / result['verify_cpu']:.0f}.",
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {RESULTS}")


def main() -> None:
    """Parse arguments, run, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--licenses", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--db-url", default=None, help="default: a SQLite file in a temp folder")
    args = parser.parse_args()
    write(run(args.licenses, args.repeats, args.batch, args.db_url), args)


if __name__ == "__main__":
    main()
