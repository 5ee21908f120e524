"""Checking and rendering templates: the work a worker process does for each request.

Compiled templates are cached by content hash, so a version's messages and the context
templates they include are compiled once per worker. Every failure leaves here as a `Failure`
naming the template (entry index or include name) and, when known, the line.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from jinja2 import Template
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError

from promptlogic.rendering.analysis import TemplateInfo, compile_tree, inspect
from promptlogic.rendering.bounds import Budget, to_text
from promptlogic.rendering.failures import (
    Failure,
    LimitFailure,
    SecurityFailure,
    SourceFailure,
    UndefinedFailure,
)
from promptlogic.rendering.limits import RenderLimits
from promptlogic.rendering.sandbox import PromptSandbox

MAX_MESSAGE = 500


class Deadline(BaseException):
    """Raised into the render by the worker's timer; a BaseException so no filter catches it."""


@dataclass(frozen=True, slots=True)
class Compiled:
    template: Template
    info: TemplateInfo


def as_failure(exc: BaseException, limits: RenderLimits) -> Failure:
    """The `Failure` for any exception a template's work raised."""
    if isinstance(exc, Failure):
        return exc
    if isinstance(exc, Deadline):
        seconds = limits.render_seconds
        return LimitFailure("render_seconds", f"the render took longer than {seconds} s")
    if isinstance(exc, SecurityError):
        return SecurityFailure(str(exc)[:MAX_MESSAGE])
    if isinstance(exc, UndefinedError):
        return UndefinedFailure(str(exc)[:MAX_MESSAGE])
    if isinstance(exc, RecursionError):
        return LimitFailure("max_call_depth", "the template recursed too deeply")
    if isinstance(exc, MemoryError):
        return LimitFailure("memory", "the render needed more memory than a worker may use")
    if isinstance(exc, KeyError | IndexError):
        return Failure(f"no item {str(exc)[:MAX_MESSAGE]}")
    if isinstance(exc, TemplateError | ArithmeticError | TypeError | ValueError | LookupError):
        return Failure(str(exc)[:MAX_MESSAGE] or type(exc).__name__)
    return Failure(f"the template failed ({type(exc).__name__})")


def _innermost_template_line(tb: TracebackType | None) -> tuple[Template, int] | None:
    found = None
    while tb is not None:
        template = tb.tb_frame.f_globals.get("__jinja_template__")
        if template is not None:
            found = (template, template.get_corresponding_lineno(tb.tb_lineno))
        tb = tb.tb_next
    return found


