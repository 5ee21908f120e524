"""Work cheap enough for the web process to do itself, instead of a round trip to a worker.

A round trip to a render worker costs 0.15-0.3 ms of pipes and wake-ups: several times what
rendering a prompt made of text, variables, filters, `if` and includes takes, and the larger
part of what promptlogic adds to a run. Two kinds of work are bounded whatever the values, so
they cannot stall the event loop the way a loop, a call or a huge multiplication could:

- a straight-line template (`analysis.straight_line_nodes`: no loop, call, arithmetic or
  assignment) costs about its node count times the size of the variables;
- a JSON Schema made of keywords of linear cost (`schema.linear_cost`: no regular expression,
  reference, `uniqueItems` or `unevaluated*`) costs about its node count times the data's.

The web process renders a template set itself only once a worker has parsed, compiled and
rendered it under the deadline and found it straight-line (the worker's reply says so), in the
same sandbox (`Engine`, `PromptSandbox`) with the same limits; and only when the product of the
two sizes stays within a budget of a few milliseconds at worst. Anything else goes to a worker,
as before. Every failure is the same `Failure` a worker would have reported.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from promptlogic.rendering.engine import Engine
from promptlogic.rendering.limits import RenderLimits
from promptlogic.rendering.schema import canonical, linear_cost, validate_canonical

# Budgets in "steps": a node of a template or a schema met with a node of the data (or 64
# characters of its text). About a microsecond each, so a few milliseconds in the worst case.
RENDER_BUDGET = 200_000
VALIDATION_BUDGET = 20_000
CHARS_PER_STEP = 64


def data_size(value: Any, cap: int) -> int:
    """Nodes of JSON data plus its text in `CHARS_PER_STEP`, counted up to just past `cap`."""
    size = 0
    stack = [value]
    while stack and size <= cap:
        item = stack.pop()
        size += 1
        if isinstance(item, str):
            size += len(item) // CHARS_PER_STEP
        elif isinstance(item, dict):
            size += len(item)  # the keys
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return size


def schema_cost(schema_json: str) -> int | None:
    """`schema.linear_cost`, or None for a schema that cannot even be read here."""
    try:
        return linear_cost(schema_json)
    except (ValueError, RecursionError):
        return None


class InlineWork:
    """The web process's own sandbox, and what the workers said about each template set."""

    def __init__(self, cache_size: int = 128, verdicts: int = 4096) -> None:
        self.engine = Engine(cache_size)
        self._straight: OrderedDict[bytes, int | None] = OrderedDict()
        self._max_verdicts = verdicts

    @staticmethod
    def key(templates: Sequence[str], includes: Mapping[str, str]) -> bytes:
        """A digest of the sources (a few microseconds), so remembering a verdict costs 20
        bytes rather than the sources themselves."""
        digest = hashlib.blake2b(digest_size=20)
        for source in (*templates, "\0includes", *itertools.chain(*includes.items())):
            encoded = source.encode("utf-8", "surrogatepass")
            digest.update(len(encoded).to_bytes(8, "big"))
            digest.update(encoded)
        return digest.digest()

    def learn(self, key: bytes, straight_nodes: int | None) -> None:
        """Remember a worker's verdict on a template set (None: not straight-line)."""
        self._straight[key] = straight_nodes
        self._straight.move_to_end(key)
        while len(self._straight) > self._max_verdicts:
            self._straight.popitem(last=False)

    def can_render(self, key: bytes, variables: Mapping[str, Any]) -> bool:
        nodes = self._straight.get(key)
        if nodes is None:
            return False
        cap = RENDER_BUDGET // max(nodes, 1)
        return data_size(variables, cap) <= cap

    def can_validate(self, schema_json: str, data: Any) -> bool:
        cost = schema_cost(schema_json)
        if cost is None:
            return False
        cap = VALIDATION_BUDGET // max(cost, 1)
        return data_size(data, cap) <= cap

    def render(
        self,
        templates: Sequence[str],
        includes: Mapping[str, str],
        variables: Mapping[str, Any],
        limits: RenderLimits,
    ) -> list[str]:
        """`Engine.render`, here; raises the `Failure` a worker would have reported."""
        return self.engine.render(templates, includes, variables, limits)

    @staticmethod
    def validate(schema_json: str, data: Any, field: str) -> list[dict[str, str]] | None:
        """The problems of `data`; None when the check itself failed unexpectedly, for a
        worker to do it again and report it as it reports every such failure."""
        try:
            return validate_canonical(schema_json, data, field)
        except Exception:
            return None


def schema_json(schema: dict[str, Any] | bool) -> str | None:
    """`schema.canonical`, or None for a schema nested too deeply to write here."""
    try:
        return canonical(schema)
    except (ValueError, TypeError, RecursionError):
        return None
