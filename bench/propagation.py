"""Propagation latency of a label move to a second worker process.

Starts two `promptlogic serve` processes on one database. Each round moves `production` of
`support-triage` between versions 1 and 2 through worker A, then polls worker B's render until
it serves the new version; the time from A's response to B's first new answer is the sample.
Polling adds up to one render round trip (about a millisecond) to each sample.

    .venv/bin/python bench/propagation.py [--moves 200]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx
from common import bench_settings, percentiles, seed_tenant, server

from promptlogic.demo_prompts import EXAMPLE_VARIABLES


async def main(moves: int) -> None:
    settings = bench_settings()
    key = await seed_tenant(settings)
    headers = {"Authorization": f"Bearer {key}"}
    with server(settings) as worker_a, server(settings) as worker_b:
        async with httpx.AsyncClient(timeout=10, headers=headers) as client:
            prompt = f"{worker_a}/v1/prompts/support-triage"
            version = await client.get(f"{prompt}/versions/1")
            content = {
                k: v
                for k, v in version.json().items()
                if k in {"messages", "input_schema", "model", "response_format", "tools", "context"}
            }
            content["messages"][1]["content"] += "\n(v2)"
            response = await client.post(f"{prompt}/versions", json=content)
            assert response.status_code == 201, response.text
            render_b = f"{worker_b}/v1/prompts/support-triage/render"
            body = {"variables": EXAMPLE_VARIABLES}
            samples: list[float] = []
            current = 1
            for _ in range(moves):
                assert (await client.post(render_b, json=body)).json()["version"] == current
                target = 2 if current == 1 else 1
                moved = await client.put(
                    f"{prompt}/labels/production",
                    json={"version": target, "expected_version": current},
                )
                assert moved.status_code == 200, moved.text
                moved_at = time.perf_counter()
                while (await client.post(render_b, json=body)).json()["version"] != target:
                    if time.perf_counter() - moved_at > 5:
                        raise RuntimeError("worker B never saw the move")
                samples.append((time.perf_counter() - moved_at) * 1000)
                current = target
    print(f"label move → second worker serves it  n={len(samples)}  {percentiles(samples)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=200)
    asyncio.run(main(parser.parse_args().moves))
