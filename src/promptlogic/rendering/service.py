"""The rendering service: `Renderer`, which owns the worker pool, and in-process `analyze`.

Every template is first compiled and rendered in a worker, under the deadline of the
`RenderLimits` in force, and comes back as text or as a 422. Only work proven cheap by then (a
straight-line template, a schema of linear keywords, small data: see `inline`) is done again
in the web process, in the same sandbox, saving the round trip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from types import TracebackType
from typing import Any

from promptlogic.errors import InvalidInput
from promptlogic.rendering.analysis import TemplateInfo, inspect
from promptlogic.rendering.errors import (
    LimitExceeded,
    RendererUnavailable,
    TemplateProblem,
    from_failure,
)
from promptlogic.rendering.failures import Failure
from promptlogic.rendering.inline import InlineWork, schema_json
from promptlogic.rendering.limits import DEFAULT_LIMITS, RenderLimits
from promptlogic.rendering.plain import to_plain
from promptlogic.rendering.pool import (
    MIB,
    PoolUnavailable,
    RenderPool,
    WorkerCrashed,
    WorkerTimeout,
)
from promptlogic.rendering.sandbox import PromptSandbox
from promptlogic.rendering.shares import Shares
from promptlogic.validation import UNSTORABLE_TEXT


@lru_cache(maxsize=1)
def _environment() -> PromptSandbox:
    return PromptSandbox()


def analyze(source: str, *, limits: RenderLimits = DEFAULT_LIMITS) -> TemplateInfo:
    """The variables `source` uses and the templates it includes, or a `TemplateProblem`.

    Parses in the calling thread: up to about a second of CPU for 64 KiB of hostile source.
    On the event loop, prefer `await renderer.check(source)`, which also compiles it.
    """
    try:
        return inspect(_environment(), source, limits)[1]
    except Failure as failure:
        raise from_failure(failure.as_dict(), (), "template") from None


def _common_field(fields: Sequence[str]) -> str:
    """`messages` for `messages.0.content` and `messages.1.content`: where whole-render
    errors (a deadline, a crash) are reported."""
    if len(fields) == 1:
        return fields[0]
    split = [field.split(".") for field in fields]
    common = []
    for parts in zip(*split, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return ".".join(common) or "messages"


class Renderer:
    """Renders prompt templates in a pool of sandboxed worker processes.

    `start()` it in the app's lifespan and `close()` it on the way out (or use `async with`);
    one instance serves every request of its event loop. `workers` defaults to one per CPU;
    `memory_bytes` caps each worker's address space; `cache_size` is the number of compiled
    templates each worker keeps; `queue_timeout` is how long a request waits for a free worker
    before a 503; a worker silent `kill_grace` seconds past `render_seconds` is killed.
    """

    def __init__(
        self,
        *,
        workers: int | None = None,
        limits: RenderLimits = DEFAULT_LIMITS,
        memory_bytes: int = 512 * MIB,
        cache_size: int = 256,
        queue_timeout: float = 5.0,
        kill_grace: float = 0.5,
    ) -> None:
        self.limits = limits
        self.kill_grace = kill_grace
        self.pool = RenderPool(
            workers,
            memory_bytes=memory_bytes,
            cache_size=cache_size,
            queue_timeout=queue_timeout,
        )
        # One tenant may hold every worker but one (see `shares`).
        self.shares = Shares(max(1, self.pool.size - 1), queue_timeout)
        self.inline = InlineWork(cache_size)

    async def start(self) -> None:
        await self.pool.start()

    async def close(self) -> None:
        await self.pool.close()

    async def __aenter__(self) -> Renderer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def render(
        self,
        templates: Sequence[str],
        *,
        includes: Mapping[str, str] | None = None,
        variables: Mapping[str, Any] | None = None,
        limits: RenderLimits | None = None,
        fields: Sequence[str] | None = None,
        schema: dict[str, Any] | None = None,
    ) -> list[str]:
        """Render each entry template with the same variables.

        With `schema`, the variables are first validated against it in the same worker (one
        round trip; a tenant's catastrophic `pattern` costs a worker, not the event loop), and
        every problem is raised as one 422.

        `includes` maps each include reference exactly as written (`"policy"`,
        `"policy@staging"`) to its resolved source. `fields` names the templates in errors
        (default `messages.{i}.content`); a missing variable is reported as `variables.NAME`.
        """
        limits = limits or self.limits
        names = list(fields or (f"messages.{i}.content" for i in range(len(templates))))
        if len(names) != len(templates):
            raise ValueError("give one field name per template")
        if not templates:
            return []
        for name, source in zip(names, templates, strict=True):
            _precheck(source, name, limits)
        sources = dict(includes or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in sources.items()):
            raise TypeError("includes map include names to template sources (strings)")
        plain = to_plain(variables or {})
        key = self.inline.key(templates, sources)
        outputs = self._render_inline(key, templates, sources, plain, limits, names, schema)
        if outputs is None:
            message = {
                "op": "render",
                "templates": list(templates),
                "includes": sources,
                "variables": plain,
                "limits": limits.as_dict(),
                "schema": schema,
            }
            result = await self._request(message, limits, names, _common_field(names))
            if "problems" in result:
                _raise_problems(result["problems"])
            self.inline.learn(key, result["straight"])
            outputs = result["outputs"]
        # A template can build NUL or a lone surrogate (`"%c" % 0`), which neither UTF-8 nor
        # Postgres can carry: they come out as U+FFFD.
        return [UNSTORABLE_TEXT.sub("\ufffd", text) for text in outputs]

    def _render_inline(
        self,
        key: bytes,
        templates: Sequence[str],
        includes: dict[str, str],
        variables: dict[str, Any],
        limits: RenderLimits,
        names: Sequence[str],
        schema: dict[str, Any] | None,
    ) -> list[str] | None:
        """The render done here when it is proven cheap (see `inline`); None: ask a worker."""
        if not self.inline.can_render(key, variables):
            return None
        if schema is not None:
            written = schema_json(schema)
            if written is None or not self.inline.can_validate(written, variables):
                return None
            problems = self.inline.validate(written, variables, "variables")
            if problems is None:
                return None
            if problems:
                _raise_problems(problems)
        try:
            return self.inline.render(templates, includes, variables, limits)
        except Failure as failure:
            raise from_failure(failure.as_dict(), names, _common_field(names)) from None

    async def check(
        self, source: str, *, limits: RenderLimits | None = None, field: str = "template"
    ) -> TemplateInfo:
        """Parse, check and compile `source` in a worker, as when a version is saved."""
        limits = limits or self.limits
        _precheck(source, field, limits)
        message = {"op": "check", "source": source, "limits": limits.as_dict()}
        found = await self._request(message, limits, [field], field)
        return TemplateInfo(frozenset(found["variables"]), tuple(found["includes"]))

    async def check_schema(self, schema: Any, *, field: str = "schema") -> list[str]:
        """`schema.check_schema` in a worker: a tenant's schema is checked against the
        metaschema under a deadline, never on the event loop."""
        message = {"op": "check_schema", "schema": schema, "limits": self.limits.as_dict()}
        problems: list[str] = await self._request(message, self.limits, [field], field)
        return problems

    async def validate_variables(
        self, schema: dict[str, Any] | bool, variables: Mapping[str, Any]
    ) -> list[dict[str, str]]:
        """`schema.validate_variables` in a worker, so a catastrophic `pattern` in a tenant's
        input schema costs a worker its deadline instead of stalling the event loop; here
        when the schema and the data are small and of linear cost (see `inline`)."""
        plain = to_plain(variables)
        written = schema_json(schema)
        if written is not None and self.inline.can_validate(written, plain):
            problems = self.inline.validate(written, plain, "variables")
            if problems is not None:
                return problems
        message = {
            "op": "validate",
            "schema": schema,
            "variables": plain,
            "limits": self.limits.as_dict(),
        }
        problems: list[dict[str, str]] = await self._request(
            message, self.limits, ["variables"], "variables"
        )
        return problems

    @property
    def pids(self) -> list[int]:
        """The worker processes (for monitoring and tests)."""
        return self.pool.pids

    async def _request(
        self, message: dict[str, Any], limits: RenderLimits, fields: Sequence[str], whole: str
    ) -> Any:
        seconds = limits.render_seconds
        try:
            async with self.shares.slot():
                reply = await self.pool.request(message, seconds + self.kill_grace)
        except WorkerTimeout:
            raise LimitExceeded(
                f"the work took longer than {seconds} s (render_seconds)",
                field=whole,
                limit="render_seconds",
            ) from None
        except WorkerCrashed:
            raise LimitExceeded(
                "the render stopped its worker process; it may need more memory than a "
                "render may use",
                field=whole,
                limit="memory",
            ) from None
        except PoolUnavailable as exc:
            raise RendererUnavailable(f"Templates cannot be rendered now: {exc}.") from None
        if "error" in reply:
            raise from_failure(reply["error"], fields, whole)
        return reply["ok"]


def _raise_problems(problems: list[dict[str, str]]) -> None:
    detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    raise InvalidInput(detail, errors=problems)


def _precheck(source: Any, field: str, limits: RenderLimits) -> None:
    """The checks worth no round trip to a worker."""
    if not isinstance(source, str):
        raise InvalidInput.field(field, "must be a string")
    if len(source) > limits.max_source_chars:
        raise TemplateProblem(
            f"the template has {len(source)} characters; the limit is "
            f"{limits.max_source_chars} (max_source_chars)",
            field=field,
            limit="max_source_chars",
        )
