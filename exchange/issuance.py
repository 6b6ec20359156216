"""Pipeline step: lake → license store. New and changed lake records become signed licenses.

Kept apart from exchange.pipeline so an issuance task does not import the quality gate
(great_expectations costs seconds to import).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from catalog_schemas.model import LicenseType
from exchange.hub import Hub
from exchange.lake import ID_TYPES, LakeTable
from license_store.issuance import Rejection, cancel, issue
from license_store.record import HolderRef, LicenseRecord
from license_store.signer import Signer
from license_store.store import get_cursor, set_cursor
from quality.quarantine import record_rejected

logger = logging.getLogger(__name__)


@dataclass
class IssuanceReport:
    """What one issuance run did, per license type."""

    issued: dict[str, int] = field(default_factory=dict)
    cancelled: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    #: Records issue() refused, quarantined with their reasons (``onehub quarantine list``).
    quarantined: dict[str, int] = field(default_factory=dict)
    lake_versions: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _lake_id(hub: Hub, row: dict[str, Any], name: str) -> str | None:
    """The ID number a lake row keeps encrypted under its holder key, or None if it has none."""
    key, enc = row.get(f"{name}__key"), row.get(f"{name}__enc")
    if key is None or enc is None:
        return None
    return hub.cipher.decrypt_text(enc, aad=key)


def _records_from_changes(
    hub: Hub, license_type: LicenseType, rows: list[dict[str, Any]]
) -> list[LicenseRecord]:
    issuer = hub.catalog.department(license_type.issuer)
    records = []
    for row in rows:
        holders = []
        for holder in license_type.holders:
            key = row[f"{holder.id_field}__key"]
            id_number = _lake_id(hub, row, holder.id_field)
            if id_number is None:
                continue
            kind = row[holder.kind_field] if holder.kind_field else holder.kinds[0]
            holders.append(
                HolderRef(
                    role=holder.role,
                    kind=kind,
                    holder_key=key,
                    id_number=id_number,
                    name=row.get(holder.name_field) if holder.name_field else None,
                )
            )
        fields: dict[str, Any] = {}
        for spec in license_type.fields:
            if spec.type in ID_TYPES:
                continue  # ID numbers travel in the holders list only
            value = row.get(spec.name)
            fields[spec.name] = value.isoformat() if isinstance(value, dt.date) else value
        valid_from = (
            row.get(license_type.valid_from_field) if license_type.valid_from_field else None
        )
        valid_until = (
            row.get(license_type.valid_until_field) if license_type.valid_until_field else None
        )
        records.append(
            LicenseRecord(
                record_key=row["record_key"],
                license_type=license_type.code,
                type_name_zh=license_type.name_zh,
                type_name_en=license_type.name_en,
                issuer_department=issuer.code,
                issuer_name_zh=issuer.name_zh,
                issuer_name_en=issuer.name_en,
                license_no=str(
                    row[license_type.license_no_field]
                    if license_type.license_no_field in row
                    else row["record_key"].rsplit(":", 1)[-1]
                ),
                holders=tuple(holders),
                fields=fields,
                valid_from=valid_from,
                valid_until=valid_until,
                source=row["_source"],
                batch_id=row["_batch_id"],
                as_of=row["_ingested_at"],
                row_hash=row["_row_hash"],
            )
        )
    return records


def issue_licenses(hub: Hub, signer: Signer) -> IssuanceReport:
    """Turn the lake's new and changed records into signed licenses; cancel deleted ones."""
    report = IssuanceReport()
    for license_type in hub.catalog.license_types.values():
        lake = LakeTable(hub.lake_uri, license_type)
        if not lake.exists():
            continue
        cursor_name = f"lake:{license_type.code}"
        with hub.sessions.begin() as session:
            after = get_cursor(session=session, name=cursor_name) or 0
            changes = lake.changes(after_version=after)
            if changes.num_rows == 0:
                continue
            latest: dict[str, dict[str, Any]] = {}
            for row in sorted(changes.to_pylist(), key=lambda r: r["_commit_version"]):
                if row["_change_type"] in ("insert", "update_postimage", "delete"):
                    latest[row["record_key"]] = row
            live = [
                r for r in latest.values() if r["_change_type"] != "delete" and not r["_deleted"]
            ]
            gone = [k for k, r in latest.items() if r["_change_type"] == "delete" or r["_deleted"]]
            department = hub.catalog.department(license_type.issuer)
            result = issue(
                session=session,
                records=_records_from_changes(hub, license_type, live),
                signer=signer,
                cipher=hub.cipher,
                issuer_did=hub.issuer_did,
                type_codes={license_type.code: department.credit_code + license_type.type_seq},
                issuer_codes={department.code: department.credit_code},
                now=hub.now(),
            )
            cancelled = (
                len(cancel(session=session, record_keys=gone, now=hub.now()).cancelled)
                if gone
                else 0
            )
            # The cursor moves past the refused records too, so they are quarantined in the
            # same transaction: fixed and replayed, they come back through the change feed.
            _quarantine(session, hub, license_type, result.rejected, latest)
            version = int(max(changes.column("_commit_version").to_pylist()))
            set_cursor(session=session, name=cursor_name, version=version, now=hub.now())
        report.issued[license_type.code] = len(result.issued)
        report.unchanged[license_type.code] = len(result.unchanged)
        report.cancelled[license_type.code] = int(cancelled)
        report.quarantined[license_type.code] = len(result.rejected)
        report.lake_versions[license_type.code] = version
        logger.info(
            "issuance %s: %d issued, %d unchanged, %d cancelled, %d quarantined up to lake"
            " version %d",
            license_type.code,
            len(result.issued),
            len(result.unchanged),
            cancelled,
            len(result.rejected),
            version,
        )
        if result.rejected:
            logger.warning(
                "issuance %s: %d records could not be issued (%s); they are quarantined",
                license_type.code,
                len(result.rejected),
                ", ".join(sorted({r.reason for r in result.rejected})),
            )
    return report


