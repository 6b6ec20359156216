"""Airflow Connections as connector locations: a SQLAlchemy URL, a drop folder or a base URL.

Airflow keeps a connection as a URI (``conn-type://login:password@host:port/schema?extra``) or as
JSON (``{"conn_type": ..., "host": ..., ...}``), for instance in ``AIRFLOW_CONN_<ID>``. The
connectors take a location instead; :func:`location_from_airflow` converts:

- ``mysql``/``mariadb`` -> ``mysql+pymysql://`` (pure Python: no client library to build);
- ``postgres``/``postgresql`` -> ``postgresql+psycopg://``;
- ``sqlite`` -> ``sqlite:///<path>`` (Airflow puts the URL-encoded path in the host:
  ``sqlite://%2Fdata%2Fdept.db``);
- ``fs``/``file`` -> the folder (the ``path`` extra, else the URI's path);
- ``http``/``https`` -> the base URL, credentials kept in its user part (a bearer token is the
  password; for HMAC the login is the key id and the password the secret). Airflow's own HTTP
  connections name the protocol in the schema (``http://host/https``); that form is read too.

A URL that already names a SQLAlchemy driver (``postgresql+psycopg://``) is returned unchanged.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from catalog_schemas.errors import FatalError

_SQL_DRIVERS = {
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
}
# Extras Airflow keeps beside a connection that the database drivers understand too.
_SQL_EXTRAS = frozenset(
    {"charset", "sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout"}
)


class ConnectionFormatError(FatalError):
    """An Airflow connection value that cannot be turned into a location."""

    code = "connection_invalid"


def location_from_airflow(value: str) -> str:
    """The connector location for an Airflow connection ``value`` (URI or JSON)."""
    text = value.strip()
    if text.startswith("{"):
        return _from_fields(_json_fields(text))
    if "://" not in text:
        return text  # a plain folder
    scheme = text.split("://", 1)[0].lower()
    if "+" in scheme:
        return text  # already a SQLAlchemy URL with its driver
    parts = urlsplit(text)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    extra: dict[str, Any] = {}
    if "__extra__" in query:
        extra = _json_object(query.pop("__extra__"))
    extra.update(query)
    fields = {
        "conn_type": scheme.replace("-", "_"),
        "host": unquote(parts.hostname or "") if parts.hostname else "",
        "login": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "port": parts.port,
        "schema": unquote(parts.path.lstrip("/")),
        "extra": extra,
    }
    if scheme == "sqlite":
        # Airflow: the path is the (URL-encoded) host; SQLAlchemy: it is the URL's path.
        netloc = unquote(parts.netloc)
        fields["host"] = netloc if netloc else unquote(parts.path[1:])
        fields["schema"] = ""
    return _from_fields(fields)


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConnectionFormatError(f"connection extra is not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ConnectionFormatError("connection extra is not a JSON object")
    return data


def _json_fields(text: str) -> dict[str, Any]:
    data = _json_object(text)
    extra = data.get("extra") or {}
    if isinstance(extra, str):
        extra = _json_object(extra) if extra.strip() else {}
    return {
        "conn_type": str(data.get("conn_type") or "").lower().replace("-", "_"),
        "host": data.get("host") or "",
        "login": data.get("login"),
        "password": data.get("password"),
        "port": data.get("port"),
        "schema": data.get("schema") or "",
        "extra": extra,
    }


def _userinfo(login: str | None, password: str | None) -> str:
    if not login and not password:
        return ""
    user = quote(login or "", safe="")
    return f"{user}:{quote(password, safe='')}@" if password else f"{user}@"


def _from_fields(fields: dict[str, Any]) -> str:
    conn_type: str = fields["conn_type"]
    host, port, schema = fields["host"], fields["port"], fields["schema"]
    extra: dict[str, Any] = fields["extra"]
    auth = _userinfo(fields["login"], fields["password"])
    if conn_type in _SQL_DRIVERS:
        if not host:
            raise ConnectionFormatError(f"{conn_type} connection without a host")
        address = f"{host}:{port}" if port else host
        query = {k: str(v) for k, v in extra.items() if k in _SQL_EXTRAS}
        suffix = f"?{urlencode(query)}" if query else ""
        return f"{_SQL_DRIVERS[conn_type]}://{auth}{address}/{schema}{suffix}"
    if conn_type == "sqlite":
        path = host or schema
        if not path:
            raise ConnectionFormatError("sqlite connection without a path")
        return f"sqlite:///{path}"  # an absolute path gives the four slashes SQLAlchemy wants
    if conn_type in ("fs", "file"):
        path = extra.get("path") or (host + ("/" + schema if schema else ""))
        if not path:
            raise ConnectionFormatError(f"{conn_type} connection without a path")
        return str(path)
    if conn_type in ("http", "https"):
        if not host:
            raise ConnectionFormatError(f"{conn_type} connection without a host")
        protocol, base = conn_type, schema
        if schema in ("http", "https"):
            protocol, base = schema, ""  # Airflow's HTTP connections keep the protocol here
        if "://" in host:  # Airflow lets the host be a whole URL
            protocol, host = host.split("://", 1)
        address = f"{host}:{port}" if port else host
        return f"{protocol}://{auth}{address}" + (f"/{base}" if base else "")
    raise ConnectionFormatError(
        f"connection type {conn_type or '<none>'!r} is not supported "
        "(mysql, mariadb, postgres, sqlite, fs, http, https)"
    )
