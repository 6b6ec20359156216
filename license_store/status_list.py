"""W3C Bitstring Status Lists: each license's entries, publishing signed lists, checking them.

Every license version gets a ``status_index`` at issuance. Index ``g`` is bit ``g % 131072`` of
list ``g // 131072``; the same position is used in the revocation list and in the suspension
list. The revocation bit is set for ``revoked`` and ``cancelled`` (both are final), the
suspension bit for ``suspended``. Superseded and expired versions are not in the lists: a
superseded version is still a true statement of its time, and expiry is in the credential itself
(``validUntil``). Lists are served at ``<base>/v1/status-lists/<purpose>/<list id>``, where the
base is the https origin of the hub's did:web.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import unquote

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog_schemas.errors import OneHubError, ValidationFailedError
from license_store import bitstring
from license_store.canonical import parse_json
from license_store.credential import ISSUER_NAME, VC_CONTEXT
from license_store.did import controller_of
from license_store.error import (
    ConcurrentStatusChangeError,
    StatusListError,
    StatusListNotFoundError,
    VerificationError,
)
from license_store.key_set import KeySet
from license_store.model import (
    CANCELLED,
    REVOCATION,
    REVOKED,
    STATUS_PURPOSES,
    SUSPENDED,
    SUSPENSION,
    License,
    PublishedStatusList,
)
from license_store.proof import create_proof
from license_store.signer import Signer
from license_store.timestamp import format_timestamp
from license_store.verification import verify_credential

logger = logging.getLogger(__name__)

LIST_SIZE: Final = bitstring.MIN_ENTRIES
PATH: Final = "/v1/status-lists"
ENTRY_TYPE: Final = "BitstringStatusListEntry"
LIST_CREDENTIAL_TYPE: Final = "BitstringStatusListCredential"
LIST_TYPE: Final = "BitstringStatusList"
# Which license statuses set a bit in which list.
PURPOSE_STATUSES: Final = MappingProxyType(
    {REVOCATION: (REVOKED, CANCELLED), SUSPENSION: (SUSPENDED,)}
)
STATUS_OF_PURPOSE: Final = MappingProxyType({REVOCATION: "revoked", SUSPENSION: "suspended"})
MAX_STATUS_ENTRIES: Final = 8
MAX_LIST_FILE_BYTES: Final = 8 * 1024 * 1024
_INDEX: Final = re.compile(r"0|[1-9][0-9]{0,17}")
_DID_WEB: Final = "did:web:"


def base_url_of(issuer_did: str) -> str:
    """Return the https origin (and path) a did:web DID names; status lists are served there."""
    if not issuer_did.startswith(_DID_WEB) or len(issuer_did) <= len(_DID_WEB):
        raise StatusListError(
            f"status list URLs need a did:web issuer or a base URL: {issuer_did!r}"
        )
    parts = [unquote(part) for part in issuer_did[len(_DID_WEB) :].split(":")]
    return "https://" + "/".join(parts)


def list_url(base_url: str, purpose: str, list_id: int) -> str:
    """Return the URL (and ``id``) of one status list credential."""
    if purpose not in STATUS_PURPOSES:
        raise StatusListError(f"status purpose must be one of {STATUS_PURPOSES}")
    return f"{base_url.rstrip('/')}{PATH}/{purpose}/{list_id}"


def position(status_index: int) -> tuple[int, int]:
    """Return (list id, bit index) of a license's status index."""
    return divmod(status_index, LIST_SIZE)


def status_entries(base_url: str, status_index: int) -> list[dict[str, str]]:
    """Return the ``credentialStatus`` entries of a license: one per purpose, same position."""
    list_id, bit = position(status_index)
    entries = []
    for purpose in STATUS_PURPOSES:
        url = list_url(base_url, purpose, list_id)
        entries.append(
            {
                "id": f"{url}#{bit}",
                "type": ENTRY_TYPE,
                "statusPurpose": purpose,
                "statusListIndex": str(bit),
                "statusListCredential": url,
            }
        )
    return entries


@dataclass(frozen=True)
class PublishedList:
    """One list written by :func:`publish`."""

    purpose: str
    list_id: int
    url: str
    sequence: int
    set_bits: int


def list_bits(*, session: Session, purpose: str) -> dict[int, bytearray]:
    """Return the current bits of every list of ``purpose``, computed from license statuses."""
    highest = session.scalar(select(func.max(License.status_index)))
    lists = {list_id: bitstring.new_bits(LIST_SIZE) for list_id in range(_list_count(highest))}
    rows = session.execute(
        select(License.status_index).where(License.status.in_(PURPOSE_STATUSES[purpose]))
    )
    for (index,) in rows:
        list_id, bit = position(index)
        bitstring.set_bit(lists[list_id], bit)
    return lists


