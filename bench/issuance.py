"""License issuance and verification against the raw Ed25519 rates of ``cryptography``.

In one process, alternating run by run, over the same synthetic marriage-certificate records:

* **raw sign**: ``Ed25519PrivateKey.sign`` over 64-byte messages (what eddsa-jcs-2022 signs),
  one thread, the same count as licenses, ``--batch`` at a time right before each ``issue()``
  call (so both see the same background load). This is the target's reference rate.
* **raw sign, libsodium**: the same messages signed by ``license_store.ed25519.SecretKey``
  (PyNaCl's libsodium, what issuance signs with: the same signatures, faster), in the same
  slices, so the report also shows issuance against the primitive it uses.
* **issuance**: ``license_store.issuance.issue`` into a new hub database that already holds
  as many other licenses (issued untimed first, see ``_prefill``; ``--cold``: empty),
  ``--batch`` records per call and per commit: identifiers, status-list indices, credentials,
  RFC 8785, proofs, AES-GCM of the signed credential, rows written from a second thread while
  the next batch is signed (SQLite: INSERTs of 64 rows; PostgreSQL: binary COPY), commit.
* **issuance in one call**: the same records into another such database in one ``issue()``
  call and one commit, as the pipeline issues a license type's changeset (with its own raw
  slice of the same size right before it).
* **signing stage**: the same credentials rendered (RFC 8785), hashed, signed, encoded and
  encrypted without a database (what issuance costs before it writes).
* **raw verify**: ``Ed25519PublicKey.verify`` of those signatures, one thread, interleaved
  1,000 at a time with the two verification runs below.
* **verification**: ``license_store.verification.verify_credential`` of every issued credential
  (already parsed): bounds, proof, RFC 8785, issuer binding, key, validity; and again with the
  hub's published status lists (revocation and suspension bits).

Rates are licenses per second; each ratio divides by the raw rate measured in the same repeat,
and the table shows the median of the repeats. The machine is shared, so the ratios (taken a
few seconds apart) are steadier than the rates.

    .venv/bin/python bench/issuance.py [--licenses 20000] [--repeats 3] [--batch 2000]
        [--db-url sqlite] [--db-url postgresql+psycopg://.../onehub_issue_bench]
        [--no-checkpoint] [--cold]

``--db-url`` may be given more than once (one section per backend); a PostgreSQL database's
license tables are dropped and re-created, so point it at a scratch database. Each timed
PostgreSQL run starts from a ``CHECKPOINT`` (see ``_settle``; ``--no-checkpoint`` leaves it out,
and the bench then needs no superuser or ``pg_checkpoint`` role).

Results go to bench/results/issuance.md (or ``--out``).
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
from collections.abc import Callable, Sequence
from functools import partial
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
from license_store import ed25519
from license_store.canonical import canonicalize
from license_store.credential import ISSUER_NAME, CredentialTemplate
from license_store.issuance import SIGN_BATCH, IssueResult, issue
from license_store.key import KeyRing
from license_store.model import License, LicenseHolder, metadata
from license_store.proof import encode_signatures
from license_store.record import HolderRef, LicenseRecord
from license_store.signer import Signer
from license_store.status_list import StatusLists, publish, published_lists
from license_store.store import credential_of
from license_store.verification import verify_credential
from onehub.checkpoint import Checkpointer, checkpointer_of
from onehub.settings import make_engine

RESULTS = Path(__file__).resolve().parent / "results" / "issuance.md"
NOW = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC)
ISSUER_DID = "did:web:onehub.gd.gov.cn"
DCA = "11440000000000050C"
TYPE_CODES = {"marriage_certificate": DCA + "001"}
ISSUER_CODES = {"dca": DCA}
HUB_KEY = b"bench-hub-key-32-bytes-long!!!!!"
# The batch id of the timed records; the licenses a store already holds (see _prefill) have
# another, so every figure counts only the licenses issued while timed.
TIMED_BATCH = "bench:1"
OFFICES = ("广州市越秀区民政局", "广州市天河区民政局", "深圳市福田区民政局", "佛山市南海区民政局")


def _resident_id(region: str, born: dt.date, sequence: int) -> str:
    body = f"{region}{born:%Y%m%d}{sequence % 1000:03d}"
    return body + mod_11_2.calc_check_digit(body)


def records(count: int, *, first: int = 0, batch_id: str = TIMED_BATCH) -> list[LicenseRecord]:
    """Deterministic marriage-certificate records, two holders each, numbered from ``first``."""
    out = []
    for n in range(first, first + count):
        born_a = dt.date(1960, 1, 1) + dt.timedelta(days=n % 12000)
        born_b = dt.date(1962, 6, 1) + dt.timedelta(days=(n * 7) % 12000)
        id_a = _resident_id("440106", born_a, n)
        id_b = _resident_id("440104", born_b, n + 1)
        # Registered on one of 9,497 days (2000-01-01 to 2025-12-31), as real records are.
        registered = dt.date(2000, 1, 1) + dt.timedelta(days=(n * 7919) % 9497)
        number = f"J440106-{registered.year}-{n:07d}"
        fields = {
            "certificate_no": number,
            "registration_date": registered.isoformat(),
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
                valid_from=registered,
                valid_until=None,
                source="dca_marriage",
                batch_id=batch_id,
                as_of=NOW,
                row_hash=hashlib.sha256(repr(sorted(fields.items())).encode()).hexdigest(),
            )
        )
    return out


def _cpu_model() -> str:
    """The CPU's model name (Linux), as the ratios depend on it: Python and Ed25519 do not
    slow down alike from one machine to another."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _timed(work: Callable[[], Any]) -> tuple[float, float, Any]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = work()
    return time.perf_counter() - wall, time.process_time() - cpu, result


