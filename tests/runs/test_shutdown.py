"""Stopping the real server under load: no run whose answer was sent loses its record.

`promptlogic serve` runs as a subprocess on a database of its own, its model calls answered by
the fake upstream after a short delay, so that runs are in flight whenever it is stopped.
Concurrent clients keep it busy; it is stopped mid-load, and every run id a client received
with a 200 must then be in the `runs` table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from promptlogic.db.engine import create_engine, create_sessionmaker
from promptlogic.db.migrations import upgrade
from promptlogic.db.notify import asyncpg_dsn
from tests.conftest import TEST_SECRET, make_settings
from tests.database import TestServer as PostgresServer  # not a test class: no collection
from tests.factories import KeyFixture, make_key, make_tenant
from tests.fakes import FakeOpenAI, Reply

log = logging.getLogger(__name__)

CLIENTS = 32
UPSTREAM_DELAY = 0.03  # seconds per model call: long enough for runs to be in flight
# Fewer than a batch (500 runs), and the flush interval is long: the records of the runs
# answered before the signal are still in the server's memory when it arrives.
ANSWERED_BEFORE_SIGNAL = 300
FLUSH_SECONDS = 30
LOAD_TIMEOUT = 30.0  # generous: a loaded 2-core machine must not fail on time alone
START_TIMEOUT = 60.0
EXIT_TIMEOUT = 30.0
RUN_BODY = {"variables": {"ticket": "Where is my parcel?"}}
PROMPT = {
    "name": "triage",
    "version": {
        "messages": [
            {"role": "system", "content": "Triage the ticket."},
            {"role": "user", "content": "{{ ticket }}"},
        ],
        "model": {"name": "gpt-4o-mini", "temperature": 0},
    },
}
# What the server logs when a record it was handed will not be written.
LOSS_MESSAGES = ("could not be written", "not written", "dropped run")


@dataclass
class Served:
    process: asyncio.subprocess.Process
    url: str
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        """The end of the server's output, for failure messages."""
        return "\n".join(self.log_text().splitlines()[-lines:])


@dataclass
class Load:
    """What the clients saw: the runs answered, and everything else, by kind."""

    answered: list[str] = field(default_factory=list)
    answered_after_signal: int = 0
    recorded_before_signal: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        return (
            f"answered {len(self.answered)} runs ({self.answered_after_signal} after the "
            f"signal), {self.recorded_before_signal} recorded before it; statuses "
            f"{dict(self.statuses)}; connections refused or cut after the signal: "
            f"{dict(self.transport_errors)}"
        )


@dataclass
class Keys:
    """The tenant `acme`'s keys: `admin` publishes the prompt, `runner` runs it."""

    admin: KeyFixture
    runner: KeyFixture


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
async def server_database(pg: PostgresServer) -> str:
    """A migrated database of this test's own: the server writes to it from another process."""
    url = await pg.create_database("shutdown")
    engine = create_engine(make_settings(url))
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    return url


@pytest.fixture
async def acme(server_database: str) -> Keys:
    engine = create_engine(make_settings(server_database))
    try:
        async with create_sessionmaker(engine)() as session:
            tenant = await make_tenant(session, "acme")
            admin = await make_key(session, tenant, ["admin"], name="deployer")
            runner = await make_key(session, tenant, ["run"], name="checkout")
    finally:
        await engine.dispose()
    return Keys(admin=admin, runner=runner)


@pytest.fixture
def upstream(fake_openai: FakeOpenAI) -> FakeOpenAI:
    fake_openai.set_default(Reply("On its way.", delay=UPSTREAM_DELAY))
    return fake_openai


@asynccontextmanager
async def serving(
    tmp_path: Path, database_url: str, upstream: FakeOpenAI, **settings: str
) -> AsyncIterator[Served]:
    """`promptlogic serve` (one worker) in a subprocess, ready; killed if the test leaves it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMPTLOGIC_", "OPENAI_"))}
    env |= {
        "PROMPTLOGIC_DATABASE_URL": database_url,
        "PROMPTLOGIC_SECRET_KEY": TEST_SECRET,
        "PROMPTLOGIC_HOME": str(tmp_path / "home"),
        "PROMPTLOGIC_PORT": str(port),
        "PROMPTLOGIC_WORKERS": "1",
        "PROMPTLOGIC_RENDER_WORKERS": "1",
        "PROMPTLOGIC_SEED_DEMO": "false",
        "PROMPTLOGIC_RUN_FLUSH_SECONDS": str(FLUSH_SECONDS),
        "OPENAI_BASE_URL": upstream.base_url,
        "OPENAI_API_KEY": "sk-fake",
        **{f"PROMPTLOGIC_{name.upper()}": value for name, value in settings.items()},
    }
    log_path = tmp_path / "server.log"
    command = [str(Path(sys.executable).parent / "promptlogic"), "serve"]
    with log_path.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, cwd=tmp_path, stdout=output, stderr=asyncio.subprocess.STDOUT
        )
    served = Served(process, f"http://127.0.0.1:{port}", log_path)
    try:
        await wait_until_ready(served)
        yield served
    finally:
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.wait(), timeout=EXIT_TIMEOUT)


async def wait_until_ready(served: Served) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with httpx.AsyncClient(base_url=served.url, timeout=5) as http:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/readyz")).status_code == 200:
                    return
            exited = served.process.returncode
            assert exited is None, f"the server exited ({exited}):\n{served.log_tail()}"
            assert time.monotonic() < deadline, f"the server is not ready:\n{served.log_tail()}"
            await asyncio.sleep(0.1)


async def publish_prompt(served: Served, acme: Keys) -> str:
    """The prompt `triage`, its version 1 on `production`, through the server's own API; then
    one run of it (the server works before the load starts), whose id is returned."""
    async with httpx.AsyncClient(base_url=served.url, headers=acme.admin.headers) as http:
        created = await http.post("/v1/prompts", json=PROMPT)
        assert created.status_code == 201, created.text
        moved = await http.put(
            "/v1/prompts/triage/labels/production",
            json={"version": 1, "expected_version": None},
        )
        assert moved.status_code == 200, moved.text
        first = await http.post(
            "/v1/prompts/triage/run", json=RUN_BODY, headers=acme.runner.headers
        )
        assert first.status_code == 200, first.text
        return first.json()["id"]


async def recorded_runs(database_url: str) -> dict[str, str]:
    """Every run in the table: id → status."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await connection.fetch("SELECT id, status FROM runs")
    finally:
        await connection.close()
    return {str(row["id"]): row["status"] for row in rows}