class Engine:
    """A sandbox environment and its compiled-template cache; one per worker process."""

    def __init__(self, cache_size: int = 256) -> None:
        self.environment = PromptSandbox()
        self._cache: OrderedDict[bytes, Compiled] = OrderedDict()
        self._cache_size = cache_size

    def compiled(self, source: str, limits: RenderLimits) -> Compiled:
        if not isinstance(source, str):
            raise SourceFailure("a template must be a string")
        if len(source) > limits.max_source_chars:  # checked on every use, whatever is cached
            raise SourceFailure(
                f"the template has {len(source)} characters; the limit is "
                f"{limits.max_source_chars} (max_source_chars)",
                limit="max_source_chars",
            )
        key = hashlib.blake2b(source.encode("utf-8", "surrogatepass"), digest_size=20).digest()
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        tree, info = inspect(self.environment, source, limits)
        compiled = Compiled(compile_tree(self.environment, tree), info)
        self._cache[key] = compiled
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return compiled

    def check(self, source: str, limits: RenderLimits) -> TemplateInfo:
        """Parse, check and compile `source` (caching it), as when a version is saved."""
        try:
            return self.compiled(source, limits).info
        except BaseException as exc:
            raise as_failure(exc, limits) from None

    def render(
        self,
        templates: Sequence[str],
        includes: Mapping[str, str],
        variables: Mapping[str, Any],
        limits: RenderLimits,
    ) -> list[str]:
        """Render each entry template with the same variables; includes come from `includes`."""
        entries = []
        for index, source in enumerate(templates):
            try:
                entries.append(self.compiled(source, limits))
            except BaseException as exc:
                failure = as_failure(exc, limits)
                failure.template = index
                raise failure from None
        loaded = _IncludeGraph(self, includes, limits)
        for index, entry in enumerate(entries):
            loaded.resolve(entry.info.includes, index)
        names = {id(template): name for name, template in loaded.templates.items()}
        total = Budget(
            limits.max_total_output_chars, "max_total_output_chars", "the output of all templates"
        )
        outputs = []
        with self.environment.rendering(limits, loaded.templates):
            for index, entry in enumerate(entries):
                try:
                    outputs.append(self._render_one(entry.template, variables, limits, total))
                except BaseException as exc:
                    raise _located(exc, limits, index, names) from None
        return outputs

    def straight_cost(
        self, templates: Sequence[str], includes: Mapping[str, str], limits: RenderLimits
    ) -> int | None:
        """The node count of `templates` and `includes` (compiled already) when every one of
        them is straight-line (`analysis.straight_line_nodes`), else None."""
        total = 0
        for source in (*templates, *includes.values()):
            nodes = self.compiled(source, limits).info.straight_nodes
            if nodes is None:
                return None
            total += nodes
        return total

    def _render_one(
        self, template: Template, variables: Mapping[str, Any], limits: RenderLimits, total: Budget
    ) -> str:
        budget = Budget(limits.max_output_chars, what="the template's output")
        parts = []
        context = template.new_context(dict(variables))
        for chunk in template.root_render_func(context):
            text = chunk if type(chunk) is str else to_text(chunk, limits.max_output_chars)
            budget.take(len(text))
            total.take(len(text))
            parts.append(text)
        return "".join(parts)


def _located(
    exc: BaseException, limits: RenderLimits, index: int, names: Mapping[int, str]
) -> Failure:
    failure = as_failure(exc, limits)
    failure.template = index
    where = _innermost_template_line(exc.__traceback__)
    if where is not None:
        template, line = where
        failure.include = failure.include or names.get(id(template))
        if failure.line is None:
            failure.line = line
    return failure


class _IncludeGraph:
    """The includes reachable from the entry templates, compiled; cycles and depth refused
    before anything renders (include names are string literals, so the graph is static)."""

    def __init__(self, engine: Engine, sources: Mapping[str, str], limits: RenderLimits) -> None:
        self.engine = engine
        self.sources = sources
        self.limits = limits
        self.templates: dict[str, Template] = {}
        self._heights: dict[str, int] = {}
        self._trail: list[str] = []

    def resolve(self, names: Sequence[str], index: int) -> None:
        for name in names:
            try:
                self._height(name)
            except BaseException as exc:
                failure = as_failure(exc, self.limits)
                failure.template = index
                raise failure from None
            finally:
                self._trail.clear()

    def _height(self, name: str) -> int:
        """Length of the longest include chain starting at `name` (1 when it includes none)."""
        depth = self.limits.max_include_depth
        height = self._heights.get(name)
        if height is None:
            if name in self._trail:
                cycle = " → ".join([*self._trail[self._trail.index(name) :], name])
                raise SourceFailure(f"include cycle: {cycle}", name=name)
            if len(self._trail) >= depth:
                self._too_deep(name)
            height = self._compute_height(name)
        if len(self._trail) + height > depth:
            self._too_deep(name)
        return height

    def _compute_height(self, name: str) -> int:
        if name not in self.sources:
            raise SourceFailure(f"unknown include `{name}`: it was not resolved", name=name)
        self._trail.append(name)
        try:
            compiled = self.engine.compiled(self.sources[name], self.limits)
        except BaseException as exc:
            failure = as_failure(exc, self.limits)
            failure.include = failure.include or name
            raise failure from None
        height = 1 + max((self._height(child) for child in compiled.info.includes), default=0)
        self._trail.pop()
        self._heights[name] = height
        self.templates[name] = compiled.template
        return height

    def _too_deep(self, name: str) -> None:
        depth = self.limits.max_include_depth
        chain = " → ".join([*self._trail, name])
        raise LimitFailure(
            "max_include_depth", f"includes nest deeper than {depth} levels (from {chain})"
        )
