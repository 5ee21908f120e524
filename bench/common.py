"""Shared set-up for benchmarks: a database, a tenant with the demo prompts, live servers."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

import httpx

from promptlogic.audit.service import OPERATOR
from promptlogic.db import embedded
from promptlogic.db.engine import commit, create_engine, create_sessionmaker
from promptlogic.db.migrations import upgrade
from promptlogic.demo import seed_demo_prompts
from promptlogic.rendering import Renderer
from promptlogic.settings import Settings
from promptlogic.tenancy import service as tenancy

BENCH_SECRET = "bench-secret-key-that-is-long-enough-0123456789"


def database_url() -> str:
    """PROMPTLOGIC_DATABASE_URL, or a database on an embedded Postgres kept for benchmarks."""
    if url := os.environ.get("PROMPTLOGIC_DATABASE_URL"):
        return url
    server = embedded.start_server(
        Path(__file__).resolve().parent.parent / ".promptlogic" / "bench-pgdata"
    )
    return embedded.ensure_database(server, "promptlogic_bench")


@contextlib.contextmanager
def scratch_database(name: str = "promptlogic_bench") -> Iterator[str]:
    """A database on a fresh embedded Postgres in a temporary directory, stopped and deleted
    afterwards: for benchmarks that load much data, so no developer's database is touched."""
    with tempfile.TemporaryDirectory(prefix="pl-bench-", ignore_cleanup_errors=True) as root:
        data_dir = Path(root) / "pgdata"
        server = embedded.start_server(data_dir, cleanup_mode="delete")
        try:
            yield embedded.ensure_database(server, name)
        finally:
            embedded.stop_server(data_dir)


def bench_settings() -> Settings:
    return Settings(database_url=database_url(), secret_key=BENCH_SECRET)  # type: ignore[arg-type]


async def seed_tenant(settings: Settings) -> str:
    """A fresh tenant with the demo prompts on `production`; returns an all-scopes API key."""
    engine = create_engine(settings)
    await upgrade(engine)
    async with create_sessionmaker(engine)() as session, Renderer(workers=1) as renderer:
        tenant = await tenancy.create_tenant(session, slug=f"bench-{time.time_ns()}", name="Bench")
        key = await tenancy.create_api_key(
            session, tenant_id=tenant.id, name="bench", scopes=["admin"], actor=OPERATOR
        )
        await seed_demo_prompts(session, tenant, renderer)
        await commit(session)
    await engine.dispose()
    return key.plaintext


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def live_server(
    settings: Settings,
    *,
    env: Mapping[str, str] | None = None,
    output: IO[bytes] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A `promptlogic serve` process (one worker) on a free port; yields its URL and process.

    `env` adds to or overrides the environment (log level `warning` unless it says otherwise);
    `output` receives the server's stdout and stderr (inherited when None).
    """
    port = free_port()
    env = {
        **os.environ,
        "PROMPTLOGIC_DATABASE_URL": settings.database_url or "",
        "PROMPTLOGIC_SECRET_KEY": BENCH_SECRET,
        "PROMPTLOGIC_LOG_LEVEL": "warning",
        **(env or {}),
    }
    command = [str(Path(sys.executable).parent / "promptlogic"), "serve", "--port", str(port)]
    process = subprocess.Popen(  # noqa: S603 - our own command line
        command, env=env, stdout=output, stderr=output
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not become ready")
            time.sleep(0.1)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def server(settings: Settings) -> Iterator[str]:
    """A `promptlogic serve` process (one worker) on a free port; yields its base URL."""
    with live_server(settings) as (url, _process):
        yield url


def percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return f"p50={at(0.50):7.2f} ms  p90={at(0.90):7.2f} ms  p99={at(0.99):7.2f} ms"