def publish(
    *,
    session: Session,
    signer: Signer,
    issuer_did: str,
    now: dt.datetime,
    base_url: str | None = None,
    purposes: Sequence[str] = STATUS_PURPOSES,
    issuer_name: str = ISSUER_NAME,
) -> list[PublishedList]:
    """Sign and store the current status lists in the caller's transaction.

    The stored rows are locked first (PostgreSQL), so a publisher that waits for another reads
    the statuses that one committed: a list is never replaced by an older picture.
    """
    if now.utcoffset() is None:
        raise ValidationFailedError("now must be an aware datetime")
    if controller_of(signer.verification_method) != issuer_did:
        raise ValidationFailedError("the signer's key does not belong to issuer_did")
    base = base_url or base_url_of(issuer_did)
    key_id = signer.verification_method.partition("#")[2] or signer.verification_method
    published: list[PublishedList] = []
    for purpose in purposes:
        if purpose not in STATUS_PURPOSES:
            raise StatusListError(f"status purpose must be one of {STATUS_PURPOSES}")
        stored = {
            row.list_id: row
            for row in session.scalars(
                select(PublishedStatusList)
                .where(PublishedStatusList.purpose == purpose)
                .with_for_update()
            )
        }
        for list_id, bits in list_bits(session=session, purpose=purpose).items():
            url = list_url(base, purpose, list_id)
            credential = create_proof(
                build_list_credential(
                    url=url,
                    purpose=purpose,
                    bits=bits,
                    issuer_did=issuer_did,
                    issuer_name=issuer_name,
                    valid_from=now,
                ),
                signer=signer,
                created=now,
            )
            text = _dumps(credential)
            set_bits = sum(bin(byte).count("1") for byte in bits if byte)
            row = stored.get(list_id)
            if row is None:
                row = PublishedStatusList(
                    purpose=purpose,
                    list_id=list_id,
                    sequence=1,
                    published_at=now,
                    set_bits=set_bits,
                    key_id=key_id,
                    credential=text,
                )
                session.add(row)
            else:
                row.sequence += 1
                row.published_at = now
                row.set_bits = set_bits
                row.key_id = key_id
                row.credential = text
            published.append(PublishedList(purpose, list_id, url, row.sequence, set_bits))
    try:
        session.flush()
    except IntegrityError:
        raise ConcurrentStatusChangeError(
            "another process published the first status lists at the same time; retry"
        ) from None
    logger.info("published %d status lists", len(published))
    return published


def build_list_credential(
    *,
    url: str,
    purpose: str,
    bits: bytes | bytearray,
    issuer_did: str,
    valid_from: dt.datetime,
    issuer_name: str = ISSUER_NAME,
) -> dict[str, Any]:
    """Return the unsigned BitstringStatusListCredential of one list."""
    if len(bits) * 8 < LIST_SIZE:
        raise StatusListError(f"a status list has at least {LIST_SIZE} entries")
    return {
        "@context": [VC_CONTEXT],
        "id": url,
        "type": ["VerifiableCredential", LIST_CREDENTIAL_TYPE],
        "issuer": {"id": issuer_did, "name": issuer_name},
        "validFrom": format_timestamp(valid_from),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": LIST_TYPE,
            "statusPurpose": purpose,
            "encodedList": bitstring.encode(bits),
        },
    }


def stored_list(*, session: Session, purpose: str, list_id: int) -> PublishedStatusList:
    """Return the stored row of a published list, or raise StatusListNotFoundError."""
    row = session.get(PublishedStatusList, (purpose, list_id))
    if row is None:
        raise StatusListNotFoundError(f"no {purpose} status list {list_id} has been published")
    return row


def current_list(*, session: Session, purpose: str, list_id: int) -> dict[str, Any]:
    """Return the published list credential, or raise StatusListNotFoundError."""
    return _loads(stored_list(session=session, purpose=purpose, list_id=list_id).credential)


def published_lists(*, session: Session) -> list[dict[str, Any]]:
    """Return every published list credential (what a local verifier checks against)."""
    rows = session.scalars(
        select(PublishedStatusList).order_by(
            PublishedStatusList.purpose, PublishedStatusList.list_id
        )
    )
    return [_loads(row.credential) for row in rows]


@dataclass(frozen=True)
class VerifiedStatusList:
    """A status list credential whose proof, issuer and shape checked out."""

    url: str
    purpose: str
    issuer: str
    bits: bytes = field(repr=False)
    published: dt.datetime | None