class _Clock:
    """Wall and CPU seconds of one kind of work, added up over slices."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def run(self, work: Callable[[], Any]) -> Any:
        wall, cpu, result = _timed(work)
        self.wall += wall
        self.cpu += cpu
        return result


def _fresh_engine(
    db_url: str | None,
    folder: Path,
    schema: sa.MetaData = metadata,
    *,
    settle: bool = False,
    prior: Sequence[LicenseRecord] = (),
    cipher: FieldCipher | None = None,
    kek: bytes = b"",
) -> sa.Engine:
    """A new hub database with the license tables of ``schema`` (the hub's, by default).

    ``prior`` records are then issued into it, untimed (see _prefill). With ``settle``, a
    PostgreSQL server then checkpoints before the timed run (see _settle).
    """
    if db_url is None:
        path = folder / "hub.db"
        for stale in (path, path.with_name("hub.db-wal"), path.with_name("hub.db-shm")):
            stale.unlink(missing_ok=True)
        # The embedded hub database as the hub sets it up (WAL, page size, foreign keys).
        engine = make_engine(f"sqlite:///{path}")
    else:
        engine = sa.create_engine(db_url)
        schema.drop_all(engine)
    schema.create_all(engine)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            # As onehub.database.create_schema lays out the hub's licenses table: credentials
            # stored inline, not compressed into TOAST (what the server does per row).
            connection.execute(
                sa.text("ALTER TABLE licenses ALTER COLUMN credential_enc SET STORAGE MAIN")
            )
            connection.execute(sa.text("ALTER TABLE licenses SET (toast_tuple_target = 8160)"))
    if prior:
        assert cipher is not None
        _prefill(engine, prior, cipher, kek)
    if settle:
        _settle(engine)
    return engine


def _prefill(
    engine: sa.Engine, prior: Sequence[LicenseRecord], cipher: FieldCipher, kek: bytes
) -> None:
    """Issue other records first, untimed: the timed run meets a store that holds licenses.

    As a running hub is: its indexes are not empty, and on SQLite its WAL file has been written
    and checkpointed before, so SQLite writes the timed run's pages over it from the start,
    as it does after every complete checkpoint, instead of growing a new file (into fresh page
    cache, and new blocks at each sync). ``--cold`` leaves this out: an empty store, as on the
    first day. (_issue_all waits for the SQLite checkpoint of these pages before it times.)
    """
    with Session(engine) as session:
        signer = KeyRing(issuer_did=ISSUER_DID).signer(session=session, kek=kek, now=NOW)
        _issue(session, prior, signer, cipher)
        session.commit()


def _issue(
    session: Session, batch: Sequence[LicenseRecord], signer: Signer, cipher: FieldCipher
) -> IssueResult:
    """issue() with the bench's issuer, codes and clock."""
    return issue(
        session=session,
        records=batch,
        signer=signer,
        cipher=cipher,
        issuer_did=ISSUER_DID,
        type_codes=TYPE_CODES,
        issuer_codes=ISSUER_CODES,
        now=NOW,
    )


def _settled(checkpointer: Checkpointer) -> None:
    """Wait for the SQLite hub's checkpoint thread to finish what is due."""
    if not checkpointer.wait(timeout=120):
        raise SystemExit(f"the WAL checkpoint of {checkpointer.path} did not finish in 2 minutes")


def _settle(engine: sa.Engine) -> None:
    """On PostgreSQL, a CHECKPOINT before a timed run, so each run starts from the same state.

    Without it a run pays for the run before it: a checkpoint (timed, or forced by WAL volume)
    may land in the middle of it, and on a server that has written little WAL so far every new
    16 MiB WAL segment is created and zero-filled by the inserting backend (perf on a fresh
    cluster: a third of the issuing backend's CPU went to the kernel copying into the page
    cache, more than half of that under XLogFileInit; in one call the server's CPU per license
    was 35 µs without the checkpoint and 25 µs with it). After a checkpoint the server
    recycles old segments, as a server under steady load does. The pages this run dirties are
    written at the next checkpoint, outside the timed work, as a running server's checkpointer
    writes them in the background.
    """
    if engine.dialect.name != "postgresql":
        return
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("CHECKPOINT"))
    except sa.exc.DBAPIError as exc:
        raise SystemExit(
            "CHECKPOINT was refused; run the bench as a superuser or a role granted"
            f" pg_checkpoint (PostgreSQL 15+): {exc.orig}"
        ) from None


