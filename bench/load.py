"""Load test of the exchange API: several client processes on localhost against `onehub serve`.

Measures, in one run against one server: a bare endpoint (GET /livez: no database, no audit),
one-number lookups (POST /v1/lookups by a dps counter for talent household registration) and
material checks (POST /v1/material-checks by a dhurd counter for housing provident withdrawal),
each for a fixed time with the same number of client connections. Holders are drawn at random
among the people bench/load_seed.py gave licenses to. Every lookup and material check is
audited (hash chain, durable before the answer) like any other; the chain is verified after.

    .venv/bin/python bench/load.py \
        --db-url 'postgresql+psycopg://postgres@/onehub_load_1m?host=/var/run/postgresql' \
        --licenses 1000000 --duration 20 --clients 3 --connections 6 --workers 2

The server reaches PostgreSQL through its Unix socket, as a server on the database's host
would: over loopback TCP each query costs the server about twice the kernel time (measured
here; bench/results/load.md). Pass a 127.0.0.1 URL to measure that instead.

The clients speak HTTP/1.1 keep-alive over raw sockets (closed loop: each connection sends its
next request when the answer arrives), so a client costs a few microseconds per request and the
machine's two cores go to the server and PostgreSQL. Results go to bench/results/load.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import load_seed  # noqa: E402

from exchange.audit import verify_chain  # noqa: E402
from exchange.consumer import register  # noqa: E402
from exchange.model import AuditEntry  # noqa: E402
from license_store.model import License  # noqa: E402
from onehub.settings import make_engine  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "load.md"


@dataclass
class Scenario:
    name: str
    requests: list[bytes]


def _request(method: str, path: str, key: str | None, body: dict[str, Any] | None) -> bytes:
    payload = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: keep-alive"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def scenarios(licenses: int, keys: dict[str, str], count: int, seed: int) -> list[Scenario]:
    """The three request mixes, ``count`` distinct requests each."""
    rng = random.Random(seed)
    degree_holders = load_seed.people_with("degree_certificate", licenses)
    title_holders = load_seed.people_with("real_estate_title", licenses)
    people = load_seed.person_ids(np.array(rng.choices(degree_holders.tolist(), k=count)))
    owners = load_seed.person_ids(np.array(rng.choices(title_holders.tolist(), k=count)))
    return [
        Scenario("bare GET /livez", [_request("GET", "/livez", None, None)]),
        Scenario(
            "lookup",
            [
                _request(
                    "POST",
                    "/v1/lookups",
                    keys["lookup"],
                    {
                        "id_number": str(p),
                        "purpose": "办理人才引进落户",
                        "service_item": "talent_household_registration",
                    },
                )
                for p in people
            ],
        ),
        Scenario(
            "material check",
            [
                _request(
                    "POST",
                    "/v1/material-checks",
                    keys["materials"],
                    {
                        "id_number": str(p),
                        "purpose": "购房提取住房公积金",
                        "service_item": "housing_provident_withdrawal",
                    },
                )
                for p in owners
            ],
        ),
    ]


def _exchange(sock: socket.socket, request: bytes, buffer: bytearray) -> int:
    """Send one request and read its whole response; its status."""
    sock.sendall(request)
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            break
        chunk = sock.recv(262144)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buffer += chunk
    head = bytes(buffer[:end]).lower()
    status = int(head[9:12])
    at = head.find(b"content-length:")
    length = int(head[at + 15 : head.find(b"\r\n", at)].strip()) if at >= 0 else 0
    total = end + 4 + length
    while len(buffer) < total:
        chunk = sock.recv(262144)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buffer += chunk
    del buffer[:total]
    return status


def _client(
    port: int, requests: list[bytes], connections: int, start_at: float, stop_at: float, out: Any
) -> None:
    """One client process: ``connections`` keep-alive connections in threads."""
    latencies: list[int] = []
    statuses: dict[int, int] = {}
    errors = [0]
    lock = threading.Lock()

    def connection(offset: int) -> None:
        mine: list[int] = []
        seen: dict[int, int] = {}
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = bytearray()
        i = offset
        while time.time() < start_at:
            time.sleep(0.001)
        while time.time() < stop_at:
            request = requests[i % len(requests)]
            i += 7
            t0 = time.perf_counter_ns()
            try:
                status = _exchange(sock, request, buffer)
            except OSError:
                with lock:
                    errors[0] += 1
                sock.close()
                sock = socket.create_connection(("127.0.0.1", port))
                buffer.clear()
                continue
            mine.append(time.perf_counter_ns() - t0)
            seen[status] = seen.get(status, 0) + 1
        sock.close()
        with lock:
            latencies.extend(mine)
            for k, v in seen.items():
                statuses[k] = statuses.get(k, 0) + v

    threads = [threading.Thread(target=connection, args=(n * 977,)) for n in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((latencies, statuses, errors[0]))


@dataclass
class Measured:
    name: str
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]
    errors: int
    server_cpu_us: float = float("nan")
    postgres_cpu_us: float = float("nan")
    client_cpu_us: float = float("nan")
    rows_per_commit: float = float("nan")


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _group(pgid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def _audit_counters(port: int) -> tuple[float, float]:
    """The server's audit rows and commits so far (its /metrics, every worker's together)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    found = {"onehub_audit_rows_total": 0.0, "onehub_audit_commits_total": 0.0}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in found:
            found[name] += float(value)
    return found["onehub_audit_rows_total"], found["onehub_audit_commits_total"]


