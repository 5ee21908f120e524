"""Change notifications through Postgres LISTEN/NOTIFY.

A write calls `publish` inside its transaction; Postgres delivers the notification to every
listening worker only if and when the transaction commits. Each worker runs one
`ChangeListener` on a dedicated connection and hands each notification to the handlers of its
topic, which drop what they cached. The writing worker also dispatches locally right after
commit, so its own next request never sees the old state. When the listening connection is
lost, notifications may be missed, so every cache is dropped at once, nothing is cached while
disconnected (the caches ask `connected`), and everything is dropped again on reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.db.engine import after_commit

log = logging.getLogger(__name__)

CHANNEL = "promptlogic_changes"
LISTENER_KEY = "change_listener"
LISTENER_APPLICATION_NAME = "promptlogic-listener"

Handler = Callable[[dict[str, Any]], None]


async def publish(session: AsyncSession, topic: str, *, local: bool = True, **payload: Any) -> None:
    """Announce a change to `topic`; delivered to every worker when the transaction commits.

    With `local`, this worker also handles it right after the commit, not only when the
    notification comes back (so its own next request sees the change). Handlers of `local`
    topics must be idempotent: they see the message twice.
    """
    message = {"topic": topic, **payload}
    await session.execute(
        text("SELECT pg_notify(:channel, :message)"),
        {"channel": CHANNEL, "message": json.dumps(message, default=str)},
    )
    listener: ChangeListener | None = session.info.get(LISTENER_KEY)
    if local and listener is not None:
        after_commit(session, lambda: listener.dispatch(message))


def asyncpg_dsn(database_url: str) -> str:
    """The plain libpq-style DSN asyncpg takes, from a SQLAlchemy URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class ChangeListener:
    """Keeps one LISTEN connection open, reconnecting with back-off, and dispatches by topic."""

    def __init__(self, database_url: str, *, ping_seconds: float = 5.0) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._ping_seconds = ping_seconds
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._resets: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic].append(handler)

    def on_reset(self, handler: Callable[[], None]) -> None:
        """Call `handler` whenever notifications may have been missed: when the connection is
        lost and again when it is back, before anything new is cached."""
        self._resets.append(handler)

    def dispatch(self, message: dict[str, Any]) -> None:
        for handler in self._handlers.get(message.get("topic", ""), ()):
            try:
                handler(message)
            except Exception:
                log.exception("change handler failed for %s", message.get("topic"))

    async def start(self, *, wait_seconds: float = 5.0) -> None:
        self._task = asyncio.create_task(self._run(), name="change-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), wait_seconds)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._listen_once()
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("change listener disconnected: %s", exc.__class__.__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _listen_once(self) -> None:
        connection = await asyncpg.connect(
            self._dsn, timeout=5, server_settings={"application_name": LISTENER_APPLICATION_NAME}
        )
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _conn: lost.set())
        try:
            await connection.add_listener(CHANNEL, self._on_notification)
            self._reset()
            self._connected.set()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self._ping_seconds)
                if not lost.is_set():
                    await connection.fetchval("SELECT 1", timeout=self._ping_seconds)
        finally:
            if self._connected.is_set():
                self._connected.clear()
                self._reset()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 1)

    def _reset(self) -> None:
        for reset in self._resets:
            try:
                reset()
            except Exception:
                log.exception("cache reset failed")

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            log.warning("ignoring a malformed change notification")
            return
        self.dispatch(message)