def _issue_all(
    engine: sa.Engine,
    batch: list[LicenseRecord],
    size: int,
    cipher: FieldCipher,
    kek: bytes,
    messages: list[bytes],
    raw: list[tuple[_Clock, Callable[[bytes], bytes]]],
    issuing: _Clock,
) -> tuple[int, list[bytes], float | None]:
    """Issue ``size`` records per call and commit; before each call, sign as many with each raw.

    Returns the count issued, the first raw signer's signatures (verified later), and the CPU
    seconds the PostgreSQL server process serving the session spent meanwhile (None for SQLite,
    or when the server is not on this machine).
    """
    ring = KeyRing(issuer_did=ISSUER_DID)
    issued = 0
    signatures: list[bytes] = []
    with Session(engine) as session:
        signer = issuing.run(lambda: ring.signer(session=session, kek=kek, now=NOW))
        issuing.run(session.commit)
        checkpointer = checkpointer_of(engine)
        if checkpointer is not None:
            # SQLite: the hub's background checkpoint of that commit ends before the timing
            # starts, as the CHECKPOINT before a PostgreSQL run (see _settle).
            _settled(checkpointer)
        backend = (
            session.scalar(sa.text("SELECT pg_backend_pid()"))
            if engine.dialect.name == "postgresql"
            else None
        )
        server_before = _process_cpu(backend)
        for start in range(0, len(batch), size):
            # The raw rate is taken slice by slice beside issuance, so both see the same
            # background load of this shared machine.
            part = messages[start : start + size]
            for n, (raw_clock, sign) in enumerate(raw):
                signed = raw_clock.run(partial(_sign_all, sign, part))
                if n == 0:
                    signatures += signed

            def work(start: int = start) -> int:
                result = _issue(session, batch[start : start + size], signer, cipher)
                session.commit()
                return len(result.issued)

            issued += issuing.run(work)
        server_after = _process_cpu(backend)
    server = (
        server_after - server_before
        if server_before is not None and server_after is not None
        else None
    )
    return issued, signatures, server


def _process_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of a process on this machine (Linux /proc), if readable."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    # utime and stime are fields 14 and 15 of stat(5), counted after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


LICENSE_COLUMNS = [c.name for c in License.__table__.columns]
HOLDER_COLUMNS = [c.name for c in LicenseHolder.__table__.columns]
Row = tuple[Any, ...]
# Licenses rows and their holder rows, stored together by one executemany each and a commit.
Batch = tuple[list[Row], list[Row]]


def stored_rows(engine: sa.Engine) -> tuple[list[Row], dict[str, list[Row]]]:
    """The stored license rows (in status-list order) and the holder rows of each license."""
    with engine.connect() as connection:
        licenses = [
            tuple(row)
            for row in connection.execute(
                sa.text(
                    f"SELECT {', '.join(LICENSE_COLUMNS)} FROM licenses WHERE batch_id = :batch"
                    " ORDER BY status_index"
                ),
                {"batch": TIMED_BATCH},
            )
        ]
        holders: dict[str, list[Row]] = {}
        for holder in connection.exec_driver_sql(
            f"SELECT {', '.join(HOLDER_COLUMNS)} FROM license_holders"
        ):
            holders.setdefault(holder[0], []).append(tuple(holder))
    return licenses, holders


def batches(licenses: list[Row], holders: dict[str, list[Row]], size: int) -> list[Batch]:
    """``size`` licenses a batch, each with the holder rows ``holders`` has for them."""
    return [
        (
            licenses[start : start + size],
            [h for row in licenses[start : start + size] for h in holders.get(row[0], ())],
        )
        for start in range(0, len(licenses), size)
    ]


def insert_batches(driver: Any, parts: list[Batch]) -> None:
    """Store the batches again through a sqlite3 connection: executemany and a commit each."""
    insert_licenses = (
        f"INSERT INTO licenses ({', '.join(LICENSE_COLUMNS)})"
        f" VALUES ({', '.join('?' * len(LICENSE_COLUMNS))})"
    )
    insert_holders = (
        f"INSERT INTO license_holders ({', '.join(HOLDER_COLUMNS)})"
        f" VALUES ({', '.join('?' * len(HOLDER_COLUMNS))})"
    )
    for license_rows, holder_rows in parts:
        driver.executemany(insert_licenses, license_rows)
        if holder_rows:
            driver.executemany(insert_holders, holder_rows)
        driver.commit()


