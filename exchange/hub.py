"""The hub's dependencies, built once by the composition root (``onehub.settings``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from catalog_schemas.catalog import Catalog
from catalog_schemas.cipher import FieldCipher


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Hub:
    """Everything a pipeline step or an API call needs; nothing here is global."""

    catalog: Catalog
    engine: sa.Engine
    lake_uri: str
    hub_key: bytes = field(repr=False)
    cipher: FieldCipher = field(repr=False)
    kek: bytes = field(repr=False)
    issuer_did: str
    resolve_connection: Callable[[str], str]
    now: Callable[[], dt.datetime] = utc_now

    @property
    def sessions(self) -> sessionmaker[Session]:
        return sessionmaker(self.engine, expire_on_commit=False)
