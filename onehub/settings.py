"""Settings and the composition root: the one place that reads the environment and builds a Hub.

Everything is under one data directory by default (the embedded profile): the hub database
(SQLite), the lake folder, Airflow's home and the hub's secrets. Production sets
``ONEHUB_DB_URL`` (PostgreSQL) and ``ONEHUB_LAKE_URI`` (object storage), and keeps the secrets
in files or environment variables managed by the deployment.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from catalog_schemas.catalog import load_catalog
from catalog_schemas.cipher import FieldCipher
from catalog_schemas.errors import FatalError
from exchange.hub import Hub
from onehub.checkpoint import Checkpointer, attach, connection_class

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """OneHub settings; every field can be set as ``ONEHUB_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="ONEHUB_", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Root of everything the hub writes")
    departments_dir: Path = Field(
        default=Path("departments"),
        description="Where the sample department systems live (outside the hub)",
    )
    db_url: str | None = Field(default=None, description="Hub database; default SQLite in data_dir")
    lake_uri: str | None = Field(default=None, description="Lake root; default data_dir/lake")
    catalog_dir: Path | None = Field(
        default=None, description="Catalog folder; default the shipped one"
    )
    secrets_dir: Path | None = Field(
        default=None, description="Key files; default data_dir/secrets"
    )
    hub_key: SecretStr | None = Field(default=None, description="hex HMAC key for holder keys")
    data_keys: SecretStr | None = Field(
        default=None,
        description='JSON {"active": kid, "keys": {kid: hex}} for ID-number encryption',
    )
    kek: SecretStr | None = Field(
        default=None, description="hex key-encryption key for signing keys"
    )
    issuer_did: str = "did:web:onehub.localhost"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    connections: dict[str, str] = Field(
        default_factory=dict, description="connection id -> SQLAlchemy URL or folder (JSON)"
    )

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.resolve()

    @property
    def hub_db_url(self) -> str:
        return self.db_url or f"sqlite:///{self.resolved_data_dir / 'hub.db'}"

    @property
    def resolved_lake_uri(self) -> str:
        return self.lake_uri or str(self.resolved_data_dir / "lake")

    @property
    def resolved_secrets_dir(self) -> Path:
        return (self.secrets_dir or self.resolved_data_dir / "secrets").resolve()

    @property
    def airflow_home(self) -> Path:
        return self.resolved_data_dir / "airflow"

    def connection(self, conn_id: str) -> str:
        """Resolve a connection id: settings, ONEHUB_CONN_<ID>, AIRFLOW_CONN_<ID>, the sample.

        An ``AIRFLOW_CONN_<ID>`` value is an Airflow connection URI or JSON and is converted to
        a location (``mysql://`` -> ``mysql+pymysql://`` ...; see connectors.connection).
        """
        from connectors.connection import location_from_airflow

        if conn_id in self.connections:
            return self.connections[conn_id]
        value = os.environ.get("ONEHUB_CONN_" + conn_id.upper())
        if value:
            return value
        value = os.environ.get("AIRFLOW_CONN_" + conn_id.upper())
        if value:
            return location_from_airflow(value)
        sample = self.departments_dir.resolve()
        if (sample / conn_id).is_dir():
            return str(sample / conn_id)
        return f"sqlite:///{sample / (conn_id + '.db')}"


def _secret_file(directory: Path, name: str, *, create: bool, make: Any) -> str:
    path = directory / name
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    if not create:
        raise FatalError(f"missing secret {path}; run `onehub init` first", code="secret_missing")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = str(make())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value)
    return value


def load_secrets(settings: Settings, *, create: bool = False) -> tuple[bytes, FieldCipher, bytes]:
    """The hub key, the ID-number cipher and the key-encryption key (from env or secret files)."""
    directory = settings.resolved_secrets_dir
    hub_hex = (
        settings.hub_key.get_secret_value()
        if settings.hub_key
        else _secret_file(directory, "hub_key", create=create, make=lambda: secrets.token_hex(32))
    )
    data_json = (
        settings.data_keys.get_secret_value()
        if settings.data_keys
        else _secret_file(
            directory,
            "data_keys.json",
            create=create,
            make=lambda: json.dumps({"active": "k1", "keys": {"k1": secrets.token_hex(32)}}),
        )
    )
    kek_hex = (
        settings.kek.get_secret_value()
        if settings.kek
        else _secret_file(directory, "kek", create=create, make=lambda: secrets.token_hex(32))
    )
    data = json.loads(data_json)
    cipher = FieldCipher({kid: bytes.fromhex(k) for kid, k in data["keys"].items()}, data["active"])
    return bytes.fromhex(hub_hex), cipher, bytes.fromhex(kek_hex)


# Page size of a new SQLite hub database. A license row with its encrypted credential is about
# 2.8 kB, so on SQLite's default 4 KiB pages every license took a page of its own (a third of it
# empty) and every page a write to the WAL and another at checkpoint; 16 KiB pages hold five.
# bench/issuance.py: storing licenses costs about a quarter less CPU (BENCHMARKS.md).
SQLITE_PAGE_SIZE: Final = 16384
# Page cache per connection, in KiB (SQLite's default is 2 MiB): a batch of licenses is a few
# MiB of pages, which a 2 MiB cache spills to the WAL before the commit writes them again. It
# grows only as pages are used.
SQLITE_CACHE_KIB: Final = 65536


def make_engine(url: str) -> sa.Engine:
    """An engine for the hub database.

    SQLite gets WAL and a busy timeout (for the API's workers), foreign keys, the page size
    and page cache above (the page size only when the database is new), and a database file
    its WAL checkpoints in a background thread (:mod:`onehub.checkpoint`).
    """
    if url.startswith("sqlite"):
        parsed = sa.engine.make_url(url)
        database = parsed.database
        connect_args: dict[str, Any] = {"timeout": 30}
        checkpointer = None
        # A file, named as a path (a "file:" URI, uri=true, keeps SQLite's own checkpoints).
        if database and database != ":memory:" and not parsed.query.get("uri"):
            checkpointer = Checkpointer(database)
            connect_args["factory"] = connection_class(checkpointer)
        engine = sa.create_engine(url, connect_args=connect_args)
        if checkpointer is not None:
            attach(engine, checkpointer)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # Only a new, empty database takes it (an existing one keeps its page size).
            cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def build_hub(settings: Settings | None = None, *, create_secrets: bool = False) -> Hub:
    """Build the Hub from settings (the composition root)."""
    settings = settings or Settings()
    settings.resolved_data_dir.mkdir(parents=True, exist_ok=True)
    hub_key, cipher, kek = load_secrets(settings, create=create_secrets)
    return Hub(
        catalog=load_catalog(settings.catalog_dir),
        engine=make_engine(settings.hub_db_url),
        lake_uri=settings.resolved_lake_uri,
        hub_key=hub_key,
        cipher=cipher,
        kek=kek,
        issuer_did=settings.issuer_did,
        resolve_connection=settings.connection,
    )
