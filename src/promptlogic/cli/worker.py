"""The `worker` command: runs background jobs (ingestion, evals) until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from promptlogic.cli.common import load_settings, run
from promptlogic.db.engine import create_engine
from promptlogic.db.migrations import upgrade
from promptlogic.settings import Settings

if TYPE_CHECKING:  # the queue's imports wait until a worker runs
    from promptlogic.jobs.worker import WorkerOptions


def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="Jobs this worker runs at a time.")
    ] = 2,
    stalled_after: Annotated[
        float,
        typer.Option(
            min=1.0, help="Seconds without heartbeat after which a job is picked up again."
        ),
    ] = 30.0,
) -> None:
    """Run background jobs on the same database as `serve` (embedded Postgres by default)."""
    from promptlogic.jobs.worker import WorkerOptions

    settings, embedded = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s:     worker: %(message)s"
    )
    options = WorkerOptions(concurrency=concurrency, stalled_after=timedelta(seconds=stalled_after))
    run(_work(settings, embedded, options))


async def _work(settings: Settings, embedded: bool, options: WorkerOptions) -> None:
    from promptlogic.jobs.worker import run_worker, worker_resources

    if embedded:  # the embedded default migrates itself, as `serve` does
        engine = create_engine(settings)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, shutdown.set)
    async with worker_resources(settings) as resources:
        typer.echo(f"promptlogic worker: running jobs, {options.concurrency} at a time", err=True)
        await run_worker(
            resources.sessionmaker,
            resources.embedders,
            settings.database_url or "",
            options,
            shutdown=shutdown,
            services=resources.services,
        )
    typer.echo("promptlogic worker: stopped", err=True)