def _postgres() -> list[int]:
    out = subprocess.run(["pgrep", "-u", "postgres"], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def measure(
    port: int,
    scenario: Scenario,
    *,
    clients: int,
    connections: int,
    seconds: float,
    server_pgid: int | None = None,
) -> Measured:
    """Run ``clients`` processes x ``connections`` for ``seconds``; throughput, latency, and
    the CPU time the server, PostgreSQL and the clients spent per request."""
    ctx = mp.get_context("fork")
    server_pids = _group(server_pgid) if server_pgid else []
    audit_before = _audit_counters(port)
    cpu_before = (_cpu_seconds(server_pids), _cpu_seconds(_postgres()), os.times())
    out = ctx.Queue()
    start_at = time.time() + 1.0
    stop_at = start_at + seconds
    procs = [
        ctx.Process(
            target=_client,
            args=(
                port,
                scenario.requests[c::clients] or scenario.requests,
                connections,
                start_at,
                stop_at,
                out,
            ),
        )
        for c in range(clients)
    ]
    for p in procs:
        p.start()
    latencies: list[int] = []
    statuses: dict[int, int] = {}
    errors = 0
    for _ in procs:
        lat, st, err = out.get(timeout=seconds + 120)
        latencies.extend(lat)
        for k, v in st.items():
            statuses[k] = statuses.get(k, 0) + v
        errors += err
    for p in procs:
        p.join()
    cpu_after = (_cpu_seconds(server_pids), _cpu_seconds(_postgres()), os.times())
    audit_after = _audit_counters(port)
    commits = audit_after[1] - audit_before[1]
    n = max(len(latencies), 1)
    client_cpu = (cpu_after[2].children_user + cpu_after[2].children_system) - (
        cpu_before[2].children_user + cpu_before[2].children_system
    )
    array = np.array(latencies, dtype=np.int64) / 1e6
    return Measured(
        server_cpu_us=1e6 * (cpu_after[0] - cpu_before[0]) / n if server_pids else float("nan"),
        postgres_cpu_us=1e6 * (cpu_after[1] - cpu_before[1]) / n,
        client_cpu_us=1e6 * client_cpu / n,
        rows_per_commit=(audit_after[0] - audit_before[0]) / commits if commits else float("nan"),
        name=scenario.name,
        seconds=seconds,
        requests=len(latencies),
        rps=len(latencies) / seconds,
        p50_ms=float(np.percentile(array, 50)) if array.size else float("nan"),
        p99_ms=float(np.percentile(array, 99)) if array.size else float("nan"),
        statuses=statuses,
        errors=errors,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(db_url: str, port: int, workers: int, data_dir: Path) -> subprocess.Popen[bytes]:
    """`onehub serve` in its own process group; returns once /livez answers."""
    env = {
        **os.environ,
        **load_seed.secrets_env(),
        "ONEHUB_DB_URL": db_url,
        "ONEHUB_DATA_DIR": str(data_dir),
        "ONEHUB_API_RATE_LIMIT": "1000000/second",
    }
    log = (data_dir / "server.log").open("ab")
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/onehub"), "serve", "--workers", str(workers), "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if _exchange(sock, _request("GET", "/livez", None, None), bytearray()) == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    stop_server(proc)
    raise SystemExit(f"the server did not come up; see {data_dir / 'server.log'}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL after 20 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def consumers(db_url: str) -> dict[str, str]:
    """Fresh bench consumers (a dps counter for lookups, a dhurd counter for material checks)."""
    hub = load_seed._hub(db_url)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S%f")
    keys = {}
    with hub.sessions.begin() as session:
        for role, department in (("lookup", "dps"), ("materials", "dhurd")):
            _c, keys[role] = register(
                session=session,
                catalog=hub.catalog,
                name=f"bench-{role}-{stamp}",
                kind="counter",
                department=department,
                now=dt.datetime.now(dt.UTC),
                rate_limit="1000000/second",
            )
    hub.engine.dispose()
    return keys


def store_facts(db_url: str) -> dict[str, Any]:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        licenses = conn.execute(sa.select(sa.func.count()).select_from(License)).scalar_one()
        audit_rows = conn.execute(sa.select(sa.func.count()).select_from(AuditEntry)).scalar_one()
        size = (
            conn.execute(
                sa.text("SELECT pg_size_pretty(pg_database_size(current_database()))")
            ).scalar_one()
            if engine.dialect.name == "postgresql"
            else "n/a"
        )
    engine.dispose()
    return {"licenses": licenses, "audit_rows": audit_rows, "db_size": size}


def verify_audit(db_url: str) -> str:
    engine = make_engine(db_url)
    from sqlalchemy.orm import Session

    started = time.perf_counter()
    with Session(engine) as session:
        broken = verify_chain(session=session)
    engine.dispose()
    took = time.perf_counter() - started
    return f"intact (walked in {took:.1f} s)" if broken is None else f"BROKEN: {broken}"


def _transport(db_url: str) -> str:
    return "Unix socket" if "host=/" in db_url else "TCP"


def report(
    args: argparse.Namespace, facts: dict[str, Any], results: list[Measured], audit: str
) -> str:
    bare = results[0].rps
    lines = [
        f"### {facts['licenses']:,} licenses — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Store: PostgreSQL ({_transport(args.db_url)}), {facts['licenses']:,} licenses, "
        f"database {facts['db_size']}; "
        f"server `onehub serve --workers {args.workers}`; {args.clients} client processes x "
        f"{args.connections} keep-alive connections, {args.duration:g} s per call, same run. "
        f"Machine: {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}.",
        "",
        f"Load average of the (shared) machine: {args.load_before} before, "
        f"{os.getloadavg()[0]:.1f} after.",
        "",
        "| call | requests | req/s | p50 ms | p99 ms | % of bare | CPU µs/req server | "
        "CPU µs/req PostgreSQL | CPU µs/req clients | audit rows/commit | statuses | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for m in results:
        lines.append(
            f"| {m.name} | {m.requests:,} | {m.rps:,.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | "
            f"{100 * m.rps / bare:.0f} % | {m.server_cpu_us:,.0f} | {m.postgres_cpu_us:,.0f} | "
            f"{m.client_cpu_us:,.0f} | {m.rows_per_commit:.1f} | "
            f"{dict(sorted(m.statuses.items()))} | {m.errors} |"
        )
    lines += [
        "",
        f"Audit rows after the run: {facts['audit_rows']:,}; `verify_chain`: {audit}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Load test of the exchange API")
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--licenses", type=int, required=True, help="as seeded (load_seed.py)")
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--connections", type=int, default=6, help="per client process")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=20000, help="distinct requests per call")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--seed", type=int, default=2016)
    args = parser.parse_args()

    facts = store_facts(args.db_url)
    if facts["licenses"] < args.licenses:
        raise SystemExit(f"the store holds {facts['licenses']} licenses; seed it first")
    keys = consumers(args.db_url)
    mixes = scenarios(args.licenses, keys, args.requests, args.seed)
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="onehub-load-") as tmp:
        server = start_server(args.db_url, port, args.workers, Path(tmp))
        try:
            for mix in mixes:  # warm caches and connection pools
                measure(port, mix, clients=args.clients, connections=args.connections, seconds=3)
            args.load_before = f"{os.getloadavg()[0]:.1f}"
            results = [
                measure(
                    port,
                    mix,
                    clients=args.clients,
                    connections=args.connections,
                    seconds=args.duration,
                    server_pgid=server.pid,
                )
                for mix in mixes
            ]
        finally:
            stop_server(server)
    facts = store_facts(args.db_url)
    text = report(args, facts, results, verify_audit(args.db_url))
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a", encoding="utf-8") as fh:
        fh.write(text + "\n")


if __name__ == "__main__":
    main()