def _sqlite_storage(source: sa.Engine, folder: Path, size: int) -> float:
    """CPU seconds SQLite alone takes to store the issued rows: the same rows, ``size``
    licenses (and their holders) per executemany and commit, into a fresh hub database, and
    the checkpoints that copy them into its file (the hub's checkpoint thread is in this
    process; disposing of the engine waits for its last one)."""
    parts = batches(*stored_rows(source), size)
    (folder / "again").mkdir(exist_ok=True)
    target = _fresh_engine(None, folder / "again")
    raw = target.raw_connection()
    try:
        cpu = time.process_time()
        insert_batches(raw.driver_connection, parts)
    finally:
        raw.close()
        target.dispose()
    return time.process_time() - cpu


def _sign_all(sign: Callable[[bytes], bytes], messages: list[bytes]) -> list[bytes]:
    return [sign(message) for message in messages]


def _signing_stage(batch: list[LicenseRecord], cipher: FieldCipher) -> int:
    """Render, hash, sign, encode and encrypt, as issue() does, without a database."""
    sign_many = ed25519.SecretKey(Ed25519PrivateKey.generate()).sign_many
    config_hash = hashlib.sha256(canonicalize({"created": "2026-11-27T02:00:00Z"})).digest()
    template = CredentialTemplate(
        issuer_did=ISSUER_DID, issuer_name=ISSUER_NAME, status_base_url="https://onehub.gd.gov.cn"
    )
    for start in range(0, len(batch), SIGN_BATCH):
        ids, unsigned = [], []
        for index in range(start, min(start + SIGN_BATCH, len(batch))):
            license_id = f"1.2.156.3005.2.{DCA}001.{DCA}.{index:010d}.001.K"
            ids.append(license_id)
            text = template.render(batch[index], license_id=license_id, status_index=index)
            assert text is not None
            unsigned.append(text)
        messages = [config_hash + hashlib.sha256(text).digest() for text in unsigned]
        signatures = sign_many(messages)
        cipher.encrypt_batch(
            (
                b"".join((text[:-1], b',"proof":{"proofValue":"', proof_value, b'"}}'))
                for text, proof_value in zip(unsigned, encode_signatures(signatures), strict=True)
            ),
            ids,
        )
    return len(batch)


def _credentials(engine: sa.Engine, cipher: FieldCipher) -> tuple[list[dict[str, Any]], float]:
    """The issued credentials (parsed), and their mean signed size in bytes."""
    with Session(engine) as session:
        licenses = list(session.scalars(sa.select(License).where(License.batch_id == TIMED_BATCH)))
        size = statistics.mean(
            len(cipher.decrypt(lic.credential_enc, aad=lic.license_id)) for lic in licenses
        )
        return [credential_of(lic, cipher) for lic in licenses], size


def _verify_all(
    credentials: list[dict[str, Any]],
    keys: Any,
    lists: Any,
    raw: tuple[Any, list[bytes], list[bytes]],
    size: int,
) -> tuple[_Clock, _Clock, _Clock]:
    """Raw verify, verification, and verification with status lists, slice by slice."""
    public_key, messages, signatures = raw
    verify = public_key.verify
    later = NOW + dt.timedelta(hours=1)
    clocks = (_Clock(), _Clock(), _Clock())

    def raw_slice(start: int) -> None:
        for n in range(start, min(start + size, len(messages))):
            verify(signatures[n], messages[n])

    def ours(start: int, status_lists: Any) -> None:
        for credential in credentials[start : start + size]:
            verify_credential(credential, keys=keys, now=later, status_lists=status_lists)

    for start in range(0, len(credentials), size):
        clocks[0].run(partial(raw_slice, start))
        clocks[1].run(partial(ours, start, None))
        clocks[2].run(partial(ours, start, lists))
    return clocks


