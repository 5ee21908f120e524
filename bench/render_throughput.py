"""Render throughput of one worker over HTTP, against `/healthz` on the same worker.

Starts `promptlogic serve` (one worker, its render pool) on the embedded Postgres (or
PROMPTLOGIC_DATABASE_URL), seeds a tenant with the demo `support-triage` prompt (which includes
`company-policy`), and drives it from this process with CONCURRENCY keep-alive connections for
SECONDS each. The load generator shares the machine's cores with the server, so the figures are
a floor for what the worker does alone.

    .venv/bin/python bench/render_throughput.py [--seconds 10] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx
from common import bench_settings, percentiles, seed_tenant, server

from promptlogic.demo_prompts import EXAMPLE_VARIABLES


async def drive(
    url: str, method: str, body: dict | None, headers: dict, seconds: float, concurrency: int
) -> tuple[int, list[float]]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def one_connection() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.request(method, url, json=body, headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.text

        await asyncio.gather(*(one_connection() for _ in range(concurrency)))
    return len(latencies), latencies


async def main(seconds: float, concurrency: int) -> None:
    settings = bench_settings()
    key = await seed_tenant(settings)
    headers = {"Authorization": f"Bearer {key}"}
    render_body = {"variables": EXAMPLE_VARIABLES}
    with server(settings) as base:
        cases = [
            ("/healthz (ceiling)", "GET", f"{base}/healthz", None),
            (
                "render support-triage",
                "POST",
                f"{base}/v1/prompts/support-triage/render",
                render_body,
            ),
        ]
        for name, method, url, body in cases:
            await drive(url, method, body, headers, 1.0, concurrency)  # warm up
            count, latencies = await drive(url, method, body, headers, seconds, concurrency)
            print(f"{name:<24} {count / seconds:8.0f} req/s  {percentiles(latencies)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.seconds, arguments.concurrency))
