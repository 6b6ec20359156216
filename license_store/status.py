"""License status changes: revoke, suspend, reinstate, expire; each one recorded, none lost.

Every change is a compare-and-swap on ``(status, status_seq)``: it names the status and the
counter it read, bumps the counter, and appends a ``license_status_history`` row keyed by
``(license_id, seq)``. Of two changes made from the same reading only one can match the row, and
the history key refuses a second row for the same step, so the history is one chain.

Allowed changes (the national codes: 有效 valid, 暂扣 suspended, 撤销 revoked, 注销 cancelled,
失效 expired):

| action | from | to |
| --- | --- | --- |
| revoke | valid, suspended | revoked |
| suspend | valid | suspended |
| reinstate | suspended | valid |
| cancel (pipeline: deleted at the source) | valid, suspended | cancelled |
| expire (maintenance: past validUntil) | valid, suspended | expired |
| supersede (pipeline: a new version) | valid | superseded |
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog_schemas.errors import ValidationFailedError
from license_store.credential import CHINA_TIME
from license_store.error import (
    ConcurrentStatusChangeError,
    LicenseNotFoundError,
    StatusTransitionError,
)
from license_store.model import (
    EXPIRED,
    REVOKED,
    SUSPENDED,
    VALID,
    License,
    LicenseStatusChange,
)

logger = logging.getLogger(__name__)

REVOKE: Final = "revoke"
SUSPEND: Final = "suspend"
REINSTATE: Final = "reinstate"
ACTIONS: Final = {
    REVOKE: (frozenset({VALID, SUSPENDED}), REVOKED),
    SUSPEND: (frozenset({VALID}), SUSPENDED),
    REINSTATE: (frozenset({SUSPENDED}), VALID),
}
EXPIRABLE: Final = frozenset({VALID, SUSPENDED})
MAX_REASON_CHARS: Final = 1000
MAX_ACTOR_CHARS: Final = 128
PIPELINE: Final = "pipeline"
MAINTENANCE: Final = "maintenance"
# Bound IN lists: SQLite allows 32766 parameters, and smaller chunks keep plans simple.
_CHUNK: Final = 500


@dataclass(frozen=True)
class StatusChange:
    """One recorded status change."""

    license_id: str
    seq: int
    from_status: str | None
    to_status: str
    reason: str
    actor: str
    changed_at: dt.datetime


@dataclass(frozen=True)
class Seen:
    """A license's status as read, to compare-and-swap against."""

    license_id: str
    status: str
    seq: int


def change_status(
    *,
    session: Session,
    license_id: str,
    action: str,
    reason: str,
    actor: str,
    now: dt.datetime,
) -> StatusChange:
    """Apply ``revoke``, ``suspend`` or ``reinstate`` in the caller's transaction.

    Raises StatusTransitionError if the action does not apply to the current status and
    ConcurrentStatusChangeError if another change landed between our read and our write.
    """
    if action not in ACTIONS:
        raise ValidationFailedError(f"action must be one of {sorted(ACTIONS)}")
    allowed, target = ACTIONS[action]
    reason, actor = _checked(reason, actor, now)
    row = session.execute(
        select(License.status, License.status_seq).where(License.license_id == license_id)
    ).first()
    if row is None:
        raise LicenseNotFoundError("no license has this identifier")
    if row.status not in allowed:
        raise StatusTransitionError(
            f"cannot {action} a license that is {row.status} "
            f"(allowed from: {', '.join(sorted(allowed))})"
        )
    (change,) = transition(
        session=session,
        seen=[Seen(license_id, row.status, row.status_seq)],
        to=target,
        reasons={license_id: reason},
        actor=actor,
        now=now,
    )
    logger.info("license status %s -> %s by %s", row.status, target, actor)
    return change


def revoke(
    *, session: Session, license_id: str, reason: str, actor: str, now: dt.datetime
) -> StatusChange:
    """Revoke (撤销) a valid or suspended license; it can never be valid again."""
    return change_status(
        session=session, license_id=license_id, action=REVOKE, reason=reason, actor=actor, now=now
    )


def suspend(
    *, session: Session, license_id: str, reason: str, actor: str, now: dt.datetime
) -> StatusChange:
    """Suspend (暂扣) a valid license until it is reinstated."""
    return change_status(
        session=session, license_id=license_id, action=SUSPEND, reason=reason, actor=actor, now=now
    )


