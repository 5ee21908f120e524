"""Fair use of the worker pool: a bound on the requests one share (a tenant) has in flight.

Callers say whose work follows with `sharing(key)`; the renderer then lets each key hold at most
`per_key` workers at once, so a tenant sending runaway templates slows only itself. Work outside
any `sharing` block (the CLI, benchmarks) is not bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar

from promptlogic.rendering.errors import RendererUnavailable

_current: ContextVar[Hashable | None] = ContextVar("render_share", default=None)


@contextmanager
def sharing(key: Hashable) -> Iterator[None]:
    """Count the render work started inside this block against `key`."""
    token = _current.set(key)
    try:
        yield
    finally:
        _current.reset(token)


class Shares:
    def __init__(self, per_key: int, wait_seconds: float) -> None:
        self.per_key = per_key
        self.wait_seconds = wait_seconds
        self._slots: dict[Hashable, asyncio.Semaphore] = {}
        self._holders: dict[Hashable, int] = {}

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        key = _current.get()
        if key is None:
            yield
            return
        semaphore = self._slots.setdefault(key, asyncio.Semaphore(self.per_key))
        self._holders[key] = self._holders.get(key, 0) + 1
        try:
            try:
                if semaphore.locked():
                    await asyncio.wait_for(semaphore.acquire(), self.wait_seconds)
                else:  # a free slot: taken at once, without a timer and a task to wait in
                    await semaphore.acquire()
            except TimeoutError:
                raise RendererUnavailable(
                    f"Too many of your renders are running at once (at most {self.per_key}); "
                    "retry shortly."
                ) from None
            try:
                yield
            finally:
                semaphore.release()
        finally:
            self._holders[key] -= 1
            if not self._holders[key]:  # nobody holds or waits: forget the key
                del self._holders[key], self._slots[key]
