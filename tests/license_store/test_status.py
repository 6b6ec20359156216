"""License status on SQLite and PostgreSQL: changes with history, compare-and-swap, expiry,
what the pipeline does to suspended and revoked records, and the published status lists."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog_schemas.cipher import FieldCipher
from catalog_schemas.errors import ValidationFailedError
from license_store import bitstring
from license_store.error import (
    ConcurrentStatusChangeError,
    LicenseNotFoundError,
    StatusTransitionError,
    VerificationError,
)
from license_store.issuance import IssueResult, cancel, issue
from license_store.key import KeyRing
from license_store.model import LicenseStatusChange, PublishedStatusList
from license_store.proof import create_proof
from license_store.record import LicenseRecord
from license_store.signer import Ed25519Signer
from license_store.status import (
    Seen,
    change_status,
    expire_due,
    history,
    reinstate,
    revoke,
    suspend,
    transition,
)
from license_store.status_list import (
    LIST_SIZE,
    StatusLists,
    build_list_credential,
    current_list,
    publish,
    verify_list_credential,
)
from license_store.store import credential_of, get_license
from license_store.verification import verify_credential

ISSUER_DID = "did:web:onehub.gd.gov.cn"
NOW = dt.datetime(2026, 11, 27, 2, 0, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(hours=1)
DCA = "11440000000000050C"
TYPE_CODES = {"marriage_certificate": DCA + "001"}
ISSUER_CODES = {"dca": DCA}
LIST_BASE = "https://onehub.gd.gov.cn/v1/status-lists"
MakeRecord = Callable[..., LicenseRecord]


def _issue(
    session: Session,
    records: list[LicenseRecord],
    signer: Ed25519Signer,
    cipher: FieldCipher,
    now: dt.datetime = NOW,
) -> IssueResult:
    return issue(
        session=session,
        records=records,
        signer=signer,
        cipher=cipher,
        issuer_did=ISSUER_DID,
        type_codes=TYPE_CODES,
        issuer_codes=ISSUER_CODES,
        now=now,
    )


def _ids(result: IssueResult) -> list[str]:
    return [item.license_id for item in result.issued]


def _code(call: Callable[[], Any]) -> str:
    with pytest.raises(VerificationError) as caught:
        call()
    return caught.value.code


def test_each_license_points_at_its_entry_in_both_lists(
    session: Session, signer: Ed25519Signer, cipher: FieldCipher, make_record: MakeRecord
) -> None:
    ids = _ids(_issue(session, [make_record(1), make_record(2)], signer, cipher))
    ids += _ids(_issue(session, [make_record(3)], signer, cipher))
    session.commit()
    indices = [get_license(session=session, license_id=i).status_index for i in ids]
    assert indices == [0, 1, 2]  # allocated in order, across calls
    credential = credential_of(get_license(session=session, license_id=ids[2]), cipher)
    assert credential["credentialStatus"] == [
        {
            "id": f"{LIST_BASE}/{purpose}/0#2",
            "type": "BitstringStatusListEntry",
            "statusPurpose": purpose,
            "statusListIndex": "2",
            "statusListCredential": f"{LIST_BASE}/{purpose}/0",
        }
        for purpose in ("revocation", "suspension")
    ]


def test_revoke_suspend_reinstate_are_recorded_with_who_when_why(
    session: Session,
    signer: Ed25519Signer,
    cipher: FieldCipher,
    keyring: KeyRing,
    make_record: MakeRecord,
) -> None:
    (license_id,) = _ids(_issue(session, [make_record(1)], signer, cipher))
    session.commit()
    keys = keyring.key_set(session=session)
    credential = credential_of(get_license(session=session, license_id=license_id), cipher)
    step = dt.timedelta(minutes=1)
    suspend(session=session, license_id=license_id, reason="涉嫌伪造", actor="wang", now=LATER)
    session.commit()
    code = _code(lambda: verify_credential(credential, keys=keys, now=LATER, session=session))
    assert code == "suspended"
    reinstate(
        session=session, license_id=license_id, reason="核查无误", actor="li", now=LATER + step
    )
    session.commit()
    assert verify_credential(credential, keys=keys, now=LATER, session=session).status == "valid"
    change = revoke(
        session=session,
        license_id=license_id,
        reason="法院判决",
        actor="zhao",
        now=LATER + 2 * step,
    )
    session.commit()
    assert (change.seq, change.from_status, change.to_status) == (3, "valid", "revoked")
    with pytest.raises(VerificationError) as caught:
        verify_credential(credential, keys=keys, now=LATER, session=session)
    assert caught.value.code == "revoked" and "法院判决" in caught.value.message
    assert "撤销" in caught.value.message
    with pytest.raises(StatusTransitionError):
        reinstate(session=session, license_id=license_id, reason="x", actor="li", now=LATER)
    with pytest.raises(StatusTransitionError):
        suspend(session=session, license_id=license_id, reason="x", actor="li", now=LATER)
    rows = [
        (h.seq, h.from_status, h.to_status, h.actor, h.reason, h.changed_at)
        for h in history(session=session, license_id=license_id)
    ]
    assert rows == [
        (1, "valid", "suspended", "wang", "涉嫌伪造", LATER),
        (2, "suspended", "valid", "li", "核查无误", LATER + step),
        (3, "valid", "revoked", "zhao", "法院判决", LATER + 2 * step),
    ]
    stored = get_license(session=session, license_id=license_id)
    assert (stored.status, stored.status_seq, stored.status_changed_at) == (
        "revoked",
        3,
        LATER + 2 * step,
    )


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"reason": " "}, ValidationFailedError),
        ({"reason": "x" * 1001}, ValidationFailedError),
        ({"actor": ""}, ValidationFailedError),
        ({"action": "delete"}, ValidationFailedError),
        ({"license_id": "no-such-license"}, LicenseNotFoundError),
        ({"now": dt.datetime(2026, 11, 27)}, ValidationFailedError),
    ],
)
def test_bad_status_changes_are_refused(
    session: Session,
    signer: Ed25519Signer,
    cipher: FieldCipher,
    make_record: MakeRecord,
    changes: dict[str, Any],
    error: type[Exception],
) -> None:
    (license_id,) = _ids(_issue(session, [make_record(1)], signer, cipher))
    arguments: dict[str, Any] = {
        "license_id": license_id,
        "action": "revoke",
        "reason": "r",
        "actor": "a",
        "now": LATER,
        **changes,
    }
    with pytest.raises(error):
        change_status(session=session, **arguments)
    assert get_license(session=session, license_id=license_id).status == "valid"


def test_a_change_made_from_a_stale_reading_loses(
    session: Session, signer: Ed25519Signer, cipher: FieldCipher, make_record: MakeRecord
) -> None:
    (license_id,) = _ids(_issue(session, [make_record(1)], signer, cipher))
    session.commit()
    stale = Seen(license_id, "valid", 0)
    # Someone else suspends and reinstates: the status is "valid" again, the counter moved.
    suspend(session=session, license_id=license_id, reason="a", actor="a", now=LATER)
    reinstate(session=session, license_id=license_id, reason="b", actor="b", now=LATER)
    session.commit()
    with pytest.raises(ConcurrentStatusChangeError):
        transition(
            session=session,
            seen=[stale],
            to="revoked",
            reasons={license_id: "late"},
            actor="c",
            now=LATER,
        )
    session.rollback()
    assert [h.to_status for h in history(session=session, license_id=license_id)] == [
        "suspended",
        "valid",
    ]
    # The history key alone also refuses a second row for one step.
    session.add(
        LicenseStatusChange(
            license_id=license_id,
            seq=2,
            from_status="suspended",
            to_status="revoked",
            reason="dup",
            actor="x",
            changed_at=LATER,
        )
    )
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()
    session.rollback()


def test_expiry_sweep_uses_the_last_valid_day_in_china(
    session: Session, signer: Ed25519Signer, cipher: FieldCipher, make_record: MakeRecord
) -> None:
    # NOW is 2026-11-27 10:00 in Beijing.
    until = {1: dt.date(2026, 11, 26), 2: dt.date(2026, 11, 27), 3: None, 4: dt.date(2025, 1, 1)}
    records = [make_record(n, valid_until=day) for n, day in until.items()]
    ids = dict(zip(until, _ids(_issue(session, records, signer, cipher)), strict=True))
    suspend(session=session, license_id=ids[4], reason="r", actor="a", now=NOW)
    session.commit()
    assert expire_due(session=session, now=NOW) == tuple(sorted([ids[1], ids[4]]))
    session.commit()
    statuses = {n: get_license(session=session, license_id=i).status for n, i in ids.items()}
    assert statuses == {1: "expired", 2: "valid", 3: "valid", 4: "expired"}
    (last,) = history(session=session, license_id=ids[1])
    assert (last.from_status, last.actor, last.reason) == (
        "valid",
        "maintenance",
        "validity ended on 2026-11-26",
    )
    assert expire_due(session=session, now=NOW) == ()  # idempotent
    # 2026-11-27 ends at 16:00 UTC.
    assert expire_due(session=session, now=dt.datetime(2026, 11, 27, 16, 0, tzinfo=dt.UTC)) == (
        ids[2],
    )


def test_the_pipeline_never_undoes_a_suspension_or_revocation(
    session: Session, signer: Ed25519Signer, cipher: FieldCipher, make_record: MakeRecord
) -> None:
    first, second = make_record(1), make_record(2)
    a, b = _ids(_issue(session, [first, second], signer, cipher))
    revoke(session=session, license_id=a, reason="r", actor="x", now=NOW)
    suspend(session=session, license_id=b, reason="s", actor="x", now=NOW)
    session.commit()
    # The same rows again: nothing happens.
    again = _issue(session, [first, second], signer, cipher, now=LATER)
    assert again.issued == () and set(again.unchanged) == {first.record_key, second.record_key}
    # Changed rows: new versions that keep the decision; the old versions keep theirs too.
    changed = [dataclasses.replace(r, row_hash="changed") for r in (first, second)]
    result = _issue(session, changed, signer, cipher, now=LATER)
    session.commit()
    new_a, new_b = _ids(result)
    assert [i.superseded for i in result.issued] == [None, None]
    assert [get_license(session=session, license_id=i).status for i in (a, b, new_a, new_b)] == [
        "revoked",
        "suspended",
        "revoked",
        "suspended",
    ]
    (carried,) = history(session=session, license_id=new_b)
    assert (carried.seq, carried.from_status, carried.to_status, carried.actor) == (
        1,
        None,
        "suspended",
        "pipeline",
    )
    assert b in carried.reason
    reinstate(session=session, license_id=new_b, reason="ok", actor="x", now=LATER)
    # Deleted at the source: a suspended license is cancelled, a revoked one stays revoked.
    result = cancel(session=session, record_keys=[first.record_key, second.record_key], now=LATER)
    assert result.cancelled == (new_b,) and result.not_cancellable == (first.record_key,)
    (*_, last) = history(session=session, license_id=new_b)
    assert (last.to_status, last.actor) == ("cancelled", "pipeline")


def test_supersede_and_same_call_versions_are_in_the_history(
    session: Session, signer: Ed25519Signer, cipher: FieldCipher, make_record: MakeRecord
) -> None:
    first = make_record(1)
    (v1,) = _ids(_issue(session, [first], signer, cipher))
    v2, v3 = _ids(
        _issue(
            session,
            [dataclasses.replace(first, row_hash="2"), dataclasses.replace(first, row_hash="3")],
            signer,
            cipher,
            now=LATER,
        )
    )
    session.commit()
    for old, new in ((v1, v2), (v2, v3)):
        (change,) = history(session=session, license_id=old)
        assert (change.seq, change.to_status, change.reason) == (
            1,
            "superseded",
            f"superseded by {new}",
        )
    assert history(session=session, license_id=v3) == []


def _lists(session: Session, keyring: KeyRing, now: dt.datetime) -> StatusLists:
    credentials = [
        current_list(session=session, purpose=p, list_id=0) for p in ("revocation", "suspension")
    ]
    return StatusLists.from_credentials(credentials, keys=keyring.key_set(session=session), now=now)


def test_published_lists_carry_revocations_and_suspensions(
    session: Session,
    signer: Ed25519Signer,
    cipher: FieldCipher,
    keyring: KeyRing,
    make_record: MakeRecord,
) -> None:
    ids = _ids(_issue(session, [make_record(n) for n in range(1, 6)], signer, cipher))
    published = publish(session=session, signer=signer, issuer_did=ISSUER_DID, now=NOW)
    session.commit()
    assert [(p.purpose, p.list_id, p.sequence, p.set_bits) for p in published] == [
        ("revocation", 0, 1, 0),
        ("suspension", 0, 1, 0),
    ]
    keys = keyring.key_set(session=session)
    credentials = [credential_of(get_license(session=session, license_id=i), cipher) for i in ids]
    before = _lists(session, keyring, NOW)
    verified = verify_credential(credentials[0], keys=keys, now=NOW, status_lists=before)
    assert verified.status_checked == ("revocation", "suspension")

    revoke(session=session, license_id=ids[0], reason="r", actor="a", now=LATER)
    suspend(session=session, license_id=ids[1], reason="s", actor="a", now=LATER)
    cancel(session=session, record_keys=[make_record(3).record_key], now=LATER)
    session.commit()
    # The old list does not know yet: offline checks are as fresh as the list.
    verify_credential(credentials[0], keys=keys, now=LATER, status_lists=before)
    publish(session=session, signer=signer, issuer_did=ISSUER_DID, now=LATER)
    session.commit()
    after = _lists(session, keyring, LATER)
    codes = []
    for credential in credentials:
        try:
            verify_credential(credential, keys=keys, now=LATER, status_lists=after)
            codes.append("valid")
        except VerificationError as exc:
            codes.append(exc.code)
    # Cancelled (注销) is final like a revocation, so it is in the revocation list.
    assert codes == ["revoked", "suspended", "revoked", "valid", "valid"]
    rows = {r.purpose: r for r in session.scalars(sa.select(PublishedStatusList))}
    assert (rows["revocation"].sequence, rows["revocation"].set_bits) == (2, 2)
    assert rows["suspension"].set_bits == 1
    encoded = current_list(session=session, purpose="revocation", list_id=0)
    bits = bitstring.decode(encoded["credentialSubject"]["encodedList"])
    indices = [get_license(session=session, license_id=i).status_index for i in ids]
    assert bitstring.set_indices(bits) == sorted([indices[0], indices[2]])

    reinstate(session=session, license_id=ids[1], reason="ok", actor="a", now=LATER)
    publish(session=session, signer=signer, issuer_did=ISSUER_DID, now=LATER)
    session.commit()
    verify_credential(
        credentials[1], keys=keys, now=LATER, status_lists=_lists(session, keyring, LATER)
    )


def _list(signer: Ed25519Signer, *, purpose: str = "revocation", **changes: Any) -> dict[str, Any]:
    url = f"{LIST_BASE}/{purpose}/0"
    unsigned = build_list_credential(
        url=url,
        purpose=purpose,
        bits=bitstring.new_bits(LIST_SIZE),
        issuer_did=ISSUER_DID,
        valid_from=NOW,
    )
    unsigned.update(changes)
    return create_proof(unsigned, signer=signer, created=NOW)


def test_bad_status_lists_are_refused(
    session: Session,
    signer: Ed25519Signer,
    cipher: FieldCipher,
    keyring: KeyRing,
    make_record: MakeRecord,
) -> None:
    (license_id,) = _ids(_issue(session, [make_record(1)], signer, cipher))
    session.commit()
    keys = keyring.key_set(session=session)
    credential = credential_of(get_license(session=session, license_id=license_id), cipher)
    good = _list(signer)
    verify_list_credential(good, keys=keys, now=NOW)
    tampered = {**good, "credentialSubject": {**good["credentialSubject"], "encodedList": "u"}}
    short_bits = bitstring.encode(bitstring.new_bits(100_000))
    short = _list(
        signer,
        credentialSubject={**good["credentialSubject"], "encodedList": short_bits},
    )
    not_a_list = _list(signer, type=["VerifiableCredential"])
    for bad in (tampered, short, not_a_list):
        assert _code(lambda b=bad: verify_list_credential(b, keys=keys, now=NOW)) == (
            "status_list_invalid"
        )
    # A suspension list served where the revocation list should be.
    swapped = _list(signer, purpose="suspension", id=f"{LIST_BASE}/revocation/0")
    lists = StatusLists.from_credentials([swapped], keys=keys, now=NOW)
    assert _code(lambda: lists.check(credential, issuer=ISSUER_DID)) == "status_list_invalid"
    # A list by another issuer says nothing about this one's licenses.
    other = StatusLists.from_credentials([good], keys=keys, now=NOW)
    assert _code(lambda: other.check(credential, issuer="did:web:other")) == "status_list_invalid"
    # An entry pointing past the end of the list.
    far = {
        **credential,
        "credentialStatus": [
            {**credential["credentialStatus"][0], "statusListIndex": str(LIST_SIZE)}
        ],
    }
    assert _code(lambda: other.check(far, issuer=ISSUER_DID)) == "status_list_invalid"
    odd = {
        **credential,
        "credentialStatus": [{**far["credentialStatus"][0], "statusListIndex": "01"}],
    }
    assert _code(lambda: other.check(odd, issuer=ISSUER_DID)) == "malformed"
    assert other.check({**credential, "credentialStatus": None}, issuer=ISSUER_DID) == ()