def reinstate(
    *, session: Session, license_id: str, reason: str, actor: str, now: dt.datetime
) -> StatusChange:
    """Make a suspended license valid again."""
    return change_status(
        session=session,
        license_id=license_id,
        action=REINSTATE,
        reason=reason,
        actor=actor,
        now=now,
    )


def expire_due(*, session: Session, now: dt.datetime, actor: str = MAINTENANCE) -> tuple[str, ...]:
    """Mark every valid or suspended license whose last valid day (China time) has passed."""
    today = now.astimezone(CHINA_TIME).date()
    rows = session.execute(
        select(License.license_id, License.status, License.status_seq, License.valid_until)
        .where(License.status.in_(EXPIRABLE), License.valid_until < today)
        .order_by(License.license_id)
    ).all()
    changes = transition(
        session=session,
        seen=[Seen(r.license_id, r.status, r.status_seq) for r in rows],
        to=EXPIRED,
        reasons={r.license_id: f"validity ended on {r.valid_until.isoformat()}" for r in rows},
        actor=actor,
        now=now,
    )
    logger.info("expired %d licenses", len(changes))
    return tuple(change.license_id for change in changes)


def history(*, session: Session, license_id: str) -> list[LicenseStatusChange]:
    """Return the status changes of one license version, oldest first."""
    return list(
        session.scalars(
            select(LicenseStatusChange)
            .where(LicenseStatusChange.license_id == license_id)
            .order_by(LicenseStatusChange.seq)
        )
    )


def transition(
    *,
    session: Session,
    seen: Sequence[Seen],
    to: str,
    reasons: Mapping[str, str],
    actor: str,
    now: dt.datetime,
) -> list[StatusChange]:
    """Move each license from the status and counter it was seen with to ``to``, with history.

    Raises ConcurrentStatusChangeError if any of them changed since it was read; the caller's
    transaction must then be rolled back.
    """
    if not seen:
        return []
    groups: dict[tuple[str, int], list[str]] = defaultdict(list)
    for item in seen:
        groups[(item.status, item.seq)].append(item.license_id)
    for (status, seq), ids in groups.items():
        for chunk in _chunks(ids):
            # Compare-and-swap on status and counter together: an A → B → A in between still
            # bumped the counter, so this write matches nothing and we stop.
            result = session.execute(
                update(License)
                .where(
                    License.license_id.in_(chunk),
                    License.status == status,
                    License.status_seq == seq,
                )
                .values(status=to, status_seq=seq + 1, status_changed_at=now)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != len(chunk):  # type: ignore[attr-defined]
                raise ConcurrentStatusChangeError(
                    "a license changed status while this change was being made; "
                    "re-read it and try again"
                )
    changes = [
        StatusChange(
            item.license_id, item.seq + 1, item.status, to, reasons[item.license_id], actor, now
        )
        for item in seen
    ]
    record_changes(session=session, changes=changes)
    _expire_cached(session, [item.license_id for item in seen])
    return changes


def record_changes(*, session: Session, changes: Iterable[StatusChange]) -> None:
    """Append history rows (the caller has already moved the licenses)."""
    rows = [
        {
            "license_id": c.license_id,
            "seq": c.seq,
            "from_status": c.from_status,
            "to_status": c.to_status,
            "reason": c.reason,
            "actor": c.actor,
            "changed_at": c.changed_at,
        }
        for c in changes
    ]
    if not rows:
        return
    try:
        # A savepoint keeps the caller's session usable for the rollback it must now do.
        with session.begin_nested():
            session.execute(insert(LicenseStatusChange.__table__), rows)  # type: ignore[arg-type]
    except IntegrityError:
        raise ConcurrentStatusChangeError(
            "another change of the same license was recorded first; re-read it and try again"
        ) from None


def _checked(reason: str, actor: str, now: dt.datetime) -> tuple[str, str]:
    if now.utcoffset() is None:
        raise ValidationFailedError("now must be an aware datetime")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_CHARS:
        raise ValidationFailedError(
            f"a status change needs a reason of 1-{MAX_REASON_CHARS} characters"
        )
    if not isinstance(actor, str) or not actor.strip() or len(actor) > MAX_ACTOR_CHARS:
        raise ValidationFailedError(f"a status change needs who made it (1-{MAX_ACTOR_CHARS})")
    return reason.strip(), actor.strip()


def _expire_cached(session: Session, license_ids: list[str]) -> None:
    # The bulk UPDATE bypassed the identity map: drop stale copies so later reads see the change.
    for license_id in license_ids:
        cached = session.identity_map.get(session.identity_key(License, license_id))
        if cached is not None:
            session.expire(cached)


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