def _quarantine(
    session: Session,
    hub: Hub,
    license_type: LicenseType,
    rejected: tuple[Rejection, ...],
    rows: dict[str, dict[str, Any]],
) -> None:
    """Quarantine the lake rows of refused records, by source and batch, with their reasons.

    Kept as the gate's rejected rows are (ID fields encrypted, under the row's reference in its
    source), so ``onehub quarantine replay`` can put a fixed row back into the lake, and the
    next issuance run issues it; the reason ``issuance:<code>`` tells them from the gate's.
    """
    groups: dict[tuple[str, int], list[tuple[dict[str, Any], Rejection]]] = {}
    for rejection in rejected:
        row = rows[rejection.record_key]
        # A batch id is "<source>:<seq>", or "replay:<source>:<seq>" for a replayed row; a lake
        # row written some other way is filed under batch 0 rather than failing the run.
        _, _, tail = str(row["_batch_id"]).rpartition(":")
        seq = int(tail) if tail.isdecimal() else 0
        groups.setdefault((row["_source"], seq), []).append((row, rejection))
    for (source, seq), items in sorted(groups.items()):
        columns: dict[str, list[Any]] = {spec.name: [] for spec in license_type.fields}
        for row, _ in items:
            for spec in license_type.fields:
                columns[spec.name].append(
                    _lake_id(hub, row, spec.name) if spec.type in ID_TYPES else row.get(spec.name)
                )
        table = pa.table(
            {
                **columns,
                "_row_ref": [row["_row_ref"] for row, _ in items],
                "_reasons": [[f"issuance:{rejection.reason}"] for _, rejection in items],
            }
        )
        record_rejected(
            session=session,
            source=source,
            batch_seq=seq,
            license_type=license_type,
            rejected=table,
            cipher=hub.cipher,
            now=hub.now(),
            # A replayed row is in the lake under a replay batch whose number may equal the
            # batch it was first quarantined in: that (resolved) row is opened again.
            reopen=True,
        )
