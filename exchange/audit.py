"""The tamper-evident audit log: every access to a holder's data, hash-chained.

``row_hash = sha256(prev_hash || canonical JSON of the row)``; editing, deleting or reordering
a row breaks the chain at that row, which :func:`verify_chain` names.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

import rfc8785
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog_schemas.errors import RetriableError
from exchange.model import AuditEntry

GENESIS = "0" * 64


def _digest(prev_hash: str, entry: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + rfc8785.dumps(entry)).hexdigest()


def _payload(row: AuditEntry) -> dict[str, Any]:
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=dt.UTC)
    return {
        "seq": row.seq,
        "at": at.astimezone(dt.UTC).isoformat(),
        "consumer": row.consumer,
        "action": row.action,
        "purpose": row.purpose,
        "service_item": row.service_item,
        "holder_key": row.holder_key,
        "licenses": list(row.licenses),
        "result": row.result,
    }


def append(
    *,
    session: Session,
    at: dt.datetime,
    consumer: str,
    action: str,
    purpose: str,
    service_item: str | None,
    holder_key: str | None,
    licenses: Sequence[str],
    result: str,
) -> AuditEntry:
    """Append one row to the chain inside the caller's transaction (commit before responding)."""
    last = session.execute(
        sa.select(AuditEntry.seq, AuditEntry.row_hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    row = AuditEntry(
        seq=seq,
        at=at.astimezone(dt.UTC),
        consumer=consumer,
        action=action,
        purpose=purpose,
        service_item=service_item,
        holder_key=holder_key,
        licenses=list(licenses),
        result=result,
        prev_hash=prev,
        row_hash="",
    )
    row.row_hash = _digest(prev, _payload(row))
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # another writer took this seq first: the caller retries
        raise RetriableError("audit log busy, retry", code="audit_contention") from exc
    return row


def verify_chain(*, session: Session) -> int | None:
    """Walk the chain; the seq of the first broken row, or None when the chain is whole."""
    prev = GENESIS
    expected_seq = 1
    for row in session.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq)).yield_per(1000):
        if (
            row.seq != expected_seq
            or row.prev_hash != prev
            or row.row_hash != _digest(prev, _payload(row))
        ):
            return row.seq
        prev = row.row_hash
        expected_seq += 1
    return None
