"""Every bound of `RenderLimits`: each is a 422 naming the limit, within two seconds, while
the event loop keeps serving and the web process's memory stays where it was."""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Awaitable

import pytest

from promptlogic.rendering import LimitExceeded, Renderer, RenderLimits, TemplateProblem
from tests.rendering.support import QUICK

NESTED_LOOPS = "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}"


async def _limit_hit(render: Awaitable[object]) -> tuple[LimitExceeded, float]:
    started = time.perf_counter()
    with pytest.raises(LimitExceeded) as caught:
        await render
    return caught.value, time.perf_counter() - started


@pytest.mark.parametrize(
    ("source", "limit"),
    [
        (NESTED_LOOPS, "render_seconds"),
        ("{{ 9**(9**9) }}", "max_int_bits"),
        ("{{ 'a' * 10**9 }}", "max_output_chars"),
    ],
)
async def test_runaway_templates_end_within_two_seconds_at_default_limits(
    renderer: Renderer, source: str, limit: str
) -> None:
    error, seconds = await _limit_hit(renderer.render([source]))
    assert seconds < 2
    assert error.limit == limit
    assert error.status == 422
    assert limit in error.detail
    assert error.errors is not None
    assert error.errors[0]["field"] == "messages.0.content"


async def test_the_time_limit_is_the_one_given(renderer: Renderer) -> None:
    error, seconds = await _limit_hit(renderer.render([NESTED_LOOPS], limits=QUICK))
    assert error.limit == "render_seconds"
    assert 0.2 < seconds < 1
    assert error.line == 1


async def test_output_is_capped_per_template(renderer: Renderer) -> None:
    source = "{% for i in range(10000) %}{{ 'x' * 100 }}{% endfor %}"
    error, _ = await _limit_hit(renderer.render([source]))
    assert error.limit == "max_output_chars"
    small = RenderLimits(max_output_chars=1000)
    assert await renderer.render(["x" * 1000], limits=small) == ["x" * 1000]
    error, _ = await _limit_hit(renderer.render(["{{ 'x' * 1001 }}"], limits=small))
    assert error.limit == "max_output_chars"


async def test_output_is_capped_per_render(renderer: Renderer) -> None:
    limits = RenderLimits(max_output_chars=1000, max_total_output_chars=1500)
    error, _ = await _limit_hit(renderer.render(["x" * 800, "y" * 800], limits=limits))
    assert error.limit == "max_total_output_chars"
    assert error.field == "messages.1.content"


async def test_range_is_capped(renderer: Renderer) -> None:
    assert await renderer.render(["{{ range(10000)|length }}"]) == ["10000"]
    error, _ = await _limit_hit(renderer.render(["{{ range(10001)|length }}"]))
    assert error.limit == "max_range"
    error, _ = await _limit_hit(renderer.render(["{{ range(10**100)|length }}"]))
    assert error.limit == "max_range"


def _chain(depth: int) -> dict[str, str]:
    """Includes `c1` → `c2` → … → `c{depth}`."""
    return {f"c{i}": f"{i}{{% include 'c{i + 1}' %}}" for i in range(1, depth)} | {
        f"c{depth}": str(depth)
    }


async def test_include_depth_is_capped(renderer: Renderer) -> None:
    entry = "{% include 'c1' %}"
    assert await renderer.render([entry], includes=_chain(5)) == ["12345"]
    error, _ = await _limit_hit(renderer.render([entry], includes=_chain(6)))
    assert error.limit == "max_include_depth"
    assert "c1 → c2" in error.detail


async def test_an_include_cycle_is_refused_before_rendering(renderer: Renderer) -> None:
    includes = {"a": "{% include 'b@x' %}", "b@x": "{% include 'a' %}"}
    with pytest.raises(TemplateProblem) as caught:
        await renderer.render(["{% include 'a' %}"], includes=includes)
    assert "include cycle: a → b@x → a" in caught.value.detail


async def test_a_template_including_itself_is_a_cycle(renderer: Renderer) -> None:
    with pytest.raises(TemplateProblem, match="include cycle: self → self"):
        await renderer.render(["{% include 'self' %}"], includes={"self": "{% include 'self' %}"})


@pytest.mark.parametrize(
    "source",
    [
        "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
        "{% macro m() %}{{ caller() }}{% endmacro %}"
        "{% macro r() %}{% call m() %}{{ r() }}{% endcall %}{% endmacro %}{{ r() }}",
        "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}",
        "{% block b %}{{ self.b() }}{% endblock %}",
    ],
)
async def test_recursion_is_capped(renderer: Renderer, source: str) -> None:
    error, seconds = await _limit_hit(renderer.render([source]))
    assert error.limit == "max_call_depth"
    assert seconds < 1


async def test_call_depth_allows_reasonable_nesting(renderer: Renderer) -> None:
    source = (
        "{% macro down(n) %}{% if n %}{{ down(n - 1) }}{% else %}bottom{% endif %}{% endmacro %}"
        "{{ down(20) }}"
    )
    assert await renderer.render([source]) == ["bottom"]


async def test_source_size_is_capped(renderer: Renderer) -> None:
    with pytest.raises(TemplateProblem) as caught:
        await renderer.render(["x" * 65_537])
    assert caught.value.limit == "max_source_chars"
    with pytest.raises(TemplateProblem) as caught:
        await renderer.render(["{% include 'big' %}"], includes={"big": "x" * 65_537})
    assert caught.value.limit == "max_source_chars"
    assert caught.value.include == "big"


async def test_integers_are_capped(renderer: Renderer) -> None:
    assert await renderer.render(["{{ (2**100)|string|length }}"]) == ["31"]
    for source in ["{{ 2**5000 }}", "{{ (2**2000) * (2**2000) * (2**2000) }}"]:
        error, _ = await _limit_hit(renderer.render([source]))
        assert error.limit == "max_int_bits"


async def test_an_allocation_bomb_fails_in_the_worker_not_here(renderer: Renderer) -> None:
    # Each `center` result is within bounds; ten thousand of them are 5 GB.
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    source = "{{ range(10000)|map('center', 262144)|list|length }}"
    error, seconds = await _limit_hit(renderer.render([source]))
    # The cap on the worker's memory usually stops it; on a loaded machine its deadline may first.
    assert error.limit in {"memory", "render_seconds"}
    assert seconds < 2
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 50 * 1024
    assert await renderer.render(["still {{ 'fine' }}"]) == ["still fine"]


async def test_the_event_loop_keeps_serving_during_a_runaway_render(renderer: Renderer) -> None:
    ticks = 0
    gaps: list[float] = []

    async def ticker() -> None:
        nonlocal ticks
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now
            ticks += 1

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    task = asyncio.create_task(ticker())
    try:
        await _limit_hit(renderer.render([NESTED_LOOPS, "{{ 9**(9**9) }}"]))
        await _limit_hit(renderer.render(["{% set x = 'a' * 262144 %}{{ [x, x, x] }}"]))
    finally:
        task.cancel()
    assert ticks > 50
    assert max(gaps) < 0.2
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024


async def test_other_renders_proceed_while_one_runs_away(renderer: Renderer) -> None:
    runaway = asyncio.create_task(renderer.render([NESTED_LOOPS], limits=QUICK))
    await asyncio.sleep(0.02)
    started = time.perf_counter()
    assert await renderer.render(["quick {{ 1 }}"]) == ["quick 1"]
    assert time.perf_counter() - started < 0.5
    with pytest.raises(LimitExceeded):
        await runaway


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_range"):
        RenderLimits(max_range=0)
    with pytest.raises(ValueError, match="render_seconds"):
        RenderLimits(render_seconds=True)