def run(
    count: int,
    repeats: int,
    size: int,
    db_url: str | None,
    *,
    settle: bool = True,
    warm: bool = True,
) -> dict[str, Any]:
    """Measure every figure ``repeats`` times, interleaved with the raw rates; medians, ratios.

    With ``warm``, each timed run issues into a store that already holds ``count`` other
    licenses (see _prefill); without, into an empty one.
    """
    batch = records(count)
    prior = records(count, first=count, batch_id="bench:prior") if warm else []
    cipher = FieldCipher({"k1": os.urandom(32)}, "k1")
    kek = os.urandom(32)
    store = partial(_fresh_engine, db_url, settle=settle, prior=prior, cipher=cipher, kek=kek)
    messages = [hashlib.sha512(i.to_bytes(8, "big")).digest() for i in range(count)]
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            key = Ed25519PrivateKey.generate()
            sodium = ed25519.SecretKey(key).sign
            raw_sign, raw_sodium, issuing = _Clock(), _Clock(), _Clock()
            # The same records into a fresh database in one issue() call and one commit:
            # how the pipeline issues a license type's changes (exchange.issuance). The raw rate is
            # measured beside it again, so each ratio has its own. (First: on PostgreSQL the next
            # run drops these tables.)
            whole_raw, whole_sodium, whole = _Clock(), _Clock(), _Clock()
            whole_server: float | None = None
            whole_checkpoint: Checkpointer | None = None
            if size < count:
                (Path(tmp) / "whole").mkdir(exist_ok=True)
                whole_engine = store(Path(tmp) / "whole")
                _, _, whole_server = _issue_all(
                    whole_engine,
                    batch,
                    count,
                    cipher,
                    kek,
                    messages,
                    [(whole_raw, key.sign), (whole_sodium, sodium)],
                    whole,
                )
                whole_engine.dispose()  # waits for the background checkpoint (SQLite)
                whole_checkpoint = checkpointer_of(whole_engine)
            engine = store(Path(tmp))
            issued, signatures, server_cpu = _issue_all(
                engine,
                batch,
                size,
                cipher,
                kek,
                messages,
                [(raw_sign, key.sign), (raw_sodium, sodium)],
                issuing,
            )
            assert issued == count, issued
            stage = _timed(lambda: _signing_stage(batch, cipher))
            storage = _sqlite_storage(engine, Path(tmp), size) if db_url is None else None
            credentials, credential_bytes = _credentials(engine, cipher)
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
            raw_verify, verify, listed = _verify_all(
                credentials, keys, lists, (key.public_key(), messages, signatures), 1000
            )
            engine.dispose()
            row: dict[str, float] = {}
            for clock, index in (("wall", 0), ("cpu", 1)):
                row[f"raw_sign_{clock}"] = count / getattr(raw_sign, clock)
                row[f"raw_sodium_{clock}"] = count / getattr(raw_sodium, clock)
                row[f"issue_{clock}"] = count / getattr(issuing, clock)
                row[f"stage_{clock}"] = count / stage[index]
                row[f"raw_verify_{clock}"] = count / getattr(raw_verify, clock)
                row[f"verify_{clock}"] = count / getattr(verify, clock)
                row[f"lists_{clock}"] = count / getattr(listed, clock)
                if whole.wall:
                    row[f"whole_{clock}"] = count / getattr(whole, clock)
                    row[f"whole_ratio_{clock}"] = row[f"whole_{clock}"] / (
                        count / getattr(whole_raw, clock)
                    )
                    row[f"whole_sodium_ratio_{clock}"] = row[f"whole_{clock}"] / (
                        count / getattr(whole_sodium, clock)
                    )
                for ratio, name, raw in (
                    ("issue", "issue", "sign"),
                    ("stage", "stage", "sign"),
                    ("issue_sodium", "issue", "sodium"),
                    ("stage_sodium", "stage", "sodium"),
                ):
                    row[f"{ratio}_ratio_{clock}"] = (
                        row[f"{name}_{clock}"] / row[f"raw_{raw}_{clock}"]
                    )
                for name in ("verify", "lists"):
                    row[f"{name}_ratio_{clock}"] = (
                        row[f"{name}_{clock}"] / row[f"raw_verify_{clock}"]
                    )
            row["credential_bytes"] = credential_bytes
            row["verified"] = len(credentials)  # the timed run's, not those issued before it
            if storage is not None:
                row["storage_us"] = 1e6 * storage / count
            if server_cpu is not None:
                # What the PostgreSQL server spent on the same licenses (parsing COPY, inserts,
                # indexes, WAL), and issuance per CPU second of both processes together.
                row["server_us"] = 1e6 * server_cpu / count
                row["both_cpu"] = count / (issuing.cpu + server_cpu)
                row["both_ratio_cpu"] = row["both_cpu"] / row["raw_sign_cpu"]
            if whole_server is not None:
                row["whole_server_us"] = 1e6 * whole_server / count
            if whole_checkpoint is not None:
                # SQLite: what the hub's checkpoint thread spent copying the one call's pages
                # from the WAL into the database file, after the call returned.
                row["whole_checkpoint_us"] = 1e6 * whole_checkpoint.stats.wall_seconds / count
                row["whole_checkpoint_cpu_us"] = 1e6 * whole_checkpoint.stats.cpu_seconds / count
            rows.append(row)
            print(
                f"repeat {repeat + 1} (cpu | wall): issue {row['issue_ratio_cpu']:.0%} |"
                f" {row['issue_ratio_wall']:.0%}"
                + (
                    f", in one call {row['whole_ratio_cpu']:.0%} | {row['whole_ratio_wall']:.0%}"
                    if "whole_cpu" in row
                    else ""
                )
                + f", stage {row['stage_ratio_cpu']:.0%} |"
                f" {row['stage_ratio_wall']:.0%}, verify {row['verify_ratio_cpu']:.0%} |"
                f" {row['verify_ratio_wall']:.0%}, with lists {row['lists_ratio_cpu']:.0%} |"
                f" {row['lists_ratio_wall']:.0%}",
                flush=True,
            )
    medians = {name: statistics.median(r[name] for r in rows) for name in rows[0]}
    return medians | {"runs": rows}


