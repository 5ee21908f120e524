"""One share (a tenant) cannot hold every render worker."""

import asyncio
import time

import pytest

from promptlogic.rendering import LimitExceeded, Renderer, RendererUnavailable, sharing

RUNAWAY = "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}"


async def test_a_flooding_tenant_leaves_a_worker_for_the_others() -> None:
    async with Renderer(workers=2, queue_timeout=3.0) as renderer:
        assert renderer.shares.per_key == 1

        async def hostile() -> None:
            with sharing("hostile"), pytest.raises((LimitExceeded, RendererUnavailable)):
                await renderer.render([RUNAWAY])

        flood = [asyncio.create_task(hostile()) for _ in range(4)]
        await asyncio.sleep(0.2)  # the flood holds its one worker
        started = time.perf_counter()
        with sharing("polite"):
            assert await renderer.render(["hello {{ name }}"], variables={"name": "Ada"}) == [
                "hello Ada"
            ]
        assert time.perf_counter() - started < 0.5
        await asyncio.gather(*flood)


async def test_work_outside_any_share_is_not_bounded() -> None:
    async with Renderer(workers=2) as renderer:
        results = await asyncio.gather(*(renderer.render(["{{ 1 + 1 }}"]) for _ in range(6)))
        assert results == [["2"]] * 6
        assert renderer.shares._slots == {}
