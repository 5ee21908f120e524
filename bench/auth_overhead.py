"""What authentication costs a request, with the key cached and on a cache miss.

Runs the app in-process (httpx over ASGI, no sockets) against the embedded Postgres, or against
PROMPTLOGIC_DATABASE_URL when set, and prints latency percentiles and throughput for:
`/healthz` (no auth, the floor), `/v1/me` with the key in the worker's cache (no database
trip), and `/v1/me` after the cache was dropped (one indexed lookup).

    make bench            # or: .venv/bin/python bench/auth_overhead.py --requests 3000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from promptlogic.app import create_app
from promptlogic.audit.service import OPERATOR
from promptlogic.db import embedded
from promptlogic.db.engine import commit, create_engine, create_sessionmaker
from promptlogic.db.migrations import upgrade
from promptlogic.settings import Settings
from promptlogic.tenancy import service

BENCH_SECRET = "bench-secret-key-that-is-long-enough-0123456789"


def _database_url() -> str:
    if url := os.environ.get("PROMPTLOGIC_DATABASE_URL"):
        return url
    server = embedded.start_server(Path(".promptlogic") / "bench-pgdata")
    return embedded.ensure_database(server, "promptlogic_bench")


async def _demo_key(settings: Settings) -> str:
    engine = create_engine(settings)
    await upgrade(engine)
    async with create_sessionmaker(engine)() as session:
        slug = f"bench-{time.time_ns()}"
        tenant = await service.create_tenant(session, slug=slug, name="Bench")
        created = await service.create_api_key(
            session, tenant_id=tenant.id, name="bench", scopes=["run"], actor=OPERATOR
        )
        await commit(session)
    await engine.dispose()
    return created.plaintext


async def _measure(
    client: httpx.AsyncClient,
    path: str,
    headers: dict[str, str],
    requests: int,
    before_each: Callable[[], None] = lambda: None,
) -> list[float]:
    for _ in range(50):  # warm up
        await client.get(path, headers=headers)
    timings = []
    for _ in range(requests):
        before_each()
        started = time.perf_counter()
        response = await client.get(path, headers=headers)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return timings


def _report(name: str, timings: list[float]) -> None:
    ms = sorted(t * 1000 for t in timings)
    p = statistics.quantiles(ms, n=100)
    total = sum(timings)
    print(
        f"{name:<28} n={len(ms):>5}  p50={p[49]:6.3f} ms  p90={p[89]:6.3f} ms  "
        f"p99={p[98]:6.3f} ms  {len(ms) / total:8.0f} req/s (sequential)"
    )


async def main(requests: int) -> None:
    settings = Settings(database_url=_database_url(), secret_key=BENCH_SECRET)  # type: ignore[arg-type]
    key = await _demo_key(settings)
    auth = {"Authorization": f"Bearer {key}"}
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            _report("/healthz (no auth)", await _measure(client, "/healthz", {}, requests))
            _report("/v1/me (key cached)", await _measure(client, "/v1/me", auth, requests))
            cache = app.state.authenticator.cache
            _report(
                "/v1/me (cache miss)",
                await _measure(client, "/v1/me", auth, requests, before_each=cache.clear),
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    asyncio.run(main(parser.parse_args().requests))
