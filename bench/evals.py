"""An eval of 1,000 cases against a fake upstream that answers after 200 ms: wall time, cases/s
at the default concurrency, and the worker's memory.

The set-up, all real processes on a fresh embedded Postgres (deleted afterwards): the fake
upstream (`bench/fake_upstream.py --delay 0.2`), one `promptlogic serve` (the API: a provider
connection to the fake, a dataset of `--cases` cases, the eval), and one `promptlogic worker`,
which runs the eval from the job queue. The eval is the demo `support-triage` prompt scored by
`json_field` on `priority` (the fake's answer passes every case). Wall time is the eval's own
`started_at` to `finished_at`; memory is the worker's resident set, sampled every 0.2 s: its own
peak (VmHWM) and the peak of its process tree (the worker and its render processes).

    .venv/bin/python bench/evals.py                       # 1,000 cases, about a minute
    .venv/bin/python bench/evals.py --cases 200 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
from common import BENCH_SECRET, live_server, scratch_database, seed_tenant
from run_overhead import upstream

from promptlogic.settings import Settings

CASE_BATCH = 1_000  # cases per POST (the API's limit)


def _rss_kib(pid: int, field: str = "VmRSS") -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (from /proc's children lists)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(child) for child in children)
    return found


@contextlib.contextmanager
def worker(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "PROMPTLOGIC_DATABASE_URL": settings.database_url or "",
        "PROMPTLOGIC_SECRET_KEY": BENCH_SECRET,
        "PROMPTLOGIC_LOG_LEVEL": "warning",
    }
    command = [str(Path(sys.executable).parent / "promptlogic"), "worker"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)  # noqa: S603 - ours
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def _cases(count: int) -> list[dict]:
    return [
        {
            "inputs": {
                "customer_tier": ("free", "pro", "enterprise")[index % 3],
                "subject": f"Order {1000 + index}",
                "message": f"I was charged twice for order {1000 + index}. Refund one?",
            },
            "expected": {"priority": "normal"},
        }
        for index in range(count)
    ]


def main(args: argparse.Namespace) -> None:
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)")
    with scratch_database("promptlogic_bench_evals") as url:
        settings = Settings(database_url=url, secret_key=BENCH_SECRET)  # type: ignore[arg-type]
        key = asyncio.run(seed_tenant(settings))
        headers = {"Authorization": f"Bearer {key}"}
        with upstream() as fake, live_server(settings) as (base, _server):
            fake.set_delay(args.delay)
            api = httpx.Client(base_url=base, headers=headers, timeout=60)
            api.post(
                "/v1/providers",
                json={
                    "name": "fake",
                    "kind": "openai_compatible",
                    "base_url": fake.base_url,
                    "api_key": "sk-bench-0123456789",
                    "is_default": True,
                },
            ).raise_for_status()
            api.post("/v1/datasets", json={"name": "tickets"}).raise_for_status()
            cases = _cases(args.cases)
            for start in range(0, len(cases), CASE_BATCH):
                api.post(
                    "/v1/datasets/tickets/cases", json=cases[start : start + CASE_BATCH]
                ).raise_for_status()
            body = {
                "prompt": "support-triage",
                "label": "production",
                "dataset": "tickets",
                "evaluators": [{"type": "json_field", "path": "priority"}],
            }
            if args.concurrency:
                body["concurrency"] = args.concurrency
            with worker(settings) as process:
                created = api.post("/v1/evals", json=body)
                created.raise_for_status()
                eval_id = created.json()["id"]
                concurrency = created.json()["concurrency"]
                tree_peak, sampled = 0, time.monotonic()
                while True:
                    tree_peak = max(tree_peak, sum(_rss_kib(pid) for pid in _tree(process.pid)))
                    if time.monotonic() - sampled > 1:
                        sampled = time.monotonic()
                        state = api.get(f"/v1/evals/{eval_id}").json()
                        if state["status"] in ("succeeded", "failed", "cancelled"):
                            break
                        if process.poll() is not None:
                            raise RuntimeError("the worker exited")
                    time.sleep(0.2)
                own_peak = _rss_kib(process.pid, "VmHWM")
            summary = state["summary"] or {}
    started = datetime.fromisoformat(state["started_at"])
    finished = datetime.fromisoformat(state["finished_at"])
    wall = (finished - started).total_seconds()
    total = state["progress"]["total"]
    print(f"eval {eval_id}: {state['status']}, {state['progress']['completed']}/{total} cases")
    print(f"  upstream delay {args.delay * 1000:.0f} ms, concurrency {concurrency}")
    print(f"  wall time {wall:.1f} s, {total / wall:.1f} cases/s")
    print(
        f"  (the floor at this concurrency: {total * args.delay / concurrency:.1f} s, "
        f"{concurrency / args.delay:.1f} cases/s)"
    )
    print(f"  pass rate {summary.get('pass_rate')}, run latency {summary.get('latency_ms')}")
    print(
        f"  worker memory: peak RSS {own_peak / 1024:.0f} MiB (process), "
        f"{tree_peak / 1024:.0f} MiB (with its render processes)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds the upstream waits")
    parser.add_argument("--concurrency", type=int, default=0, help="default: the eval's default")
    main(parser.parse_args())
