"""Every holder row names a license that exists: a FOREIGN KEY on SQLite, triggers on PostgreSQL.

The same behaviour on both backends, driven through the statements a user (or a bug) could run:
issue() and the ORM, INSERT, COPY, UPDATE, DELETE, TRUNCATE; and a hub database made with the
old FOREIGN KEY is moved to the triggers by the hub's create_schema.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog_schemas.cipher import FieldCipher
from license_store.issuance import issue
from license_store.model import HOLDER_TRIGGER_NAMES, LicenseHolder, metadata
from license_store.record import LicenseRecord
from license_store.signer import Ed25519Signer
from onehub.database import create_schema
from onehub.settings import make_engine

MakeRecord = Callable[..., LicenseRecord]
HOLDER_COUNT = sa.text("SELECT count(*) FROM license_holders")


@pytest.fixture
def hub(hub_db_url: str) -> Iterator[sa.Engine]:
    """The hub database as the hub opens it (on SQLite: foreign keys on)."""
    engine = make_engine(hub_db_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def issued(
    hub: sa.Engine,
    signer: Ed25519Signer,
    cipher: FieldCipher,
    issuer_did: str,
    type_codes: dict[str, str],
    issuer_codes: dict[str, str],
    make_record: MakeRecord,
    now: dt.datetime,
) -> list[str]:
    """Two licenses issued (and committed) through issue(); their identifiers."""
    with Session(hub) as session:
        # The signer fixture made its key in the `session` fixture's database (the same URL).
        result = issue(
            session=session,
            records=[make_record(1), make_record(2)],
            signer=signer,
            cipher=cipher,
            issuer_did=issuer_did,
            type_codes=type_codes,
            issuer_codes=issuer_codes,
            now=now,
        )
        session.commit()
    return [license.license_id for license in result.issued]


def _holder(license_id: str, holder_key: str = "f" * 64) -> dict[str, str]:
    return {
        "license_id": license_id,
        "role": "party_c",
        "holder_key": holder_key,
        "kind": "natural_person",
        "id_masked": "4401**********123X",
    }


def _triggers(connection: sa.Connection) -> int:
    """The rule's triggers on the current schema's two tables."""
    return int(
        connection.execute(
            sa.text(
                "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN"
                " ('licenses'::regclass, 'license_holders'::regclass)"
            )
        ).scalar_one()
    )


def _holders(hub: sa.Engine) -> int:
    with hub.connect() as connection:
        return int(connection.execute(HOLDER_COUNT).scalar_one())


def test_issue_writes_holder_rows_that_the_rule_accepts(hub: sa.Engine, issued: list[str]) -> None:
    # Two licenses of two holders each: the bulk write (COPY on PostgreSQL) passed the check.
    assert len(issued) == 2
    assert _holders(hub) == 4


def test_a_holder_row_of_a_missing_license_is_refused(hub: sa.Engine, issued: list[str]) -> None:
    with pytest.raises(IntegrityError), hub.begin() as connection:
        connection.execute(sa.insert(LicenseHolder), [_holder("1.2.156.missing")])
    assert _holders(hub) == 4


def test_one_bad_row_refuses_the_whole_statement(hub: sa.Engine, issued: list[str]) -> None:
    # One INSERT with three VALUES rows (not executemany, which sends a statement per row on
    # psycopg), the bad row in the middle.
    rows = [_holder(issued[0], "a" * 64), _holder("1.2.156.missing"), _holder(issued[1], "b" * 64)]
    with pytest.raises(IntegrityError), hub.begin() as connection:
        connection.execute(sa.insert(LicenseHolder).values(rows))
    assert _holders(hub) == 4


def test_good_rows_of_existing_licenses_are_accepted(hub: sa.Engine, issued: list[str]) -> None:
    with hub.begin() as connection:
        connection.execute(
            sa.insert(LicenseHolder), [_holder(issued[0], "a" * 64), _holder(issued[1], "b" * 64)]
        )
    assert _holders(hub) == 6


def test_moving_a_holder_row_to_a_missing_license_is_refused(
    hub: sa.Engine, issued: list[str]
) -> None:
    with pytest.raises(IntegrityError), hub.begin() as connection:
        connection.execute(
            sa.update(LicenseHolder)
            .where(LicenseHolder.license_id == issued[0])
            .values(license_id="1.2.156.missing")
        )
    with hub.connect() as connection:
        held = connection.execute(
            sa.select(sa.func.count()).where(LicenseHolder.license_id == issued[0])
        ).scalar_one()
    assert held == 2


def test_deleting_a_license_deletes_its_holder_rows(hub: sa.Engine, issued: list[str]) -> None:
    with hub.begin() as connection:
        connection.execute(
            sa.text("DELETE FROM licenses WHERE license_id = :id"), {"id": issued[0]}
        )
    with hub.connect() as connection:
        left = connection.execute(sa.select(LicenseHolder.license_id)).scalars().all()
    assert sorted(set(left)) == [issued[1]]


def test_a_held_license_keeps_its_identifier(hub: sa.Engine, issued: list[str]) -> None:
    with pytest.raises(IntegrityError), hub.begin() as connection:
        connection.execute(
            sa.text("UPDATE licenses SET license_id = 'renamed' WHERE license_id = :id"),
            {"id": issued[0]},
        )


@pytest.mark.parametrize("hub_db_url", ["postgresql"], indirect=True)
def test_copy_of_a_holder_row_of_a_missing_license_is_refused(
    hub: sa.Engine, issued: list[str]
) -> None:
    # COPY is how issue() writes holder rows on PostgreSQL; the statement trigger sees its rows.
    rows = [_holder(issued[0], "a" * 64), _holder("1.2.156.missing"), _holder(issued[1], "b" * 64)]
    with pytest.raises(psycopg.errors.ForeignKeyViolation), hub.begin() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor:
            columns = ", ".join(rows[0])
            with cursor.copy(f"COPY license_holders ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(list(row.values()))
            # The trigger runs at the end of the COPY statement, inside the exit above.
    assert _holders(hub) == 4


@pytest.mark.parametrize("hub_db_url", ["postgresql"], indirect=True)
def test_truncating_licenses_empties_license_holders(hub: sa.Engine, issued: list[str]) -> None:
    with hub.begin() as connection:
        connection.execute(sa.text("TRUNCATE licenses CASCADE"))
    assert _holders(hub) == 0


@pytest.mark.parametrize("hub_db_url", ["postgresql"], indirect=True)
def test_a_database_with_the_old_foreign_key_moves_to_the_triggers(
    hub: sa.Engine, issued: list[str]
) -> None:
    # As a hub database made before the triggers: a FOREIGN KEY, no triggers.
    with hub.begin() as connection:
        for name in HOLDER_TRIGGER_NAMES:
            for table in ("licenses", "license_holders"):
                connection.execute(sa.text(f"DROP TRIGGER IF EXISTS {name} ON {table}"))
        connection.execute(
            sa.text(
                "ALTER TABLE license_holders ADD CONSTRAINT fk_license_holders_license_id_licenses"
                " FOREIGN KEY (license_id) REFERENCES licenses (license_id) ON DELETE CASCADE"
            )
        )

    create_schema(hub)

    with hub.connect() as connection:
        constraints = connection.execute(
            sa.text(
                "SELECT contype FROM pg_constraint WHERE conrelid = 'license_holders'::regclass"
            )
        ).scalars()
        triggers = _triggers(connection)
    assert sorted(constraints) == ["p"]  # the primary key only
    assert triggers == 5
    with pytest.raises(IntegrityError), hub.begin() as connection:
        connection.execute(sa.insert(LicenseHolder), [_holder("1.2.156.missing")])


@pytest.mark.parametrize("hub_db_url", ["postgresql"], indirect=True)
def test_truncating_licenses_with_its_holders_by_name(hub: sa.Engine, issued: list[str]) -> None:
    # The form a foreign key asked for; the trigger's own TRUNCATE meets the open table.
    with hub.begin() as connection:
        connection.execute(sa.text("TRUNCATE licenses, license_holders, license_status_history"))
    assert _holders(hub) == 0


@pytest.mark.parametrize("hub_db_url", ["postgresql"], indirect=True)
def test_a_temporary_licenses_table_does_not_stand_in(hub: sa.Engine, issued: list[str]) -> None:
    with pytest.raises(IntegrityError), hub.begin() as connection:
        connection.execute(sa.text("CREATE TEMPORARY TABLE licenses (license_id text)"))
        connection.execute(sa.text("INSERT INTO licenses VALUES ('1.2.156.missing')"))
        connection.execute(sa.insert(LicenseHolder.__table__), [_holder("1.2.156.missing")])
    assert _holders(hub) == 4


@pytest.mark.parametrize("hub_db_url", ["postgresql"], indirect=True)
def test_a_second_hub_schema_gets_rules_of_its_own(
    hub: sa.Engine, issued: list[str], hub_db_url: str
) -> None:
    with hub.begin() as connection:
        connection.execute(sa.text("CREATE SCHEMA second"))
    other = sa.create_engine(hub_db_url, connect_args={"options": "-c search_path=second"})
    try:
        metadata.create_all(other)
        with other.connect() as connection:
            assert _triggers(connection) == 5
        with pytest.raises(IntegrityError), other.begin() as connection:
            connection.execute(sa.insert(LicenseHolder), [_holder(issued[0])])
        # A license of the first schema deleted from a session of the second: its own schema's
        # holder rows go, whatever the session's search path.
        with other.begin() as connection:
            connection.execute(
                sa.text("DELETE FROM public.licenses WHERE license_id = :id"), {"id": issued[0]}
            )
    finally:
        other.dispose()
    with hub.connect() as connection:
        assert _triggers(connection) == 5
        left = connection.execute(sa.select(LicenseHolder.license_id)).scalars().all()
    assert sorted(set(left)) == [issued[1]]


@pytest.mark.parametrize("hub_db_url", ["postgresql"], indirect=True)
def test_dropping_the_holders_table_takes_the_license_triggers(
    hub: sa.Engine, issued: list[str]
) -> None:
    LicenseHolder.__table__.drop(hub)
    with hub.begin() as connection:
        connection.execute(sa.text("DELETE FROM license_status_history"))
        deleted = connection.execute(sa.text("DELETE FROM licenses")).rowcount
    assert deleted == 2
