"""A pool of render worker processes, driven from the event loop without ever blocking it.

Why processes: work stuck inside one C call (compiling a huge generated module, one giant
join or sort) cannot be interrupted in a thread, and a thread shares the web process's memory
and its GIL. Each worker is a fresh
interpreter (`python -I`, exec'd, never forked from this process and its event loop, database
connections or secrets), reached through pipes that asyncio reads. A request that overruns its
deadline gets its worker killed; a replacement starts in the background. A worker that dies
unexpectedly is replaced too, and the request it held is retried once on another.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from typing import Any

from promptlogic.rendering import protocol
from promptlogic.rendering.worker import BOOTSTRAP

log = logging.getLogger(__name__)

MIB = 1024 * 1024


class WorkerTimeout(Exception):
    """The worker did not answer before the deadline; it was killed."""


class WorkerCrashed(Exception):
    """The worker holding the request died (the caller sees it after one retry)."""


class PoolUnavailable(Exception):
    """The pool is not running, or no worker was free in time."""


WORKERS_PER_CPU = 3
MAX_DEFAULT_WORKERS = 16


def default_size() -> int:
    """Three workers per CPU, at most 16 (about 25 MB each): much of a render's round trip is
    the pipe and the wake-ups on both ends, so with one per CPU a single busy tenant (who may
    hold every worker but one) waited on a worker while the cores idled. `bench/run_overhead.py`
    on 2 cores: 435 → 640-676 runs/s at c=64, and 432 → 481 with 500 in flight (6 vs 4)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return min(WORKERS_PER_CPU * max(1, cpus), MAX_DEFAULT_WORKERS)


def _consume(task: asyncio.Task[Any]) -> None:
    """Retrieve the outcome of a task nobody awaits any more, so it is not reported as lost."""
    if not task.cancelled():
        task.exception()


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.pid = process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def read_reply(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        header = await self.process.stdout.readexactly(protocol.HEADER.size)
        (size,) = protocol.HEADER.unpack(header)
        return protocol.read_reply(await self.process.stdout.readexactly(size))

    async def exchange(self, frame: bytes, seconds: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        async with asyncio.timeout(seconds):
            self.process.stdin.write(frame)
            await self.process.stdin.drain()
            return await self.read_reply()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    async def stop(self, grace: float) -> None:
        """Close its stdin (a worker exits at end of input), then kill it after `grace`."""
        if self.alive and self.process.stdin is not None:
            self.process.stdin.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self.process.wait()
        self.kill()
        await self.process.wait()


class RenderPool:
    """`size` workers (default: one per CPU). Start it once, `request` from any task, close it."""

    def __init__(
        self,
        size: int | None = None,
        *,
        memory_bytes: int = 512 * MIB,
        cache_size: int = 256,
        queue_timeout: float = 5.0,
        start_timeout: float = 30.0,
    ) -> None:
        self.size = size or default_size()
        self.memory_bytes = memory_bytes
        self.cache_size = cache_size
        self.queue_timeout = queue_timeout
        self.start_timeout = start_timeout
        self._idle: asyncio.Queue[_Worker | None] = asyncio.Queue()
        self._workers: set[_Worker] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._closing = False

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring and tests)."""
        return sorted(worker.pid for worker in self._workers if worker.alive)

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        spawned = await asyncio.gather(
            *(self._spawn() for _ in range(self.size)), return_exceptions=True
        )
        workers = [worker for worker in spawned if isinstance(worker, _Worker)]
        errors = [error for error in spawned if isinstance(error, BaseException)]
        for worker in workers:
            self._workers.add(worker)
            self._idle.put_nowait(worker)
        if errors:
            await self.close()
            raise errors[0]

    async def close(self) -> None:
        """Let requests in flight finish (they end by their deadline), then stop every worker."""
        if self._closing:
            return
        self._closing = True
        self._idle.put_nowait(None)  # wakes every task waiting for a worker, one after another
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while self._tasks and loop.time() < deadline:
            await asyncio.wait(set(self._tasks), timeout=deadline - loop.time())
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(worker.stop(1.0) for worker in self._workers))
        self._workers.clear()

    async def request(self, message: dict[str, Any], seconds: float) -> dict[str, Any]:
        """Send `message` to a free worker and return its reply; kill it after `seconds`."""
        frame = protocol.request_frame(message)
        for attempt in (1, 2):
            worker = await self._acquire()
            task = self._background(self._exchange(worker, frame, seconds))
            try:
                # Shielded: if the caller gives up, the exchange still ends (within the
                # deadline) and returns the worker to the pool in a known state.
                return await asyncio.shield(task)
            except WorkerCrashed:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _acquire(self) -> _Worker:
        deadline = asyncio.get_running_loop().time() + self.queue_timeout
        while True:
            if self._closing or not self._started:
                raise PoolUnavailable("the renderer is not running")
            try:
                if self._idle.empty():
                    async with asyncio.timeout_at(deadline):
                        worker = await self._idle.get()
                else:  # a free worker: no timer to set up and cancel
                    worker = self._idle.get_nowait()
            except TimeoutError:
                raise PoolUnavailable(
                    f"no render worker was free within {self.queue_timeout} s"
                ) from None
            if worker is None:
                self._idle.put_nowait(None)
                raise PoolUnavailable("the renderer is shutting down")
            if worker.alive:
                return worker
            self._discard(worker)

    async def _exchange(self, worker: _Worker, frame: bytes, seconds: float) -> dict[str, Any]:
        try:
            reply = await worker.exchange(frame, seconds)
        except TimeoutError:
            self._discard(worker)
            raise WorkerTimeout from None
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            self._discard(worker)
            raise WorkerCrashed from None
        except BaseException:
            self._discard(worker)
            raise
        if reply.get("recycle"):
            self._discard(worker)
        else:
            self._idle.put_nowait(worker)
        return reply

    def _background(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_consume)
        return task

    def _discard(self, worker: _Worker) -> None:
        """Kill `worker` and start its replacement, without making anyone wait for either."""
        self._workers.discard(worker)
        worker.kill()
        self._background(self._replace(worker))

    async def _replace(self, worker: _Worker) -> None:
        await worker.process.wait()
        delay = 0.1
        while not self._closing:
            try:
                fresh = await self._spawn()
            except Exception:
                log.exception("a render worker failed to start; retrying in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            if self._closing:
                await fresh.stop(1.0)
                return
            self._workers.add(fresh)
            self._idle.put_nowait(fresh)
            return

    def _config(self) -> str:
        """What a worker needs: this process's import path, its memory cap, its cache size."""
        config = {
            "path": [os.path.abspath(entry) for entry in sys.path],
            "memory_bytes": self.memory_bytes,
            "cache_size": self.cache_size,
        }
        return json.dumps(config)

    async def _spawn(self) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-c",
            BOOTSTRAP,
            self._config(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={},
            cwd="/",
            start_new_session=True,
        )
        worker = _Worker(process)
        try:
            async with asyncio.timeout(self.start_timeout):
                ready = await worker.read_reply()
        except (TimeoutError, asyncio.IncompleteReadError, ValueError):
            await worker.stop(0)
            raise RuntimeError(
                f"a render worker did not start (exit code {process.returncode}); "
                "its error is on stderr"
            ) from None
        except BaseException:
            worker.kill()
            await asyncio.shield(process.wait())
            raise
        if "ready" not in ready:
            await worker.stop(0)
            raise RuntimeError("a render worker did not report ready")
        return worker
