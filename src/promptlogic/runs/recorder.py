"""Write-behind of run records: noted in memory by the run path, written in batches.

`record` only appends to a buffer, so a run's response never waits on the database. A single
writer task inserts what has gathered, many runs per transaction, every `interval` seconds or
as soon as `batch_size` runs wait. `stop` writes everything still buffered, so a graceful
shutdown (SIGTERM) loses nothing; a hard kill loses at most what gathered since the last write.

`record_durably` is for `PROMPTLOGIC_RUN_RECORDS=durable`: it returns once the transaction
holding the run has committed. Waiting callers are written together (group commit): while one
transaction is in flight the next batch gathers, so the cost is about one commit per batch,
not per run.

On a failed write the batch goes back to the front of the buffer and is retried with backoff.
A batch refused by the database (not a lost connection) is retried row by row, so one bad run
cannot hold back the others; a run refused `max_attempts` times is dropped. Log lines name
counts and run ids, never inputs or outputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from promptlogic.runs.service import RunRecord, write_runs

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 5.0
STOP_RETRY_SECONDS = 0.2


class WriteHooks(Protocol):
    """What else happens when runs are written: inside the transaction, and after its commit."""

    async def on_write(self, session: AsyncSession, records: Sequence[RunRecord]) -> None: ...

    def on_written(self, records: Sequence[RunRecord]) -> None: ...


class RunNotRecorded(Exception):
    """A durable record could not be committed; the caller must not claim it was."""


@dataclass(slots=True)
class _Pending:
    run: RunRecord
    done: asyncio.Future[None] | None = None
    attempts: int = field(default=0)


def _is_transient(exc: BaseException) -> bool:
    """A lost or refused connection: worth retrying for as long as it takes."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError)


