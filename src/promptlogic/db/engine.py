"""The async engine, the per-request session and its transaction boundary."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from promptlogic.settings import Settings

AFTER_COMMIT = "after_commit"


def create_engine(settings: Settings) -> AsyncEngine:
    assert settings.database_url, "resolve the database before creating an engine"
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        connect_args={"timeout": settings.db_timeout_seconds},
    )


def create_sessionmaker(
    engine: AsyncEngine, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions for `engine`; `info` is copied into every session (e.g. the change listener)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info)


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's transaction has committed (never on rollback)."""
    session.info.setdefault(AFTER_COMMIT, []).append(callback)


async def commit(session: AsyncSession) -> None:
    """Commit, then run the callbacks registered with `after_commit`."""
    await session.commit()
    for callback in session.info.pop(AFTER_COMMIT, []):
        callback()


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: committed before the response is sent, rolled back on error."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await commit(session)


SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]