async def run_under_load(
    served: Served,
    runner: KeyFixture,
    database_url: str,
    stop: Callable[[], None],
    answered: list[str],
) -> Load:
    """Keep CLIENTS runs going; once enough were answered, `stop` the server mid-load.

    Before the signal every request must be answered; after it a refused or cut connection
    ends its client (that run was not answered, so nothing was promised). Returns once the
    server has exited and every client has ended.
    """
    load = Load(answered=list(answered))
    enough = asyncio.Event()
    signalled = asyncio.Event()

    async def client(http: httpx.AsyncClient) -> None:
        while True:
            try:
                response = await http.post("/v1/prompts/triage/run", json=RUN_BODY)
            except httpx.TransportError as exc:
                if not signalled.is_set():
                    pytest.fail(f"{exc!r} before the signal; server log:\n{served.log_tail()}")
                load.transport_errors[type(exc).__name__] += 1
                return
            load.statuses[response.status_code] += 1
            if response.status_code != 200 or response.json()["status"] != "succeeded":
                pytest.fail(
                    f"a run answered {response.status_code} {response.text} "
                    f"({'after' if signalled.is_set() else 'before'} the signal); "
                    f"server log:\n{served.log_tail()}"
                )
            body = response.json()
            load.answered.append(body["id"])
            if signalled.is_set():
                load.answered_after_signal += 1
            if len(load.answered) >= ANSWERED_BEFORE_SIGNAL:
                enough.set()

    async def server_exit() -> None:
        try:
            await asyncio.wait_for(served.process.wait(), timeout=EXIT_TIMEOUT)
        except TimeoutError:
            pytest.fail(f"the server did not exit after the signal:\n{served.log_tail()}")

    limits = httpx.Limits(max_connections=CLIENTS)
    async with (
        httpx.AsyncClient(
            base_url=served.url, headers=runner.headers, timeout=EXIT_TIMEOUT, limits=limits
        ) as http,
        asyncio.TaskGroup() as clients,
    ):
        for _ in range(CLIENTS):
            clients.create_task(client(http))
        try:
            await asyncio.wait_for(enough.wait(), timeout=LOAD_TIMEOUT)
        except TimeoutError:
            pytest.fail(f"too slow: {load.summary()}; server log:\n{served.log_tail()}")
        load.recorded_before_signal = len(await recorded_runs(database_url))
        signalled.set()
        stop()
        clients.create_task(server_exit())
    log.info(load.summary())
    return load


async def assert_every_answered_run_recorded(database_url: str, load: Load) -> None:
    recorded = await recorded_runs(database_url)
    missing = set(load.answered) - set(recorded)
    assert not missing, f"{len(missing)} answered runs not recorded: {load.summary()}"
    assert len(recorded) >= len(load.answered)
    assert {recorded[run_id] for run_id in load.answered} == {"succeeded"}


async def test_sigterm_under_load_writes_the_record_of_every_answered_run(
    tmp_path: Path, server_database: str, acme: Keys, upstream: FakeOpenAI
) -> None:
    async with serving(tmp_path, server_database, upstream) as served:
        first = await publish_prompt(served, acme)

        load = await run_under_load(
            served,
            acme.runner,
            server_database,
            lambda: served.process.send_signal(signal.SIGTERM),
            [first],
        )

        # `serve` turns uvicorn's re-raised SIGTERM into SystemExit(128 + SIGTERM) once the
        # graceful shutdown is over; dying of the signal itself would be -SIGTERM.
        assert served.process.returncode == 128 + signal.SIGTERM, served.log_tail()
    output = served.log_text()
    assert "Application shutdown complete" in output, served.log_tail()
    assert "Traceback" not in output, output
    assert not [line for line in output.splitlines() if any(m in line for m in LOSS_MESSAGES)]
    await assert_every_answered_run_recorded(server_database, load)
    # The test proves something only if the signal found records still unwritten, and runs
    # still in flight.
    assert load.recorded_before_signal < len(load.answered), load.summary()
    assert load.answered_after_signal > 0, load.summary()


async def test_sigkill_under_load_of_a_durable_server_loses_no_answered_run(
    tmp_path: Path, server_database: str, acme: Keys, upstream: FakeOpenAI
) -> None:
    async with serving(tmp_path, server_database, upstream, run_records="durable") as served:
        first = await publish_prompt(served, acme)

        load = await run_under_load(
            served, acme.runner, server_database, served.process.kill, [first]
        )

        assert served.process.returncode == -signal.SIGKILL, served.log_tail()
    await assert_every_answered_run_recorded(server_database, load)
    # Durable: each answer waited for its commit, so the table was never behind the answers.
    assert load.recorded_before_signal >= ANSWERED_BEFORE_SIGNAL, load.summary()