class RunRecorder:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        interval: float = 1.0,
        batch_size: int = 500,
        max_attempts: int = 5,
        max_buffered: int = 100_000,
        durable: bool = False,
        hooks: WriteHooks | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._hooks = hooks
        self._interval = interval
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._max_buffered = max_buffered
        self.durable = durable
        self._buffer: deque[_Pending] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._stopped = False
        self._task: asyncio.Task[None] | None = None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def record(self, run: RunRecord) -> None:
        """Buffer `run` for the next batch; never waits."""
        self._append(_Pending(run))
        if len(self._buffer) >= self._batch_size:
            self._wake.set()

    async def record_durably(self, run: RunRecord) -> None:
        """Return once `run` is committed; raise `RunNotRecorded` if it cannot be."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieve)  # no "never retrieved" noise if the caller left
        self._append(_Pending(run, done))
        self._wake.set()
        await asyncio.shield(done)  # a caller that gives up must not un-write the batch

    async def persist(self, run: RunRecord) -> None:
        """Record `run` the way the settings ask: buffered, or durable before returning."""
        if self.durable:
            await self.record_durably(run)
        else:
            self.record(run)

    def _append(self, pending: _Pending) -> None:
        if self._stopped:
            log.warning("run %s recorded after the recorder stopped; not written", pending.run.id)
        self._buffer.append(pending)
        if len(self._buffer) > self._max_buffered:
            dropped = self._buffer.popleft()
            log.error("run record buffer full; dropped run %s", dropped.run.id)
            _fail(dropped, RunNotRecorded("the run record buffer is full"))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="run-records-flush")

    async def stop(self) -> None:
        """Write everything buffered (retrying a little), then stop the writer."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        for _ in range(self._max_attempts):
            if await self.flush():
                self._stopped = True
                return
            await asyncio.sleep(STOP_RETRY_SECONDS)
        self._stopped = True
        if self._buffer:
            log.error("%d run records could not be written before shutdown", len(self._buffer))
            while self._buffer:
                _fail(self._buffer.popleft(), RunNotRecorded("shut down before it was written"))

    async def flush(self) -> bool:
        """Write every buffered run, a batch per transaction; False if a write failed."""
        while self._buffer:
            if not await self._write_batch():
                return False
        return True

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            self._wake.clear()
            if await self.flush():
                failures = 0
                continue
            failures += 1
            backoff = min(self._interval * 2 ** (failures - 1), MAX_BACKOFF_SECONDS)
            with contextlib.suppress(TimeoutError):
                # Sleep out the backoff unless stop() asks for the final flush.
                await asyncio.wait_for(self._until_stopping(), timeout=backoff)

    async def _until_stopping(self) -> None:
        while not self._stopping:
            self._wake.clear()
            await self._wake.wait()

    async def _write_batch(self) -> bool:
        size = min(len(self._buffer), self._batch_size)
        batch = [self._buffer.popleft() for _ in range(size)]
        try:
            await self._insert(batch)
        except asyncio.CancelledError:
            self._buffer.extendleft(reversed(batch))
            raise
        except Exception as exc:
            if _is_transient(exc) or len(batch) == 1:
                self._retry_later(batch, exc)
                return False
            return await self._write_one_by_one(batch, exc)
        self._written(batch)
        return True

    async def _insert(self, batch: list[_Pending]) -> None:
        runs = [pending.run for pending in batch]
        async with self._sessionmaker() as session, session.begin():
            await write_runs(session, runs)
            if self._hooks is not None:
                await self._hooks.on_write(session, runs)

    def _written(self, batch: list[_Pending]) -> None:
        if self._hooks is not None:
            self._hooks.on_written([pending.run for pending in batch])
        for pending in batch:
            _succeed(pending)

    async def _write_one_by_one(self, batch: list[_Pending], batch_error: Exception) -> bool:
        """Find the runs the database refuses: each in a savepoint, the rest still together."""
        written: list[_Pending] = []
        refused: list[tuple[_Pending, Exception]] = []
        try:
            async with self._sessionmaker() as session, session.begin():
                for pending in batch:
                    try:
                        async with session.begin_nested():
                            await write_runs(session, [pending.run])
                    except Exception as exc:
                        if _is_transient(exc):
                            raise
                        refused.append((pending, exc))
                    else:
                        written.append(pending)
                if self._hooks is not None and written:
                    await self._hooks.on_write(session, [pending.run for pending in written])
        except asyncio.CancelledError:
            self._buffer.extendleft(reversed(batch))
            raise
        except Exception as exc:
            self._retry_later(batch, exc)
            return False
        self._written(written)
        if not written:
            # Every row refused: when the table is missing or not ours to write (a migration
            # under way), no run is at fault and none is dropped; a refusal of the rows
            # themselves (a deleted tenant) counts against each run as usual.
            self._retry_later(batch, batch_error, transient=_is_table_problem(batch_error))
            return False
        for pending, exc in refused:
            self._retry_later([pending], exc)
        return True

    def _retry_later(
        self, batch: list[_Pending], exc: BaseException, *, transient: bool | None = None
    ) -> None:
        """Put `batch` back in front; drop runs refused too often, but never for a problem
        of the database rather than of the run (a lost connection, a table being migrated)."""
        if transient is None:
            transient = _is_transient(exc)
        kept: list[_Pending] = []
        for pending in batch:
            pending.attempts += 1
            if pending.attempts < self._max_attempts:
                kept.append(pending)
                continue
            _fail(pending, RunNotRecorded("the database did not accept the run record"))
            if transient:
                kept.append(pending)  # the waiter is told, the run is still written later
            else:
                log.error(
                    "dropped run %s after %d refused writes (%s)",
                    pending.run.id,
                    pending.attempts,
                    type(exc).__name__,
                )
        log.warning(
            "could not write %d run records (%s); will retry", len(batch), type(exc).__name__
        )
        self._buffer.extendleft(reversed(kept))


def _is_table_problem(exc: BaseException) -> bool:
    """SQLSTATE class 42 (undefined table or column, insufficient privilege): the statement
    cannot work for any row, so the schema, not a run, is at fault."""
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith("42")


def _retrieve(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()


def _succeed(pending: _Pending) -> None:
    if pending.done is not None and not pending.done.done():
        pending.done.set_result(None)


def _fail(pending: _Pending, exc: Exception) -> None:
    if pending.done is not None and not pending.done.done():
        pending.done.set_exception(exc)
