"""The `serve` and `migrate` commands, with the embedded database's preparation and banner."""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
from typing import Annotated, Any

import typer

from promptlogic.cli.common import load_settings, run
from promptlogic.db.engine import commit, create_engine, create_sessionmaker
from promptlogic.db.migrations import upgrade
from promptlogic.demo_prompts import EXAMPLE_VARIABLES
from promptlogic.rendering import Renderer
from promptlogic.settings import Settings

WORKER_STOP_SECONDS = 20.0


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    with_worker: Annotated[
        bool,
        typer.Option(
            "--with-worker", help="Also start one `promptlogic worker` (background jobs)."
        ),
    ] = False,
) -> None:
    """Start the HTTP service (embedded Postgres, migrated and seeded, when no URL is set)."""
    import uvicorn

    settings, embedded = load_settings()
    host = host or settings.host
    port = port or settings.port
    if embedded:
        credentials = run(_prepare_embedded(settings))
        _print_banner(settings, host, port, credentials, with_worker)
    # uvicorn re-raises SIGTERM after its graceful shutdown; exiting through SystemExit instead
    # runs the atexit hooks, which stop the embedded Postgres.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # Workers re-read the environment: hand them the resolved database and secret.
    os.environ["PROMPTLOGIC_DATABASE_URL"] = settings.database_url or ""
    os.environ["PROMPTLOGIC_SECRET_KEY"] = settings.resolved_secret_key()
    if with_worker:
        _start_worker()
    uvicorn.run(
        "promptlogic.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers or settings.workers,
        log_level=settings.log_level,
        proxy_headers=True,
    )


def _start_worker() -> None:
    """Start `promptlogic worker` as a child on the same database (the environment just set),
    and stop it on exit: SIGTERM, then SIGKILL if it has not finished its jobs in time (they
    are picked up again by the next worker)."""
    child = subprocess.Popen([sys.executable, "-m", "promptlogic.cli", "worker"])

    def stop() -> None:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=WORKER_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    # Registered after the embedded Postgres's hook, so it runs first (atexit is LIFO).
    atexit.register(stop)


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


async def _prepare_embedded(settings: Settings) -> Any:
    from promptlogic.demo import ensure_demo

    engine = create_engine(settings)
    try:
        await upgrade(engine)
        if not settings.seed_demo:
            return None
        async with create_sessionmaker(engine)() as session, Renderer(workers=1) as renderer:
            credentials = await ensure_demo(session, settings.home_dir, renderer)
            await commit(session)
            return credentials
    finally:
        await engine.dispose()


def _print_banner(
    settings: Settings, host: str, port: int, credentials: Any, with_worker: bool = False
) -> None:
    shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host  # noqa: S104
    url = f"http://{shown_host}:{port}"
    lines = [
        "",
        f"promptlogic is starting at {url}  (embedded Postgres in {settings.home_dir})",
        f"  Web UI:     {url}/ui",
        f"  API docs:   {url}/docs",
    ]
    if with_worker:
        worker = "  Worker:     one `promptlogic worker` runs background jobs (ingestion, evals)"
        lines.append(worker)
    if credentials is not None:
        lines += [
            f"  Demo login: {credentials.email} / {credentials.password}  (the web UI's admin)",
            f"  API key:    {credentials.api_key}",
            f'  Try it:     curl -H "Authorization: Bearer {credentials.api_key}" {url}/v1/me',
            f"  Run the demo prompt ({_provider_in_use(settings)}):",
            f'    curl -H "Authorization: Bearer {credentials.api_key}" '
            f"-H 'Content-Type: application/json' \\\n"
            f"      -d '{json.dumps({'variables': EXAMPLE_VARIABLES})}' \\\n"
            f"      {url}/v1/prompts/support-triage/run    # or …/render for the messages only",
            "  A real model: start with OPENAI_API_KEY=sk-… (and OPENAI_BASE_URL for any",
            "  OpenAI-compatible server), or add a connection with POST /v1/providers",
            '  {"name": "openai", "kind": "openai", "api_key": "sk-…", "is_default": true}',
        ]
    lines.append("")
    typer.echo("\n".join(lines))


def _provider_in_use(settings: Settings) -> str:
    if settings.openai_api_key is not None or settings.openai_base_url is not None:
        return "on OPENAI_BASE_URL" if settings.openai_base_url else "on OpenAI, OPENAI_API_KEY"
    return "on the offline provider: deterministic, no network"


def migrate() -> None:
    """Upgrade the database schema to the newest migration."""
    settings, _embedded = load_settings()

    async def upgrade_schema() -> None:
        engine = create_engine(settings)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    run(upgrade_schema())
    typer.echo("database is at head")
