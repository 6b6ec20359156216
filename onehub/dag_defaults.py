"""What OneHub's DAG files share: defaults, per-source DAG arguments, asset names, the alert hook.

Plain data and small functions: this module does not import Airflow at import time, so the DAG
files stay quick to parse and nothing here touches a database or the network while they do.
Airflow does not put the DAG folder on ``sys.path`` for an in-process DagBag, which is why this
lives in ``onehub`` rather than beside the DAG files.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from catalog_schemas.errors import FatalError
from catalog_schemas.model import Source

logger = logging.getLogger(__name__)

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
# The department systems keep naive China Standard Time (sample_systems does too).
DEPARTMENT_TZ = ZoneInfo("Asia/Shanghai")
OWNER = "onehub"
MAINTENANCE_SCHEDULE = "@daily"
WINDOW_PARAM = "window_start"


class OrchestrationSettings(BaseSettings):
    """Settings of the DAGs and the maintenance run; every field can be set as ``ONEHUB_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="ONEHUB_", extra="ignore")

    task_retry_delay_seconds: float | None = Field(
        default=None, description="overrides every retry delay (tests and dag.test runs)"
    )
    alert_webhook_url: str | None = Field(
        default=None, description="a chat webhook (Slack-style JSON {'text': ...}) for failures"
    )
    alert_email: str | None = Field(
        default=None, description="comma-separated addresses mailed on task failure (Airflow SMTP)"
    )
    lake_retention_hours: int = Field(
        default=168, ge=0, description="lake versions kept for time travel before vacuum"
    )
    key_rotation_days: float = Field(
        default=365, gt=0, description="age at which the signing key is due for rotation"
    )


def default_args(
    *,
    retries: int = 2,
    retry_delay: dt.timedelta = dt.timedelta(minutes=5),
    execution_timeout: dt.timedelta = dt.timedelta(hours=1),
) -> dict[str, Any]:
    """Task defaults: owner, retries, retry delay, a timeout per attempt, and failure alerts.

    ``ONEHUB_TASK_RETRY_DELAY_SECONDS`` overrides the delay: `onehub pipelines run` and the tests
    set it low, so a failing task under dag.test() does not sit out minutes between retries.
    """
    settings = OrchestrationSettings()
    if settings.task_retry_delay_seconds is not None:
        retry_delay = dt.timedelta(seconds=settings.task_retry_delay_seconds)
    args: dict[str, Any] = {
        "owner": OWNER,
        "retries": retries,
        "retry_delay": retry_delay,
        "execution_timeout": execution_timeout,
        "on_failure_callback": alert_on_failure,
    }
    if settings.alert_email:
        args["email"] = [a.strip() for a in settings.alert_email.split(",") if a.strip()]
        args["email_on_failure"] = True
        args["email_on_retry"] = False
    return args


def ingest_dag_args(source: Source, batch: int) -> dict[str, Any]:
    """Arguments of a source's ingest DAG, from its YAML: schedule, retries, timeouts, tags."""
    retry_delay = dt.timedelta(minutes=source.retry_delay_minutes)
    attempt = dt.timedelta(minutes=source.timeout_minutes)
    args = default_args(retries=source.retries, retry_delay=retry_delay, execution_timeout=attempt)
    start = (
        dt.datetime.combine(source.start_date, dt.time(), tzinfo=dt.UTC)
        if source.start_date
        else START
    )
    tags = ["onehub", "ingest", f"department:{source.department}", f"batch:{batch}"]
    tags += [t for t in source.tags if t not in tags]
    return {
        "dag_id": source.dag_id,
        "schedule": source.schedule,
        "start_date": start,
        "catchup": source.backfill,
        "max_active_runs": 1,
        # Every attempt with its retry delays, and a margin for publish and supervise.
        "dagrun_timeout": attempt * (source.retries + 1)
        + args["retry_delay"] * source.retries
        + dt.timedelta(minutes=10),
        "default_args": args,
        "tags": tags,
        "doc_md": f"### {source.name}\n\n{source.description}\n\n"
        f"Department `{source.department}` (batch {batch}), license type "
        f"`{source.license_type}`, freshness SLA {source.freshness_sla_hours:g} h. Trigger with "
        f"`{WINDOW_PARAM}` (ISO date-time, department time) to re-read from that point.",
    }


def lake_asset_ref(license_type: str) -> tuple[str, str]:
    """(name, uri) of the Airflow Asset for one license type's lake table."""
    return f"onehub_lake__{license_type}", f"onehub://lake/{license_type}"


@contextmanager
def fatal_fails_task() -> Iterator[None]:
    """Turn a FatalError into Airflow's no-retry failure: retries are for RetriableError."""
    try:
        yield
    except FatalError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"[{exc.code}] {exc.message}") from exc


def alert_message(context: Mapping[str, Any]) -> str:
    """One line naming the failed task and why, with anything shaped like an ID number masked."""
    from onehub.redaction import redact

    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or context.get("dag_id", "?")
    task_id = getattr(ti, "task_id", None) or context.get("task_id", "?")
    run_id = getattr(ti, "run_id", None) or context.get("run_id", "?")
    error = context.get("exception")
    text = f"OneHub: {dag_id}.{task_id} failed (run {run_id})"
    if error is not None:
        text += f": {error}"
    return redact(text)


def alert_on_failure(context: Mapping[str, Any]) -> None:
    """Airflow failure callback: log the failure and post it to ONEHUB_ALERT_WEBHOOK_URL if set.

    Mail goes through Airflow's own SMTP settings (``ONEHUB_ALERT_EMAIL`` sets the tasks'
    ``email``). A webhook that cannot be reached is logged; it must not mask the task's failure.
    """
    message = alert_message(context)
    logger.error("%s", message, extra={"alert": True})
    url = OrchestrationSettings().alert_webhook_url
    if not url:
        return
    import httpx

    try:
        httpx.post(url, json={"text": message}, timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        logger.error("alert webhook %s failed: %s", url.split("?", 1)[0], exc)


def department_time(value: dt.datetime) -> dt.datetime:
    """A naive department-clock time for ``value`` (aware values are converted, naive kept)."""
    if value.tzinfo is None:
        return value
    return value.astimezone(DEPARTMENT_TZ).replace(tzinfo=None)
