"""The embedded default database: a real Postgres 16 (with pgvector) run by `pgserver`.

Used when no `PROMPTLOGIC_DATABASE_URL` is set. The data directory lives under
`PROMPTLOGIC_HOME`, so a second start reuses the same data. The server is shared by every
process that asks for the same directory and stops when the last of them exits.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DATABASE_NAME = "promptlogic"
_servers: dict[Path, Any] = {}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def start_server(data_dir: Path) -> Any:
    """Start (or join) the Postgres server whose data lives in `data_dir`."""
    data_dir = data_dir.resolve()
    if data_dir not in _servers:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

        data_dir.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded Postgres in %s", data_dir)
        _servers[data_dir] = pgserver.get_server(data_dir, cleanup_mode="stop")
    return _servers[data_dir]


def ensure_database(server: Any, name: str) -> str:
    """Create database `name` on `server` if missing; return its postgresql+asyncpg URL."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain database name: {name!r}")
    # `name` is checked against _IDENTIFIER above, so it is safe to interpolate.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{name}";')
    return asyncpg_url(server, name)


def asyncpg_url(server: Any, name: str) -> str:
    """The SQLAlchemy URL of database `name` on `server`, over its Unix socket."""
    socket_dir = server.get_uri().split("host=", 1)[1].split("&", 1)[0]
    return f"postgresql+asyncpg://postgres@/{name}?host={socket_dir}"


def embedded_database_url(home: Path) -> str:
    """Start the embedded server under `home` and return the URL of the app's database."""
    return ensure_database(start_server(home / "pgdata"), DATABASE_NAME)
