"""The worker pool: isolation, deadlines, dead and stuck workers, start and stop."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from promptlogic.rendering import LimitExceeded, Renderer, RendererUnavailable, RenderLimits

# About 0.3 s of work in a worker.
SLOW = (
    "{% for a in range(1000) %}{% for b in range(1000) %}{% set x = b * 2 %}{% endfor %}"
    "{% endfor %}done"
)
RUNAWAY = "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}"


@pytest.fixture
async def own() -> AsyncIterator[Renderer]:
    """A renderer these tests may damage."""
    async with Renderer(workers=2, kill_grace=0.3) as started:
        yield started


async def _replaced(renderer: Renderer, gone: int) -> list[int]:
    for _ in range(200):
        pids = renderer.pids
        if gone not in pids and len(pids) == renderer.pool.size:
            return pids
        await asyncio.sleep(0.01)
    raise AssertionError(f"worker {gone} was not replaced: {renderer.pids}")


def _environment_of(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


async def test_workers_are_separate_processes_with_an_empty_environment(
    renderer: Renderer,
) -> None:
    assert len(renderer.pids) == 2
    assert os.getpid() not in renderer.pids
    if sys.platform == "linux":
        for pid in renderer.pids:
            assert _environment_of(pid) == b""


async def test_a_stuck_worker_is_killed_at_the_deadline_and_replaced(own: Renderer) -> None:
    stuck = own.pids[0]
    os.kill(stuck, signal.SIGSTOP)  # stuck in a C call, as far as we can tell
    limits = RenderLimits(render_seconds=0.2)
    started = time.perf_counter()
    results = await asyncio.gather(
        *(own.render(["{{ n }}"], variables={"n": n}, limits=limits) for n in range(4)),
        return_exceptions=True,
    )
    assert time.perf_counter() - started < 2
    timeouts = [r for r in results if isinstance(r, LimitExceeded)]
    assert len(timeouts) == 1
    assert timeouts[0].limit == "render_seconds"
    assert len([r for r in results if isinstance(r, list)]) == 3
    await _replaced(own, stuck)
    assert await own.render(["ok"]) == ["ok"]


async def test_a_worker_that_died_while_idle_is_replaced_unnoticed(own: Renderer) -> None:
    dead = own.pids[0]
    os.kill(dead, signal.SIGKILL)
    texts = await asyncio.gather(*(own.render([f"{n}"]) for n in range(6)))
    assert texts == [[f"{n}"] for n in range(6)]
    await _replaced(own, dead)


async def test_a_request_whose_worker_dies_is_retried_once(own: Renderer) -> None:
    render = asyncio.create_task(own.render([SLOW]))
    await asyncio.sleep(0.03)
    busy = [pid for pid in own.pids if _state(pid) == "R"] or own.pids
    for pid in busy:
        os.kill(pid, signal.SIGKILL)
        break
    assert await render == ["done"]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return "?"


async def test_a_caller_that_gives_up_leaves_the_pool_healthy(own: Renderer) -> None:
    render = asyncio.create_task(own.render([SLOW]))
    await asyncio.sleep(0.02)
    render.cancel()
    with pytest.raises(asyncio.CancelledError):
        await render
    texts = await asyncio.gather(*(own.render([f"{n}"]) for n in range(4)))
    assert texts == [[f"{n}"] for n in range(4)]


async def test_compiled_templates_are_cached_per_worker(own: Renderer) -> None:
    source = "{% for i in range(3) %}{{ i }}{% endfor %}" * 200
    started = time.perf_counter()
    await own.render([source])
    first = time.perf_counter() - started
    timings = []
    for _ in range(6):
        started = time.perf_counter()
        await own.render([source])
        timings.append(time.perf_counter() - started)
    assert min(timings) < first


async def test_a_closed_renderer_answers_503() -> None:
    renderer = Renderer(workers=1)
    with pytest.raises(RendererUnavailable):
        await renderer.render(["x"])
    await renderer.start()
    pids = renderer.pids
    await renderer.close()
    with pytest.raises(RendererUnavailable) as caught:
        await renderer.render(["x"])
    assert caught.value.status == 503
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_close_waits_for_renders_in_flight() -> None:
    renderer = Renderer(workers=1)
    await renderer.start()
    render = asyncio.create_task(renderer.render([SLOW]))
    await asyncio.sleep(0.02)
    await renderer.close()
    assert await render == ["done"]


async def test_waiting_for_a_busy_pool_is_bounded() -> None:
    async with Renderer(workers=1, queue_timeout=0.1) as renderer:
        runaway = asyncio.create_task(
            renderer.render([RUNAWAY], limits=RenderLimits(render_seconds=0.3))
        )
        await asyncio.sleep(0.02)
        with pytest.raises(RendererUnavailable, match="free within"):
            await renderer.render(["x"])
        with pytest.raises(LimitExceeded):
            await runaway