def section(result: dict[str, Any], args: argparse.Namespace, db_url: str | None) -> list[str]:
    """The table of one backend, with how it was measured."""
    backend = (
        "PostgreSQL (binary COPY from a second thread while the next batch is signed)"
        if db_url
        else "SQLite (as the hub sets it up: WAL, 16 KiB pages, 64 MiB page cache, WAL"
        " checkpoints in a background thread; a file in a temp folder; INSERTs of 64 rows from"
        " a second thread while the next batch is signed)"
    )

    def line(label: str, name: str, raw: str) -> str:
        return (
            f"| {label} | {result[f'{name}_cpu']:,.0f} | {result[f'{name}_ratio_cpu']:.0%} |"
            f" {result[f'{name}_wall']:,.0f} | {result[f'{name}_ratio_wall']:.0%} |"
            if raw
            else f"| {label} | {result[f'{name}_cpu']:,.0f} | 100% | {result[f'{name}_wall']:,.0f}"
            " | 100% |"
        )

    return [
        f"## {'PostgreSQL' if db_url else 'SQLite'}",
        "",
        f"{args.licenses:,} marriage-certificate licenses (two holders each, registered on up"
        " to 9,497 different days, signed credentials of"
        f" {result['credential_bytes'] / 1000:.1f} kB, stored encrypted as base64url),"
        f" {args.batch:,} per `issue()` call and commit; hub database: {backend}; "
        + (
            f"each timed run issues into a store that already holds {args.licenses:,} other"
            " licenses, issued untimed before it (`_prefill`; `--cold` for an empty store)."
            if args.warm
            else "each timed run issues into an empty store (`--cold`)."
        )
        + f" Median of {args.repeats} repeats. Load average before / after:"
        f" {result['load_before']:.1f} / {result['load_after']:.1f}.",
        "",
        "| what | per CPU s | vs raw | per wall s | vs raw |",
        "| --- | ---: | ---: | ---: | ---: |",
        line("raw Ed25519 sign (`cryptography`): the target's reference", "raw_sign", ""),
        "| raw Ed25519 sign (libsodium, what issuance signs with; same signatures) |"
        f" {result['raw_sodium_cpu']:,.0f} |"
        f" {result['raw_sodium_cpu'] / result['raw_sign_cpu']:.0%} |"
        f" {result['raw_sodium_wall']:,.0f} |"
        f" {result['raw_sodium_wall'] / result['raw_sign_wall']:.0%} |",
        line(
            f"**issuance**, end to end (`issue()` + commit), {args.batch:,} per call",
            "issue",
            "sign",
        ),
        *(
            [
                line(
                    f"**issuance**, all {args.licenses:,} in one call (as the pipeline issues a"
                    " changeset)",
                    "whole",
                    "sign",
                )
            ]
            if "whole_cpu" in result
            else []
        ),
        line("signing stage only (render, JCS, sign, encode, encrypt; no DB)", "stage", "sign"),
        line("raw Ed25519 verify (`cryptography`)", "raw_verify", ""),
        line("**verification** (`verify_credential`)", "verify", "verify"),
        line("verification with both status lists", "lists", "verify"),
        "",
        "Against libsodium's raw rate instead (the primitive issuance signs with; per CPU s |"
        f" per wall s): {args.batch:,} per call {result['issue_sodium_ratio_cpu']:.0%} |"
        f" {result['issue_sodium_ratio_wall']:.0%}"
        + (
            f", all in one call {result['whole_sodium_ratio_cpu']:.0%} |"
            f" {result['whole_sodium_ratio_wall']:.0%}"
            if "whole_cpu" in result
            else ""
        )
        + f", signing stage {result['stage_sodium_ratio_cpu']:.0%} |"
        f" {result['stage_sodium_ratio_wall']:.0%}.",
        "",
        "Per repeat, issuance / verification vs raw (CPU): "
        + ", ".join(
            f"{r['issue_ratio_cpu']:.0%} / {r['verify_ratio_cpu']:.0%}" for r in result["runs"]
        )
        + (
            "; issuance in one call vs raw (CPU | wall): "
            + ", ".join(
                f"{r['whole_ratio_cpu']:.0%} | {r['whole_ratio_wall']:.0%}" for r in result["runs"]
            )
            if "whole_cpu" in result
            else ""
        ),
        "",
        "CPU microseconds per license: "
        f"Ed25519 sign {1e6 / result['raw_sign_cpu']:.0f} (`cryptography`),"
        f" {1e6 / result['raw_sodium_cpu']:.0f} (libsodium); signing stage"
        f" {1e6 / result['stage_cpu']:.0f} (the sign included); the rest of issuance (planning,"
        " identifiers, status-list indexes, rows, COPY or INSERT of the license and its holder"
        f" rows, commit) {_rest_us(result):.0f}."
        f" Ed25519 verify {1e6 / result['raw_verify_cpu']:.0f}; verification"
        f" {1e6 / result['verify_cpu']:.0f}.",
        "",
        *(
            [
                "Of that rest, SQLite itself (the same rows stored again into a fresh hub"
                " database by executemany, a commit per batch: B-tree inserts, WAL writes,"
                f" checkpoints) takes {result['storage_us']:.0f} µs per license; the other"
                f" {_rest_us(result) - result['storage_us']:.0f} are issue()'s own work around"
                " the signing stage (planning queries, identifiers, rows, the session) and what"
                " interleaving signing, sealing and storing costs in CPU caches.",
                "",
            ]
            if "storage_us" in result
            else []
        ),
        *(
            [
                "The hub's checkpoint thread (onehub.checkpoint) then copied the one call's"
                " pages from the WAL into the database file in"
                f" {result['whole_checkpoint_us']:.0f} µs per license"
                f" ({result['whole_checkpoint_cpu_us']:.0f} µs of CPU), after the call returned"
                " and outside its timing, as PostgreSQL's checkpointer writes the pages of a"
                " run after it. (With SQLite's default, the commit that took the WAL past"
                " 1,000 pages did it itself, inside the call.)",
                "",
            ]
            if "whole_checkpoint_us" in result
            else []
        ),
        *(
            [
                "PostgreSQL server CPU (its backend process, from /proc) while issuing:"
                f" {result['server_us']:.0f} µs per license"
                + (
                    f" ({result['whole_server_us']:.0f} in one call)"
                    if "whole_server_us" in result
                    else ""
                )
                + (
                    ". Each timed run starts from a CHECKPOINT (see `_settle`)."
                    if args.checkpoint
                    else ". No CHECKPOINT before the timed runs (`--no-checkpoint`)."
                )
                + " Counting the"
                " server's CPU too (2,000 per call), issuance runs"
                f" {result['both_cpu']:,.0f} licenses per CPU second of client and server"
                f" together, {result['both_ratio_cpu']:.0%} of the raw sign rate (not the"
                " target's measure, which is the issuing process; shown so nothing is hidden"
                " on the server).",
                "",
            ]
            if "server_us" in result
            else []
        ),
    ]


