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
import statistics
import time
from collections.abc import Callable

import httpx
from common import bench_settings, seed_tenant

from promptlogic.app import create_app


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
    settings = bench_settings()
    key = await seed_tenant(settings)
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
