"""What rendering in isolated worker processes costs a typical prompt.

A system and a user message, the system one including a context template, about 2 KiB of
output, rendered:

- in-process with Jinja's stock immutable sandbox (the floor: no bounds, no isolation);
- in-process with our bounded sandbox (what the workers run; the cost of the bounds);
- through the worker pool, one render at a time and with 8 concurrent renders
  (the cost of isolation: pickling, two pipe trips and the event loop hand-off).

    .venv/bin/python bench/render_isolation.py [--renders 2000] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from promptlogic.rendering import Renderer, RenderLimits
from promptlogic.rendering.engine import Engine

POLICY = """Company policy for {{ company }}:
- Refunds within {{ refund_days }} days of delivery are always accepted.
- Never promise delivery dates; quote the carrier's estimate instead.
- Escalate legal threats, data-protection requests and press enquiries to a human.
- Premium customers ({{ tiers|join(', ') }}) get a reply within one business day.
- Be concise, friendly and specific; never blame the customer."""

SYSTEM = """You are the support triage assistant of {{ company }}.
{% include "company-policy@production" %}

Classify each ticket as one of: {{ categories|join(', ') }}.
Answer with JSON matching the response format; no prose outside the JSON."""

USER = """Customer: {{ customer.name }} ({{ customer.tier|upper }}),
since {{ customer.since|date('%B %Y') }}.
Open orders: {{ customer.orders|length }}{% for order in customer.orders %}
  - #{{ order.id }} {{ order.item }}: {{ '%.2f'|format(order.total) }} EUR,
    {{ order.status }}{% endfor %}

Tickets:
{% for ticket in tickets %}{{ loop.index }}. [{{ ticket.channel }}] {{ ticket.subject|title }}
   {{ ticket.body|truncate(160)|indent(3) }}
{% endfor %}
Metadata: {{ meta|tojson }}"""

VARIABLES = {
    "company": "Acme Outdoor",
    "refund_days": 30,
    "tiers": ["gold", "platinum"],
    "categories": ["refund", "delivery", "defect", "account", "legal", "other"],
    "customer": {
        "name": "Ada Lovelace",
        "tier": "gold",
        "since": "2019-03-14T10:00:00Z",
        "orders": [
            {"id": 1001 + i, "item": f"Trail tent {i}", "total": 199.5 + i, "status": "shipped"}
            for i in range(4)
        ],
    },
    "tickets": [
        {
            "channel": channel,
            "subject": f"question about order {1001 + i}",
            "body": "The tent arrived with a torn rain fly and one pole missing. " * 3,
        }
        for i, channel in enumerate(["email", "chat", "phone", "email", "web"])
    ],
    "meta": {"locale": "en-GB", "queue": "tier-2", "sla_hours": 24, "tags": ["tent", "b2c"]},
}
INCLUDES = {"company-policy@production": POLICY}


def _report(name: str, timings: list[float], elapsed: float) -> None:
    ms = sorted(t * 1000 for t in timings)
    p = statistics.quantiles(ms, n=100)
    print(
        f"{name:<40} n={len(ms):>5}  p50={p[49]:7.3f} ms  p99={p[98]:7.3f} ms  "
        f"{len(ms) / elapsed:8.0f} renders/s"
    )


def _in_process(name: str, render: Callable[[], list[str]], renders: int) -> None:
    for _ in range(100):
        render()
    timings = []
    started = time.perf_counter()
    for _ in range(renders):
        begun = time.perf_counter()
        render()
        timings.append(time.perf_counter() - begun)
    _report(name, timings, time.perf_counter() - started)


def _stock() -> Callable[[], list[str]]:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    env.filters["date"] = lambda value, fmt: value[:7]  # stock Jinja has no date filter
    policy = env.from_string(POLICY)
    system = env.from_string(SYSTEM.replace('{% include "company-policy@production" %}', "{{ p }}"))
    user = env.from_string(USER)

    def render() -> list[str]:
        return [system.render(VARIABLES, p=policy.render(VARIABLES)), user.render(VARIABLES)]

    return render


async def _through_pool(renderer: Renderer, renders: int, concurrency: int) -> None:
    for _ in range(100):
        await renderer.render([SYSTEM, USER], includes=INCLUDES, variables=VARIABLES)
    timings: list[float] = []

    async def one() -> None:
        begun = time.perf_counter()
        await renderer.render([SYSTEM, USER], includes=INCLUDES, variables=VARIABLES)
        timings.append(time.perf_counter() - begun)

    async def lane(count: int) -> None:
        for _ in range(count):
            await one()

    started = time.perf_counter()
    await asyncio.gather(*(lane(renders // concurrency) for _ in range(concurrency)))
    name = f"worker pool, concurrency {concurrency}"
    if concurrency == 1:
        name += " (sequential)"
    _report(name, timings, time.perf_counter() - started)


async def main(renders: int, workers: int | None) -> None:
    engine = Engine()
    limits = RenderLimits()
    texts = engine.render([SYSTEM, USER], INCLUDES, VARIABLES, limits)
    print(f"typical prompt: {sum(map(len, texts))} characters of output, 2 messages, 1 include")
    _in_process("in-process, stock Jinja sandbox", _stock(), renders)
    _in_process(
        "in-process, bounded sandbox",
        lambda: engine.render([SYSTEM, USER], INCLUDES, VARIABLES, limits),
        renders,
    )
    async with Renderer(workers=workers) as renderer:
        print(f"worker pool: {len(renderer.pids)} processes")
        assert (
            await renderer.render([SYSTEM, USER], includes=INCLUDES, variables=VARIABLES) == texts
        )
        await _through_pool(renderer, renders, 1)
        await _through_pool(renderer, renders, 8)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=None)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.renders, arguments.workers))
