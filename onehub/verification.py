"""``onehub verify``: check credentials offline against the hub's keys or given files."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from catalog_schemas.errors import OneHubError, ValidationFailedError
from license_store.annotation import ANNOTATED_TYPE, verify_annotated
from license_store.error import VerificationError
from license_store.key import KeyRing
from license_store.key_set import KeySet
from license_store.status_list import StatusLists, published_lists
from license_store.timestamp import format_timestamp
from license_store.verification import VerifiedLicense, verify_credential

MAX_FILE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Outcome:
    """What ``onehub verify`` says about one credential."""

    credential_id: str
    ok: bool
    code: str
    detail: str


def _credentials(document: Any) -> Iterator[dict[str, Any]]:
    """Credentials in a file: one credential, a list of them, or a lookup response."""
    if isinstance(document, list):
        for item in document:
            yield from _credentials(item)
    elif isinstance(document, dict):
        if "proof" in document:
            yield document
        elif "credential" in document:
            yield from _credentials(document["credential"])
        elif "licenses" in document:
            yield from _credentials(document["licenses"])


def verify_document(
    path: Path,
    *,
    keys_file: Path | None = None,
    status_list_files: Sequence[Path] = (),
    service_item: str | None = None,
    now: dt.datetime | None = None,
) -> list[Outcome]:
    """Verify every credential in ``path``.

    Keys: ``did:key`` methods resolve by themselves; the hub's own keys come from ``keys_file``
    (a JWKS or DID document) or, when none is given and a local hub is set up, from its database,
    which also supplies each license's current status and the hub's published status lists.
    Status lists given as files are checked against the same keys and used instead.
    """
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValidationFailedError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationFailedError(f"{path} is not JSON: {exc}") from None
    now = now or dt.datetime.now(dt.UTC)
    keys = KeySet.did_key()
    session = None
    hub_did = None
    lists: list[dict[str, Any]] = []
    if keys_file is not None:
        keys = keys.merged(KeySet.from_file(keys_file))
    else:
        hub = _local_hub()
        if hub is not None:
            session = hub.sessions()
            hub_did = hub.issuer_did
            keys = keys.merged(KeyRing(issuer_did=hub.issuer_did).key_set(session=session))
            lists = published_lists(session=session)
    outcomes = []
    try:
        status_lists = (
            StatusLists.from_files(status_list_files, keys=keys, now=now)
            if status_list_files
            else StatusLists.from_credentials(lists, keys=keys, now=now)
        )
        for credential in _credentials(document):
            cid = str(credential.get("id", "<no id>"))
            # The local store knows the status of the hub's own licenses only.
            ours = hub_did is not None and _issuer(credential) == hub_did
            try:
                if ANNOTATED_TYPE in (credential.get("type") or []):
                    outcomes.append(
                        _annotated(
                            credential,
                            cid,
                            keys,
                            now,
                            service_item,
                            status_lists,
                            session if ours else None,
                        )
                    )
                    continue
                verified = verify_credential(
                    credential,
                    keys=keys,
                    now=now,
                    session=session if ours else None,
                    status_lists=status_lists,
                )
            except VerificationError as exc:
                outcomes.append(Outcome(cid, False, exc.code, exc.message))
                continue
            outcomes.append(Outcome(cid, True, "valid", _detail(verified, status_lists)))
    finally:
        if session is not None:
            session.close()
    return outcomes


def _annotated(
    credential: dict[str, Any],
    cid: str,
    keys: KeySet,
    now: dt.datetime,
    service_item: str | None,
    status_lists: StatusLists,
    session: Session | None,
) -> Outcome:
    subject = credential.get("credentialSubject")
    bound = subject.get("serviceItem") if isinstance(subject, dict) else None
    verified = verify_annotated(
        credential,
        keys=keys,
        now=now,
        service_item=service_item or str(bound),
        session=session,
        status_lists=status_lists,
    )
    detail = (
        f"annotated copy of {verified.license.license_id}, only for {verified.service_item} "
        f"(consumer {verified.consumer}) until {format_timestamp(verified.valid_until)}; "
        + _detail(verified.license, status_lists)
    )
    if service_item is None:
        detail += "; pass --service-item to check the item it is presented for"
    return Outcome(cid, True, "valid", detail)


def _detail(verified: VerifiedLicense, status_lists: StatusLists) -> str:
    detail = f"signed by {verified.verification_method}"
    if verified.status:
        detail += f", status {verified.status} in the hub's store"
    if verified.status_checked:
        detail += ", not in the " + " or ".join(verified.status_checked) + " list"
    elif "credentialStatus" in verified.credential:
        detail += ", status lists not checked (none at hand: give --status-list)"
    if not verified.issuer_bound:
        detail += f"; issuer {verified.issuer} is not a DID, so the key is not tied to it"
    return detail


def _issuer(credential: dict[str, Any]) -> str | None:
    issuer = credential.get("issuer")
    if isinstance(issuer, dict):
        issuer = issuer.get("id")
    return issuer if isinstance(issuer, str) else None


def _local_hub() -> Any:
    from onehub.settings import Settings, build_hub

    settings = Settings()
    if not (settings.resolved_secrets_dir / "hub_key").is_file() and settings.hub_key is None:
        return None
    try:
        return build_hub(settings)
    except OneHubError:
        return None
