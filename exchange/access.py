"""What every call on a holder's data shares: who calls and why, the checks before any data is
read, and the errors those checks raise."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from catalog_schemas.errors import OneHubError, PermissionDeniedError, ValidationFailedError
from catalog_schemas.holder import HolderKind, holder_key, validate_holder_id
from catalog_schemas.model import ServiceItem
from exchange.audit import Entry
from exchange.consumer import may_restrict, require_scope
from exchange.hub import Hub
from exchange.model import Consumer

# License validity dates and embargo dates are calendar days in China (UTC+8).
CHINA: Final = dt.timezone(dt.timedelta(hours=8))
MAX_EMBARGO_DAYS: Final = 3660

# Appends one audit row and returns only once it is durable (AuditWriter.append, or a
# synchronous append in a test).
AuditSink = Callable[[Entry], Any]


class RateLimitedError(OneHubError):
    """The consumer made more calls than its rate limit allows; retry after ``retry_after``."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConsentRequiredError(PermissionDeniedError):
    """The license is conditional-share and no active consent covers this consumer and purpose."""

    code = "consent_required"


def china_today(now: dt.datetime) -> dt.date:
    """The calendar day in China at ``now``."""
    return now.astimezone(CHINA).date()


@dataclass(frozen=True)
class Call:
    """Who makes a call on a holder's data and why: what its audit row records."""

    consumer: Consumer
    purpose: str
    service_item: str | None = None
    request_id: str | None = None
    restricted_until: dt.date | None = None

    def entry(
        self,
        *,
        at: dt.datetime,
        action: str,
        holder_key: str | None,
        result: str,
        licenses: tuple[str, ...] = (),
        detail: dict[str, Any] | None = None,
    ) -> Entry:
        """The audit entry of this call."""
        return Entry(
            at=at,
            consumer=self.consumer.name,
            action=action,
            purpose=self.purpose,
            service_item=self.service_item,
            holder_key=holder_key,
            licenses=licenses,
            result=result,
            request_id=self.request_id,
            restricted_until=self.restricted_until,
            detail=detail or {},
        )


def check_call(
    call: Call, *, hub: Hub, operation: str, item_required: bool = False
) -> ServiceItem | None:
    """Scope, embargo right and service item of a call; its service item, if it names one."""
    require_scope(call.consumer, operation)
    if call.restricted_until is not None:
        if not may_restrict(call.consumer):
            raise PermissionDeniedError(
                "this consumer may not restrict its accesses (it lacks audit:restrict)",
                code="restriction_not_allowed",
            )
        today = china_today(hub.now())
        if not today < call.restricted_until <= today + dt.timedelta(days=MAX_EMBARGO_DAYS):
            raise ValidationFailedError(
                f"restricted_until must be after today and within {MAX_EMBARGO_DAYS} days",
                code="restricted_until_invalid",
            )
    if call.service_item is None:
        if item_required:
            raise ValidationFailedError(
                f"a {call.consumer.kind} must name the service item it is working on",
                code="service_item_required",
            )
        return None
    return hub.catalog.service_item(call.service_item)  # unknown: CatalogError, 404 at the API


def resolve_holder(hub: Hub, kind: HolderKind, id_number: str) -> tuple[str, str]:
    """The canonical ID number and holder_key; InvalidIdentifierError names the failed check."""
    canonical = validate_holder_id(kind, id_number, today=china_today(hub.now()))
    return canonical, holder_key(hub.hub_key, kind, canonical)


def holder_kind_for(item: ServiceItem | None, requested: HolderKind | None) -> HolderKind:
    """The holder kind of a call: as requested, else the service item's applicant kind."""
    if item is not None and requested is not None and requested != item.applicant_kind:
        raise ValidationFailedError(
            f"service item {item.code!r} is for a {item.applicant_kind}",
            code="holder_kind_mismatch",
        )
    if requested is not None:
        return requested
    return item.applicant_kind if item is not None else "natural_person"
