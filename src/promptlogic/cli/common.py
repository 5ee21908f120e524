"""Plumbing shared by the CLI commands: settings, failing with a message, transactions, output."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.db.engine import commit, create_engine, create_sessionmaker
from promptlogic.db.migrations import SchemaBehind, ensure_at_head, upgrade
from promptlogic.errors import Problem
from promptlogic.runtime import resolve_settings
from promptlogic.settings import Settings

T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def load_settings() -> tuple[Settings, bool]:
    """Settings with a concrete database, and whether that database is the embedded default."""
    try:
        configured = Settings()
    except ValidationError as exc:
        # Name the variables, never echo their values: a URL may carry a password.
        problems = "; ".join(
            f"PROMPTLOGIC_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}"
            if e["loc"]
            else str(e["msg"])
            for e in exc.errors()
        )
        return fail(f"invalid settings: {problems}")
    return resolve_settings(configured), configured.embedded


def fail(message: str) -> Any:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def run(work: Awaitable[T]) -> T:
    """Run a coroutine, turning the failures a user can act on into one line on stderr."""
    try:
        return asyncio.run(work)  # type: ignore[arg-type]
    except Problem as problem:
        return fail(problem.detail)
    except SchemaBehind as exc:
        return fail(str(exc))
    except (OSError, DBAPIError) as exc:
        reason = getattr(exc, "orig", None) or exc
        return fail(f"cannot reach the database ({reason.__class__.__name__}: {reason})")


def in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction on a migrated database.

    The embedded default migrates itself; an external database must be migrated on purpose.
    """
    settings, embedded = load_settings()

    async def transaction() -> T:
        engine = create_engine(settings)
        try:
            await (upgrade(engine) if embedded else ensure_at_head(engine))
            async with create_sessionmaker(engine)() as session:
                result = await work(session)
                await commit(session)
                return result
        finally:
            await engine.dispose()

    return run(transaction())


def emit(data: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, indent=2, default=str) if as_json else text)
