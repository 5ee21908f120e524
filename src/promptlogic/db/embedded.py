"""The embedded default database: a real Postgres 16 (with pgvector) run by `pgserver`.

Used when no `PROMPTLOGIC_DATABASE_URL` is set. The data directory lives under
`PROMPTLOGIC_HOME`, so a second start reuses the same data. The server is shared by every
process that asks for the same directory and stops when the last of them exits.

Postgres' own default of 128 MB of shared buffers is too small for a knowledge base: the HNSW
index of 100,000 chunks alone is 200 MB, and a search that reads its pages from the operating
system's cache instead of shared memory takes half as long again (bench/knowledge_search.py).
The embedded server gets a quarter of the machine's memory, at most `MAX_SHARED_BUFFERS_MB`.
Postgres reads the setting only when it starts, so a server found with another value is
restarted once, when no other process is connected to it (otherwise it applies at its next
start).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DATABASE_NAME = "promptlogic"
MIN_SHARED_BUFFERS_MB = 128  # Postgres' default
MAX_SHARED_BUFFERS_MB = 1024
_servers: dict[Path, Any] = {}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def start_server(data_dir: Path, *, cleanup_mode: str = "stop") -> Any:
    """Start (or join) the Postgres server whose data lives in `data_dir`; `cleanup_mode`
    "delete" removes the directory when the last process using it exits."""
    data_dir = data_dir.resolve()
    if data_dir not in _servers:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

        data_dir.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded Postgres in %s", data_dir)
        server = pgserver.get_server(data_dir, cleanup_mode=cleanup_mode)
        # Under pgserver's lock between processes, which its start takes too: a process
        # starting meanwhile waits, then finds the server restarted.
        with pgserver.PostgresServer._lock:
            _apply_shared_buffers(server, shared_buffers_mb())
        _servers[data_dir] = server
    return _servers[data_dir]


def stop_server(data_dir: Path) -> None:
    """Leave the server of `data_dir`: it stops (and with "delete", its directory goes) when no
    other process uses it."""
    server = _servers.pop(data_dir.resolve(), None)
    if server is not None:
        server.cleanup()


def shared_buffers_mb() -> int:
    """A quarter of the machine's memory, between Postgres' default and the maximum."""
    try:
        memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        return MIN_SHARED_BUFFERS_MB
    return max(MIN_SHARED_BUFFERS_MB, min(MAX_SHARED_BUFFERS_MB, memory_mb // 4))


def _apply_shared_buffers(server: Any, megabytes: int) -> None:
    """Set the server's shared buffers, restarting it if it runs with another value and no
    other process is connected."""
    settings = _query(
        server,
        "SELECT (SELECT setting::bigint * 8 / 1024 FROM pg_settings"
        " WHERE name = 'shared_buffers'),"
        " (SELECT count(*) FROM pg_stat_activity"
        " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())",
    )
    current, others = (int(value) for value in settings.split("|"))
    if current == megabytes:
        return
    server.psql(f"ALTER SYSTEM SET shared_buffers = '{megabytes}MB';")
    if others:
        server.psql("SELECT pg_reload_conf();")  # so pg_settings shows it pending a restart
        log.info("shared_buffers %d MB applies at the server's next start", megabytes)
        return
    from pgserver._commands import pg_ctl
    from pgserver.utils import PostmasterInfo

    log.info("restarting embedded Postgres with shared_buffers %d MB", megabytes)
    pg_ctl(
        ["-w", "-m", "fast", "-l", str(server.log), "restart"],
        pgdata=server.pgdata,
        user=server.system_user,
        timeout=30,
    )
    # pgserver stops the server it started by its process id, which the restart changed.
    server._postmaster_info = PostmasterInfo.read_from_pgdata(server.pgdata)


def _query(server: Any, sql: str) -> str:
    """One row of `sql`'s result, as psql prints it unaligned ("a|b")."""
    output = subprocess.run(  # noqa: S603 - our own SQL, run by the bundled psql
        [*psql_command(server), "-Atq", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return output.stdout.strip()


def psql_command(server: Any) -> list[str]:
    """The bundled psql, connected to `server`, not reading the user's ~/.psqlrc."""
    from pgserver._commands import POSTGRES_BIN_PATH

    return [str(POSTGRES_BIN_PATH / "psql"), "-X", server.get_uri()]


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