def _verdict(result: dict[str, Any], name: str) -> str:
    """Whether a ratio reaches 50 % by both clocks, by one of them, or not at all."""
    cpu, wall = result[f"{name}_ratio_cpu"], result[f"{name}_ratio_wall"]
    if cpu >= 0.5 and wall >= 0.5:
        return "met (CPU and wall)"
    if cpu >= 0.5:
        return "met per CPU second only"
    return "met per wall second only" if wall >= 0.5 else "not met"


def _rest_us(result: dict[str, Any]) -> float:
    """CPU microseconds per license that issuance spends besides the signing stage."""
    return float(1e6 / result["issue_cpu"] - 1e6 / result["stage_cpu"])


def write(
    results: list[tuple[str | None, dict[str, Any]]], args: argparse.Namespace, out: Path
) -> None:
    """Write the results tables with the command that reproduced them."""
    command = (
        f".venv/bin/python bench/issuance.py --licenses {args.licenses}"
        f" --repeats {args.repeats} --batch {args.batch}"
        + ("" if args.checkpoint else " --no-checkpoint")
        + ("" if args.warm else " --cold")
        + "".join(
            " --db-url " + ("postgresql+psycopg://…" if url else "sqlite") for url, _ in results
        )
    )
    lines = [
        "# Issuance and verification vs raw Ed25519",
        "",
        f"`{command}`",
        "",
        "Every ratio divides by the raw rate measured in the same repeat with the same clock, in"
        " the same process. *Per CPU second* is this process's CPU time (on PostgreSQL that"
        " includes the thread that sends COPY data, not the server); *per wall second* also"
        " counts waiting (the server, disk syncs, and other programs on this shared machine).",
        f"Python {platform.python_version()}, cryptography {cryptography.__version__},"
        f" {os.cpu_count()} CPUs ({_cpu_model()}, {platform.machine()}).",
        "",
    ]
    for url, result in results:
        lines += section(result, args, url)
    lines += [
        "## Against the targets (issue 5: ≥ 50 % of the raw rates)",
        "",
        *(
            f"- {'PostgreSQL' if url else 'SQLite'}: issuance"
            f" {result['issue_ratio_cpu']:.0%} of raw Ed25519 sign per CPU second"
            f" ({result['issue_ratio_wall']:.0%} per wall second)"
            + (
                f"; in one call {result['whole_ratio_cpu']:.0%}"
                f" ({result['whole_ratio_wall']:.0%} per wall second)"
                if "whole_cpu" in result
                else ""
            )
            + f"; verification"
            f" {result['verify_ratio_cpu']:.0%} of raw Ed25519 verify"
            f" ({result['verify_ratio_wall']:.0%}): verification"
            f" {'met' if result['verify_ratio_cpu'] >= 0.5 else 'not met'}; issuance"
            f" {_verdict(result, 'issue')}"
            + (f", in one call {_verdict(result, 'whole')}" if "whole_cpu" in result else "")
            + "."
            for url, result in results
        ),
        "",
        "What issuance does per license besides the signature, in one Python thread: the"
        " identifier (ISO 7064 check from memoized states), the credential's RFC 8785 bytes"
        " from a per-type template (only the record's own subject values are encoded, by"
        f" msgspec), SHA-256, signatures {SIGN_BATCH:,} at a time (libsodium: the same"
        " signatures as `cryptography`'s, faster), base58btc proof values by one"
        " matrix product per batch, AES-GCM and base64url (pybase64) of the signed text a"
        " batch at a time (`FieldCipher.encrypt_batch`), the license and holder rows, and the"
        " planning"
        " around them (current versions by one JSON parameter, serials, status-list indexes"
        " from a sequence in one statement). At 50 % of the raw `cryptography` rate,"
        " everything besides libsodium's signature (the rest of the signing stage, planning,"
        " rows, the database's work in this process) must fit in the time of two `cryptography`"
        " signatures less one libsodium signature (see the µs per license above).",
        "",
        "On PostgreSQL the rows go out by COPY from a second thread while the next batch is "
        "signed, so the server's inserts, indexes and WAL run on the other core (its CPU is "
        "shown above, outside the per-CPU measure). Licenses go in COPY's binary format: the "
        "server takes each token by its length instead of scanning it for delimiters and "
        "escapes, which cut its CPU per license by about a fifth. Per wall second that overlap "
        "works when one call carries a whole changeset, as the pipeline's calls do; with 2,000 "
        "per call each call ends waiting for the server to store its last batch and commit. On "
        "SQLite the B-tree inserts (five indexes per license, two per holder) and the WAL writes "
        "are CPU of the issuing process itself, which is why SQLite stays furthest below 50 % "
        "per CPU second; they run in a second thread, beside the signing (sqlite3 lets the GIL "
        "go while SQLite runs a statement of 64 rows, and libsodium (through cffi) while it "
        "signs), which brings the wall time closer to the CPU time of the issuing thread alone. "
        "The checkpoints that copy the WAL into the database file run in the hub's checkpoint "
        "thread after the commit (onehub.checkpoint), as PostgreSQL's checkpointer writes "
        "pages after the run. New hub databases use 16 KiB pages "
        "(onehub.settings.SQLITE_PAGE_SIZE): on 4 KiB pages every license row took a page of "
        "its own, and SQLite's share was about a quarter more. bench/sqlite_storage.py splits "
        "that share by schema variant (bench/results/sqlite_storage.md): the holder rows take "
        "about a third, and a bare licenses table with its tokens still about half a signature.",
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {out}")


def main() -> None:
    """Parse arguments, run each backend, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--licenses", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument(
        "--db-url",
        action="append",
        help="'sqlite' (a file in a temp folder, the default) or a PostgreSQL URL whose license"
        " tables are DROPPED and re-created; may be given more than once",
    )
    parser.add_argument(
        "--no-checkpoint",
        dest="checkpoint",
        action="store_false",
        help="PostgreSQL: do not CHECKPOINT before each timed run (see _settle)",
    )
    parser.add_argument(
        "--cold",
        dest="warm",
        action="store_false",
        help="issue into an empty store, not one that already holds as many other licenses"
        " (see _prefill)",
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help=f"where the results go (default: {RESULTS})"
    )
    args = parser.parse_args()
    results = []
    for url in args.db_url or ["sqlite"]:
        db_url = None if url == "sqlite" else url
        if db_url and (sa.make_url(db_url).database or "").startswith("onehub_load"):
            raise SystemExit("refusing to drop the tables of a load-test database")
        print(f"backend: {'sqlite' if db_url is None else 'postgresql'}", flush=True)
        before = os.getloadavg()[0]
        result = run(
            args.licenses, args.repeats, args.batch, db_url, settle=args.checkpoint, warm=args.warm
        )
        results.append((db_url, result | {"load_before": before, "load_after": os.getloadavg()[0]}))
    write(results, args, args.out)


if __name__ == "__main__":
    main()
