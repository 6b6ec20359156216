"""Parse the DAG folder in this process and print what the policy tests check, as JSON.

Run as a script by tests/dags/test_dag_policy.py, in a fresh process whose environment points
every database and connection at a listener that counts connections. An audit hook records every
socket and SQLite connection Python opens while Airflow and the DAG files load; C drivers
(libpq) bypass it, which is what the counting listener is for.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

EVENTS: list[str] = []
WATCHED = ("socket.connect", "socket.getaddrinfo", "sqlite3.connect")


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event in WATCHED:
        EVENTS.append(f"{event} {args!r}"[:300])


def main(dag_folder: str) -> None:
    sys.addaudithook(_hook)
    started = time.monotonic()
    from airflow.dag_processing.dagbag import DagBag

    imported = time.monotonic()
    bag = DagBag(dag_folder=dag_folder)
    parsed = time.monotonic()
    dags: dict[str, Any] = {}
    for dag_id, dag in bag.dags.items():
        dags[dag_id] = {
            "tags": sorted(dag.tags),
            "owner": dag.owner,
            "catchup": dag.catchup,
            "schedule": dag.schedule
            if isinstance(dag.schedule, str | None)
            else repr(dag.schedule),
            "asset_schedule": type(dag.timetable).__name__,
            "doc_md": dag.doc_md or "",
            "max_active_runs": dag.max_active_runs,
            "dagrun_timeout": dag.dagrun_timeout.total_seconds() if dag.dagrun_timeout else None,
            "start_date": dag.start_date.isoformat() if dag.start_date else None,
            "params": sorted(dag.params.keys()),
            "tasks": {
                task.task_id: {
                    "owner": task.owner,
                    "retries": task.retries,
                    "retry_delay": task.retry_delay.total_seconds(),
                    "execution_timeout": task.execution_timeout.total_seconds()
                    if task.execution_timeout
                    else None,
                    "trigger_rule": str(getattr(task.trigger_rule, "value", task.trigger_rule)),
                    "on_failure_callback": [
                        f"{f.__module__}.{f.__qualname__}" for f in (task.on_failure_callback or [])
                    ],
                    "outlets": [getattr(o, "uri", str(o)) for o in task.outlets],
                    "upstream": sorted(task.upstream_task_ids),
                }
                for task in dag.tasks
            },
        }
    print(
        json.dumps(
            {
                "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
                "import_seconds": imported - started,
                "parse_seconds": parsed - imported,
                "events": EVENTS,
                "dags": dags,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
