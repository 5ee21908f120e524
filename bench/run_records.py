"""What recording a run costs: buffered (write-behind) against durable (group commit).

For each mode and concurrency, N runs are recorded by C concurrent tasks against the embedded
Postgres (or PROMPTLOGIC_DATABASE_URL). Reported: records/s until every record is committed,
and the latency a run's response would wait (the `record` / `record_durably` call).

    .venv/bin/python bench/run_records.py --runs 5000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from common import bench_settings

from promptlogic.db.engine import commit, create_engine, create_sessionmaker
from promptlogic.db.migrations import upgrade
from promptlogic.runs.recorder import RunRecorder
from promptlogic.runs.service import RunRecord
from promptlogic.tenancy import service as tenancy


def a_run(tenant_id: uuid.UUID) -> RunRecord:
    """A run of typical size: a few inputs, two rendered messages, a short JSON answer."""
    return RunRecord(
        tenant_id=tenant_id,
        prompt="support-triage",
        version=3,
        label="production",
        principal_type="api_key",
        principal_name="bench",
        status="succeeded",
        latency_ms=420,
        inputs={"ticket": "My invoice shows the wrong amount. " * 4, "tier": "gold"},
        messages=[
            {"role": "system", "content": "You triage support tickets. " * 10},
            {"role": "user", "content": "My invoice shows the wrong amount. " * 4},
        ],
        output='{"category": "billing", "priority": "high"}',
        parsed={"category": "billing", "priority": "high"},
        model="gpt-4o-mini",
        provider="offline",
        input_tokens=180,
        output_tokens=14,
        metadata={"source": "bench"},
    )


async def measure(
    recorder: RunRecorder, tenant_id: uuid.UUID, runs: int, concurrency: int
) -> tuple[float, list[float]]:
    """Records/s until all are committed, and each record call's latency in seconds."""
    latencies: list[float] = []

    async def worker(count: int) -> None:
        for _ in range(count):
            run = a_run(tenant_id)
            started = time.perf_counter()
            await recorder.persist(run)
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0)  # a request's other work lets the loop turn

    started = time.perf_counter()
    await asyncio.gather(*(worker(runs // concurrency) for _ in range(concurrency)))
    await recorder.flush()
    elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1e6 if len(values) > 1 else values[0] * 1e6


async def main(runs: int, concurrencies: list[int]) -> None:
    engine = create_engine(bench_settings())
    await upgrade(engine)
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session:
        tenant = await tenancy.create_tenant(
            session, slug=f"bench-runs-{time.time_ns()}", name="Bench runs"
        )
        await commit(session)
    print(f"{'mode':9} {'conc':>5} {'records/s':>10} {'p50 µs':>9} {'p99 µs':>9}")
    for durable in (False, True):
        for concurrency in concurrencies:
            recorder = RunRecorder(sessionmaker, interval=1.0, durable=durable)
            await recorder.start()
            await measure(recorder, tenant.id, 200, concurrency)  # warm up
            rate, latencies = await measure(recorder, tenant.id, runs, concurrency)
            await recorder.stop()
            mode = "durable" if durable else "buffered"
            print(
                f"{mode:9} {concurrency:>5} {rate:>10,.0f} "
                f"{pct(latencies, 50):>9,.1f} {pct(latencies, 99):>9,.1f}"
            )
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.concurrency))
