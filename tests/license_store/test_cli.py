"""The license lifecycle as a user drives it: `onehub licenses|keys|verify` on a local hub."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from exchange.hub import Hub
from license_store.annotation import annotate
from license_store.issuance import issue
from license_store.record import LicenseRecord
from license_store.store import credential_of, get_license
from onehub.cli import app
from onehub.database import signer_for
from onehub.settings import build_hub

ISSUER_DID = "did:web:onehub.gd.gov.cn"
DCA = "11440000000000050C"
MakeRecord = Callable[..., LicenseRecord]
runner = CliRunner()


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Hub:
    for name in ("ONEHUB_DB_URL", "ONEHUB_HUB_KEY", "ONEHUB_KEK", "ONEHUB_DATA_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ONEHUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ONEHUB_ISSUER_DID", ISSUER_DID)
    monkeypatch.setenv("COLUMNS", "250")
    _ok("init")
    return build_hub()


def _run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def _ok(*args: str) -> str:
    result = _run(*args)
    assert result.exit_code == 0, result.output
    return str(result.output)


def _failed(*args: str) -> str:
    result = _run(*args)
    assert result.exit_code == 1, result.output
    return str(result.output)


def _issue(hub: Hub, records: list[LicenseRecord], tmp_path: Path) -> list[tuple[str, Path]]:
    """Issue through the library as the pipeline does; each license written to a file."""
    signer = signer_for(hub)
    with hub.sessions.begin() as session:
        result = issue(
            session=session,
            records=records,
            signer=signer,
            cipher=hub.cipher,
            issuer_did=hub.issuer_did,
            type_codes={"marriage_certificate": DCA + "001"},
            issuer_codes={"dca": DCA},
            now=hub.now(),
        )
        out = []
        for item in result.issued:
            credential = credential_of(
                get_license(session=session, license_id=item.license_id), hub.cipher
            )
            path = tmp_path / f"license-{item.license_id[-18:]}.json"
            path.write_text(json.dumps(credential, ensure_ascii=False), encoding="utf-8")
            out.append((item.license_id, path))
    return out


def _did_file(tmp_path: Path, name: str = "did.json") -> Path:
    path = tmp_path / name
    path.write_text(_ok("keys", "export", "--format", "did"), encoding="utf-8")
    return path


def _list_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    _ok("licenses", "status-list", "revocation", "0", "--output", str(path))
    return path


def test_a_license_revoked_through_the_cli_fails_verify_once_the_list_is_published(
    hub: Hub, tmp_path: Path, make_record: MakeRecord
) -> None:
    (license_id, license_file), (other_id, other_file) = _issue(
        hub, [make_record(1), make_record(2)], tmp_path
    )
    _ok("licenses", "publish")
    keys = _did_file(tmp_path)
    before = _list_file(tmp_path, "revocation-before.json")
    offline = ("--keys", str(keys))
    output = _ok("verify", str(license_file), *offline, "--status-list", str(before))
    assert "✔ valid" in output and "not in the revocation list" in output

    output = _ok("licenses", "revoke", license_id, "--reason", "以欺骗手段取得", "--by", "wang.li")
    assert "valid → revoked" in output and "撤销" in output
    assert "status lists published: revocation/0 (#2)" in output
    # A verifier holding the list from before cannot know yet; the newly published one says so.
    _ok("verify", str(license_file), *offline, "--status-list", str(before))
    after = _list_file(tmp_path, "revocation-after.json")
    output = _failed("verify", str(license_file), *offline, "--status-list", str(after))
    assert "✘ revoked" in output and "revocation bit" in output
    _ok("verify", str(other_file), *offline, "--status-list", str(after))
    # With the local hub (no --keys): its store and its published lists.
    output = _failed("verify", str(license_file))
    assert "✘ revoked" in output and "以欺骗手段取得" in output
    output = _ok("licenses", "show", license_id)
    assert "revoked" in output and "wang.li" in output and "以欺骗手段取得" in output
    # Revoked is final.
    output = _failed("licenses", "reinstate", license_id, "--reason", "undo")
    assert "cannot reinstate a license that is revoked" in output

    _ok("licenses", "suspend", other_id, "--reason", "暂扣调查", "--by", "li")
    assert "✘ suspended" in _failed("verify", str(other_file))
    _ok("licenses", "reinstate", other_id, "--reason", "调查结束", "--by", "li")
    assert "✔ valid" in _ok("verify", str(other_file))
    output = _ok("licenses", "show", other_id)
    assert "暂扣调查" in output and "调查结束" in output


def test_rotation_keeps_licenses_verifying_until_the_old_key_is_retired(
    hub: Hub, tmp_path: Path, make_record: MakeRecord
) -> None:
    ((first_id, first_file),) = _issue(hub, [make_record(1)], tmp_path)
    with hub.sessions() as session:
        old_kid = get_license(session=session, license_id=first_id).key_id
    output = _ok("keys", "rotate")
    (new_kid,) = [word for word in output.split() if len(word) == 43]
    assert new_kid != old_kid
    ((_second_id, second_file),) = _issue(hub, [make_record(2)], tmp_path)
    output = _ok("verify", str(first_file))
    assert f"#{old_kid}" in output and "✔ valid" in output
    assert f"#{new_kid}" in _ok("verify", str(second_file))
    output = _ok("keys", "list")
    assert "rotated" in output and "active" in output
    before_retire = _did_file(tmp_path, "did-before.json")
    _ok("verify", str(first_file), "--keys", str(before_retire))

    output = _failed("keys", "retire", "--", new_kid)  # a kid may start with "-"
    assert "rotate" in output  # the active key cannot be retired
    _ok("keys", "retire", "--", old_kid)
    output = _failed("verify", str(first_file))
    assert "✘ retired_key" in output and f"#{old_kid}" in output
    assert "✔ valid" in _ok("verify", str(second_file))  # lists were re-signed with the new key
    after_retire = _did_file(tmp_path, "did-after.json")
    output = _failed("verify", str(first_file), "--keys", str(after_retire))
    assert "✘ retired_key" in output
    _ok("verify", str(second_file), "--keys", str(after_retire))
    assert "retired" in _ok("keys", "list")


def test_a_superseded_version_is_reported_as_superseded(
    hub: Hub, tmp_path: Path, make_record: MakeRecord
) -> None:
    first = make_record(1)
    ((v1, v1_file),) = _issue(hub, [first], tmp_path)
    ((v2, v2_file),) = _issue(hub, [dataclasses.replace(first, row_hash="changed")], tmp_path)
    output = _failed("verify", str(v1_file))
    assert "✘ superseded" in output and "superseded" in output and v2 in output
    assert "signature valid" in output
    assert "✔ valid" in _ok("verify", str(v2_file))
    # Offline, without the hub's store, its signature is still sound.
    _ok("verify", str(v1_file), "--keys", str(_did_file(tmp_path)))
    assert v1 != v2


def test_verify_checks_an_annotated_copy_for_the_item_it_is_presented_for(
    hub: Hub, tmp_path: Path, make_record: MakeRecord
) -> None:
    ((license_id, license_file),) = _issue(hub, [make_record(1)], tmp_path)
    copy = annotate(
        credential=json.loads(license_file.read_text(encoding="utf-8")),
        purpose="办理人才引进落户",
        service_item="talent_household_registration",
        consumer="tianhe-counter-3",
        expires=hub.now() + dt.timedelta(days=2),
        signer=signer_for(hub),
        now=hub.now(),
    )
    copy_file = tmp_path / "copy.json"
    copy_file.write_text(json.dumps(copy, ensure_ascii=False), encoding="utf-8")
    output = _ok("verify", str(copy_file), "--service-item", "talent_household_registration")
    assert "✔ valid" in output and f"annotated copy of {license_id}" in output
    output = _failed("verify", str(copy_file), "--service-item", "housing_provident_withdrawal")
    assert "✘ wrong_service_item" in output
    _ok("licenses", "suspend", license_id, "--reason", "核查")
    assert "✘ suspended" in _failed(
        "verify", str(copy_file), "--service-item", "talent_household_registration"
    )
