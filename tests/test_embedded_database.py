"""The embedded Postgres: sized shared buffers, applied by one restart, and stopped on leaving."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from promptlogic.db import embedded

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("PROMPTLOGIC_TEST_DATABASE_URL")),
    reason="the embedded Postgres is not in use",
)


OTHER_CLIENTS = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


def shared_buffers(server: object) -> tuple[int, bool]:
    """The running value in MB, and whether another one waits for a restart."""
    row = embedded._query(
        server,
        "SELECT setting::bigint * 8 / 1024, pending_restart FROM pg_settings"
        " WHERE name = 'shared_buffers'",
    )
    megabytes, pending = row.split("|")
    return int(megabytes), pending == "t"


def eventually(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_shared_buffers_are_a_quarter_of_memory_within_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def machine_with(megabytes: int) -> None:
        pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": megabytes * 256}
        monkeypatch.setattr(os, "sysconf", pages.__getitem__)

    machine_with(2048)
    assert embedded.shared_buffers_mb() == 512
    machine_with(256)
    assert embedded.shared_buffers_mb() == embedded.MIN_SHARED_BUFFERS_MB
    machine_with(64 * 1024)
    assert embedded.shared_buffers_mb() == embedded.MAX_SHARED_BUFFERS_MB


def test_a_new_server_runs_with_its_shared_buffers_and_stops_when_left(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    server = embedded.start_server(data_dir, cleanup_mode="delete")
    try:
        assert shared_buffers(server) == (embedded.shared_buffers_mb(), False)
        postmaster = server.get_pid()
    finally:
        embedded.stop_server(data_dir)
    # The restart gave the server a new process id; leaving must stop that one.
    eventually(lambda: not running(postmaster))
    assert not data_dir.exists()


def test_another_value_waits_for_the_server_to_be_free(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    server = embedded.start_server(data_dir, cleanup_mode="delete")
    try:
        with subprocess.Popen(
            [*embedded.psql_command(server), "-q"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        ) as client:
            # psql stays connected, reading stdin, until told to quit.
            eventually(lambda: embedded._query(server, OTHER_CLIENTS) != "0")
            embedded._apply_shared_buffers(server, 256)
            assert shared_buffers(server) == (embedded.shared_buffers_mb(), True)
            client.communicate(b"\\q\n", timeout=10)

        embedded._apply_shared_buffers(server, 256)
        assert shared_buffers(server) == (256, False)
    finally:
        embedded.stop_server(data_dir)
