"""License upkeep the maintenance DAG runs: the expiry sweep and status-list publication.

Each function takes the Hub and works in its own transaction; the DAG task is one call.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from exchange.hub import Hub
from license_store import status_list
from license_store.key import KeyRing
from license_store.status import expire_due

logger = logging.getLogger(__name__)


@dataclass
class PublishReport:
    """The lists one publication wrote: ``{"revocation/0": set bits, ...}``."""

    published_at: str
    lists: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (for XCom)."""
        return asdict(self)


@dataclass
class SweepReport:
    """What one expiry sweep did."""

    expired: int
    published: PublishReport

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (for XCom): counts only, no license ids."""
        return {"expired": self.expired, "status_lists": self.published.lists}


def publish_status_lists(hub: Hub, *, now: dt.datetime | None = None) -> PublishReport:
    """Sign and store the current revocation and suspension lists (served by the API)."""
    now = now or hub.now()
    ring = KeyRing(issuer_did=hub.issuer_did)
    with hub.sessions.begin() as session:
        signer = ring.signer(session=session, kek=hub.kek, now=now)
        published = status_list.publish(
            session=session, signer=signer, issuer_did=hub.issuer_did, now=now
        )
    report = PublishReport(
        published_at=now.isoformat(),
        lists={f"{p.purpose}/{p.list_id}": p.set_bits for p in published},
    )
    logger.info("published status lists %s", report.lists)
    return report


def sweep_expired(hub: Hub, *, now: dt.datetime | None = None) -> SweepReport:
    """Mark valid and suspended licenses past their last valid day expired; republish lists.

    A suspended license that expires leaves the suspension list, so the lists are republished
    after every sweep (in a second transaction: the sweep stands even if signing fails).
    """
    now = now or hub.now()
    with hub.sessions.begin() as session:
        expired = expire_due(session=session, now=now)
    logger.info("expiry sweep: %d licenses expired", len(expired))
    return SweepReport(expired=len(expired), published=publish_status_lists(hub, now=now))