def verify_list_credential(
    credential: Mapping[str, Any], *, keys: KeySet, now: dt.datetime
) -> VerifiedStatusList:
    """Verify a BitstringStatusListCredential; raise VerificationError("status_list_invalid")."""
    try:
        verified = verify_credential(credential, keys=keys, now=now)
    except VerificationError as exc:
        raise VerificationError(
            "status_list_invalid", f"status list credential failed: {exc.code}"
        ) from None
    types = credential.get("type")
    subject = credential.get("credentialSubject")
    url = credential.get("id")
    if not isinstance(types, list) or LIST_CREDENTIAL_TYPE not in types:
        raise VerificationError("status_list_invalid", "not a BitstringStatusListCredential")
    if not isinstance(subject, Mapping) or subject.get("type") != LIST_TYPE:
        raise VerificationError("status_list_invalid", "credentialSubject is not a status list")
    purpose = subject.get("statusPurpose")
    if purpose not in STATUS_PURPOSES or not isinstance(url, str):
        raise VerificationError("status_list_invalid", f"unsupported statusPurpose {purpose!r}")
    try:
        bits = bitstring.decode(subject.get("encodedList"))  # type: ignore[arg-type]
    except StatusListError as exc:
        raise VerificationError("status_list_invalid", exc.message) from None
    if len(bits) * 8 < LIST_SIZE:
        # The spec's STATUS_LIST_LENGTH_ERROR: too short a list says too much about each holder.
        raise VerificationError(
            "status_list_invalid",
            f"status list has {len(bits) * 8} entries, fewer than {LIST_SIZE}",
        )
    return VerifiedStatusList(url, str(purpose), verified.issuer, bits, verified.created)


@dataclass(frozen=True)
class StatusLists:
    """Verified status lists by URL; checks the ``credentialStatus`` entries of a credential."""

    lists: Mapping[str, VerifiedStatusList] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lists", MappingProxyType(dict(self.lists)))

    @classmethod
    def from_credentials(
        cls, credentials: Iterable[Mapping[str, Any]], *, keys: KeySet, now: dt.datetime
    ) -> StatusLists:
        """Verify each list credential (any failure raises) and index them by URL."""
        verified = [verify_list_credential(c, keys=keys, now=now) for c in credentials]
        return cls({item.url: item for item in verified})

    @classmethod
    def from_files(
        cls, paths: Iterable[Path | str], *, keys: KeySet, now: dt.datetime
    ) -> StatusLists:
        """Read and verify status list credential files."""
        credentials = []
        for path in map(Path, paths):
            if path.stat().st_size > MAX_LIST_FILE_BYTES:
                raise VerificationError("status_list_invalid", f"{path.name} is too large")
            try:
                document = parse_json(path.read_bytes(), max_bytes=MAX_LIST_FILE_BYTES)
            except OneHubError:
                raise VerificationError(
                    "status_list_invalid", f"{path.name} is not strict JSON"
                ) from None
            if not isinstance(document, dict):
                raise VerificationError("status_list_invalid", f"{path.name} is not an object")
            credentials.append(document)
        return cls.from_credentials(credentials, keys=keys, now=now)

    def check(self, credential: Mapping[str, Any], *, issuer: str) -> tuple[str, ...]:
        """Raise VerificationError("revoked"/"suspended") if a listed bit is set.

        Returns the purposes that were checked; an entry whose list is not held is skipped
        (the caller reports it as unchecked).
        """
        checked: list[str] = []
        for entry in _entries(credential.get("credentialStatus")):
            if entry.get("type") != ENTRY_TYPE or entry.get("statusPurpose") not in STATUS_PURPOSES:
                continue
            purpose = str(entry["statusPurpose"])
            held = self.lists.get(entry.get("statusListCredential"))  # type: ignore[arg-type]
            if held is None:
                continue
            if held.purpose != purpose:
                raise VerificationError(
                    "status_list_invalid", f"the list at {held.url} is for {held.purpose}"
                )
            if held.issuer != issuer:
                raise VerificationError(
                    "status_list_invalid", "the status list has another issuer than the credential"
                )
            raw = entry.get("statusListIndex")
            if not isinstance(raw, str) or not _INDEX.fullmatch(raw):
                raise VerificationError("malformed", "statusListIndex is not a decimal string")
            try:
                bit = bitstring.get_bit(held.bits, int(raw))
            except StatusListError:
                raise VerificationError(
                    "status_list_invalid", "statusListIndex is outside the list (RANGE_ERROR)"
                ) from None
            if bit:
                raise VerificationError(
                    STATUS_OF_PURPOSE[purpose], f"{purpose} bit {raw} is set in {held.url}"
                )
            checked.append(purpose)
        return tuple(checked)


def _entries(value: object) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if len(items) > MAX_STATUS_ENTRIES or not all(isinstance(i, Mapping) for i in items):
        raise VerificationError("malformed", "credentialStatus is not a short list of objects")
    return items  # type: ignore[return-value]


def _list_count(highest: int | None) -> int:
    # At least list 0 exists, so a verifier can fetch it before the first license is issued.
    return 1 if highest is None else highest // LIST_SIZE + 1


def _dumps(credential: Mapping[str, Any]) -> str:
    return json.dumps(credential, ensure_ascii=False, separators=(",", ":"))


def _loads(text: str) -> dict[str, Any]:
    value = parse_json(text, max_bytes=MAX_LIST_FILE_BYTES)
    if not isinstance(value, dict):
        raise StatusListError("stored status list is not a JSON object")
    return value
