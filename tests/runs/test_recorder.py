"""The run recorder on a real Postgres: batching, the final flush, durable mode, retries."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import asyncpg
import pytest
from sqlalchemy import event, text

from promptlogic.app import create_app
from promptlogic.db.notify import asyncpg_dsn
from promptlogic.runs.recorder import MAX_BACKOFF_SECONDS, RunNotRecorded, RunRecorder
from promptlogic.runs.service import RunRecord
from tests.conftest import running
from tests.factories import make_tenant

SECRET_INPUT = "customer-secret-4242"


def a_run(tenant, **fields) -> RunRecord:
    values = {
        "prompt": "triage",
        "principal_type": "api_key",
        "principal_name": "app",
        "status": "succeeded",
        "latency_ms": 3,
        "inputs": {"note": SECRET_INPUT},
        "output": f"answer for {SECRET_INPUT}",
        **fields,
    }
    return RunRecord(tenant_id=tenant.id, **values)


@contextmanager
def counting_inserts(engine) -> Iterator[list[int]]:
    """Counts INSERTs into `runs` as they reach the driver (an executemany counts once)."""
    seen: list[int] = []

    def before(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO RUNS"):
            seen.append(len(parameters) if executemany else 1)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)


async def count_runs(session) -> int:
    return await session.scalar(text("SELECT count(*) FROM runs"))


@pytest.fixture
async def recorder(app, clean) -> AsyncIterator[RunRecorder]:
    started = RunRecorder(app.state.sessionmaker, interval=0.05, batch_size=100)
    await started.start()
    yield started
    await started.stop()


async def test_concurrent_runs_are_written_in_few_insert_statements(app, session, tenant, recorder):
    async def client_runs(n: int) -> None:
        for _ in range(n):
            recorder.record(a_run(tenant))
            await asyncio.sleep(0)  # other requests interleave, as on a busy worker

    with counting_inserts(app.state.engine) as inserts:
        await asyncio.gather(*(client_runs(20) for _ in range(50)))
        await recorder.stop()

    assert await count_runs(session) == 1000
    assert sum(inserts) == 1000
    assert len(inserts) <= 20, f"{len(inserts)} INSERT statements for 1000 runs"


async def test_stop_writes_every_buffered_run(app, session, tenant):
    recorder = RunRecorder(app.state.sessionmaker, interval=60, batch_size=10_000)
    await recorder.start()
    for _ in range(250):
        recorder.record(a_run(tenant))
    await recorder.stop()
    assert await count_runs(session) == 250


async def test_stopping_the_app_flushes_its_recorder(settings, session, tenant):
    async with running(create_app(settings)) as app:
        assert app.state.run_recorder.durable is False
        for _ in range(30):
            app.state.run_recorder.record(a_run(tenant))
    assert await count_runs(session) == 30


async def test_durable_record_is_committed_when_it_returns(app, database_url, tenant):
    recorder = RunRecorder(app.state.sessionmaker, interval=60, durable=True)
    await recorder.start()
    try:
        run = a_run(tenant)
        await recorder.persist(run)
        other = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            found = await other.fetchval("SELECT count(*) FROM runs WHERE id = $1", run.id)
        finally:
            await other.close()
        assert found == 1
    finally:
        await recorder.stop()


async def test_concurrent_durable_records_share_commits(app, session, tenant):
    recorder = RunRecorder(app.state.sessionmaker, interval=60, durable=True)
    await recorder.start()
    try:
        with counting_inserts(app.state.engine) as inserts:
            await asyncio.gather(*(recorder.record_durably(a_run(tenant)) for _ in range(200)))
        assert await count_runs(session) == 200
        assert len(inserts) <= 10, f"{len(inserts)} transactions for 200 durable runs"
    finally:
        await recorder.stop()


async def _rename(app, old: str, new: str) -> None:
    async with app.state.engine.begin() as connection:
        await connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
    # A pooled connection's prepared INSERT names the table by its id, not its name, and
    # would go on writing to the renamed table: start every later write on a new connection.
    await app.state.engine.dispose()


async def test_a_failed_write_is_kept_and_retried(app, session, tenant, recorder, caplog):
    caplog.set_level(logging.WARNING, logger="promptlogic.runs.recorder")
    await _rename(app, "runs", "runs_away")  # the database refuses every write
    try:
        for _ in range(10):
            recorder.record(a_run(tenant))
        for _ in range(100):
            if "could not write" in caplog.text:
                break
            await asyncio.sleep(0.02)
        assert "could not write 10 run records" in caplog.text
        assert await session.scalar(text("SELECT count(*) FROM runs_away")) == 0
        await session.rollback()  # release the table for the rename back
    finally:
        await _rename(app, "runs_away", "runs")

    # The next retry comes within the longest backoff (under load, failures pile up while the
    # table is away and the backoff grows to its cap). Waiting for the rows, not for an empty
    # buffer: a batch being written has left the buffer before its transaction commits.
    async def written() -> int:
        async with app.state.sessionmaker() as fresh:
            return await count_runs(fresh)

    for _ in range(int((MAX_BACKOFF_SECONDS + 5) / 0.05)):
        if await written() == 10:
            break
        await asyncio.sleep(0.05)
    assert await written() == 10
    assert recorder.buffered == 0
    assert SECRET_INPUT not in caplog.text


async def test_a_run_the_database_refuses_does_not_hold_back_the_others(
    app, session, tenant, caplog
):
    caplog.set_level(logging.WARNING, logger="promptlogic.runs.recorder")
    recorder = RunRecorder(app.state.sessionmaker, interval=0.02, max_attempts=2)
    await recorder.start()
    bad = a_run(tenant, output="NUL \x00 cannot be stored")
    good = [a_run(tenant) for _ in range(5)]
    for run in [good[0], bad, *good[1:]]:
        recorder.record(run)
    for _ in range(200):
        if recorder.buffered == 0:
            break
        await asyncio.sleep(0.02)
    await recorder.stop()

    ids = set((await session.scalars(text("SELECT id FROM runs"))).all())
    assert ids == {run.id for run in good}
    assert f"dropped run {bad.id}" in caplog.text
    assert SECRET_INPUT not in caplog.text


async def test_a_batch_of_runs_of_a_deleted_tenant_is_dropped_not_retried_forever(
    app, session, tenant, caplog
):
    caplog.set_level(logging.WARNING, logger="promptlogic.runs.recorder")
    recorder = RunRecorder(app.state.sessionmaker, interval=0.02, max_attempts=2)
    await recorder.start()
    gone = await make_tenant(session, "gone")
    orphans = [a_run(gone) for _ in range(3)]
    await session.execute(text("DELETE FROM tenants WHERE id = :id"), {"id": gone.id})
    await session.commit()
    for run in orphans:
        recorder.record(run)

    def all_dropped() -> bool:
        return all(f"dropped run {run.id}" in caplog.text for run in orphans)

    for _ in range(250):
        if all_dropped():
            break
        await asyncio.sleep(0.02)
    assert all_dropped()
    assert recorder.buffered == 0
    recorder.record(a_run(tenant))  # and the recorder still writes what it can
    await recorder.stop()
    assert await count_runs(session) == 1


async def test_a_durable_record_that_cannot_be_written_raises(app, tenant, caplog):
    recorder = RunRecorder(app.state.sessionmaker, interval=0.02, max_attempts=2, durable=True)
    await recorder.start()
    try:
        with pytest.raises(RunNotRecorded):
            await recorder.record_durably(a_run(tenant, output="\x00"))
    finally:
        await recorder.stop()
