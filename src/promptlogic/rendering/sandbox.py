"""The Jinja environment prompt templates run in: Jinja's immutable sandbox, closed further.

The stock sandbox blocks `__class__`-style escapes but lets a template build unbounded values,
and evaluates constant expressions while compiling (so `{{ 9**(9**9) }}` hangs `from_string`,
even with `optimized=False`: output nodes are folded regardless, unless `finalize` needs the
render context). Here:

- `*`, `**`, `+`, `%` and `~` check the size of their result before computing it;
- `finalize` and the bounded filters take the context, so nothing is evaluated at compile time;
- the data handed in is plain JSON, and templates may touch only an allowlist of its methods;
- macro, `caller()`, recursive-loop and block calls are counted against `max_call_depth`;
- `{% include %}` loads only the templates the current render was given.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from jinja2 import BaseLoader, StrictUndefined, Template, nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import (
    BlockReference,
    Context,
    LoopContext,
    Macro,
    TemplateReference,
    Undefined,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner, Namespace, missing

from promptlogic.rendering.bounds import (
    OUTPUT,
    BoundedFormatter,
    add,
    concat,
    describe,
    join_text,
    modulo,
    multiply,
    power,
    to_text,
    whole_number,
)
from promptlogic.rendering.failures import (
    LimitFailure,
    SecurityFailure,
    SourceFailure,
    UndefinedFailure,
)
from promptlogic.rendering.filters import FILTERS, GLOBALS, join_items, replace_text
from promptlogic.rendering.limits import DEFAULT_LIMITS, RenderLimits

# str methods that return no more than their input; `center`, `format`... come bounded below.
STR_METHODS = frozenset(
    {
        "capitalize",
        "casefold",
        "count",
        "endswith",
        "find",
        "index",
        "isalnum",
        "isalpha",
        "isascii",
        "isdecimal",
        "isdigit",
        "isidentifier",
        "islower",
        "isnumeric",
        "isprintable",
        "isspace",
        "istitle",
        "isupper",
        "lower",
        "lstrip",
        "partition",
        "removeprefix",
        "removesuffix",
        "rfind",
        "rindex",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
        "swapcase",
        "title",
        "upper",
    }
)
DICT_METHODS = frozenset({"get", "items", "keys", "values"})
SEQUENCE_METHODS = frozenset({"count", "index"})
# Jinja's own objects keep the stock sandbox rules (no `_` names, no mutation of builtins).
_RUNTIME_TYPES = (
    LoopContext,
    Macro,
    Namespace,
    Cycler,
    Joiner,
    TemplateReference,
    BlockReference,
    range,
)
_NESTING_CALLS = (Macro, LoopContext, BlockReference)


def _padded(method: str) -> Any:
    def call(env: PromptSandbox, text: str, limit: int, width: Any, *args: Any) -> str:
        return getattr(text, method)(whole_number(width, limit, "width"), *args)  # type: ignore[no-any-return]

    return call


def _expandtabs(env: PromptSandbox, text: str, limit: int, tabsize: Any = 8) -> str:
    tabsize = whole_number(tabsize, limit, "tab size")
    if len(text) + text.count("\t") * max(tabsize, 0) > limit:
        raise LimitFailure(OUTPUT, f"the text would exceed {limit} characters")
    return text.expandtabs(tabsize)


def _replace(env: PromptSandbox, text: str, limit: int, old: Any, new: Any, count: Any = -1) -> str:
    return replace_text(text, old, new, count, limit)


def _join(env: PromptSandbox, text: str, limit: int, items: Iterable[Any]) -> str:
    return join_items(items, text, limit)


def _format(env: PromptSandbox, text: str, limit: int, *args: Any, **kwargs: Any) -> str:
    return BoundedFormatter(env.getattr, env.getitem, limit).vformat(text, args, kwargs)


def _format_map(env: PromptSandbox, text: str, limit: int, mapping: Any) -> str:
    return BoundedFormatter(env.getattr, env.getitem, limit).vformat(text, (), mapping)


_STR_BOUNDED: dict[str, Any] = {
    "center": _padded("center"),
    "ljust": _padded("ljust"),
    "rjust": _padded("rjust"),
    "zfill": _padded("zfill"),
    "expandtabs": _expandtabs,
    "replace": _replace,
    "join": _join,
    "format": _format,
    "format_map": _format_map,
}


class BoundedStrMethod:
    """What `text.center`, `text.format`... return in a template: the bounded version."""

    __slots__ = ("environment", "name", "text")

    def __init__(self, environment: PromptSandbox, text: str, name: str) -> None:
        self.environment = environment
        self.text = text
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        limit = self.environment.limits.max_output_chars
        return _STR_BOUNDED[self.name](self.environment, self.text, limit, *args, **kwargs)


class PromptUndefined(StrictUndefined):
    """StrictUndefined that raises our failures, naming the missing variable when it is one."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[Exception] = UndefinedError,
    ) -> None:
        super().__init__(hint, obj, name, exc)  # type: ignore[arg-type]
        if exc is SecurityError:
            raising: Any = SecurityFailure
        elif hint is None and obj is missing and name is not None:
            raising = partial(UndefinedFailure, name=name)
        else:
            raising = UndefinedFailure
        self._undefined_exception = raising

    @property
    def _undefined_message(self) -> str:
        # Jinja's names the object's class with its module, which tells a user nothing useful.
        if self._undefined_hint:
            return self._undefined_hint
        name = self._undefined_name
        if self._undefined_obj is missing:
            return f"{name!r} is undefined"
        owner = _kind_of(self._undefined_obj)
        if not isinstance(name, str):
            return f"{owner} has no item {name!r}"
        return f"{owner} has no attribute {name!r}"


def _kind_of(value: Any) -> str:
    if isinstance(value, dict | list | tuple | str | int | float | bool | range):
        return f"a value of type `{type(value).__name__}`"
    return "a function" if callable(value) else "this value"


@pass_context
def _finalize(context: Context, value: Any) -> str:
    # Taking the context also stops Jinja from evaluating `{{ ... }}` at compile time.
    return to_text(value, context.environment.limits.max_output_chars)  # type: ignore[attr-defined]


class _CodeGenerator(CodeGenerator):
    """Compiles `a ~ b` to a bounded call; Jinja's joins the operands with no size check."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat_values((")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")


class _IncludeLoader(BaseLoader):
    """`{% include "name" %}` finds only what the current render was given, already compiled."""

    def load(
        self, environment: Any, name: str, globals: Mapping[str, Any] | None = None
    ) -> Template:
        return environment.include(name)  # type: ignore[no-any-return]


@dataclass(slots=True)
class _State:
    limits: RenderLimits
    includes: Mapping[str, Template] = field(default_factory=dict)
    depth: int = 0


class PromptSandbox(ImmutableSandboxedEnvironment):
    """One per process; `rendering()` sets the limits and includes of the render in progress."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    intercepted_unops = frozenset()  # unary `-` and `+` cannot grow a value

    def __init__(self) -> None:
        super().__init__(
            undefined=PromptUndefined,
            autoescape=False,
            optimized=False,
            finalize=_finalize,
            cache_size=0,
            auto_reload=False,
            loader=_IncludeLoader(),
            extensions=["jinja2.ext.loopcontrols"],
        )
        self.globals.clear()
        self.globals.update(GLOBALS)
        self.filters = dict(FILTERS)
        self.concat = self._concat_output  # type: ignore[assignment]
        self._state: _State | None = None

    @property
    def limits(self) -> RenderLimits:
        return self._state.limits if self._state is not None else DEFAULT_LIMITS

    @contextmanager
    def rendering(
        self, limits: RenderLimits, includes: Mapping[str, Template] | None = None
    ) -> Iterator[None]:
        self._state = _State(limits, includes or {})
        try:
            yield
        finally:
            self._state = None

    def include(self, name: str) -> Template:
        includes = self._state.includes if self._state is not None else {}
        if name not in includes:
            raise SourceFailure(f"unknown include `{name}`", name=name)
        return includes[name]

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr.startswith("_"):
            return False
        if isinstance(obj, str):
            return attr in STR_METHODS
        if isinstance(obj, dict):
            return attr in DICT_METHODS
        if isinstance(obj, list | tuple):
            return attr in SEQUENCE_METHODS
        if isinstance(obj, _RUNTIME_TYPES):
            return super().is_safe_attribute(obj, attr, value)
        return False

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Undefined):
            obj._fail_with_undefined_error()  # the original error, not one about `__mro__`
        if isinstance(obj, str) and attribute in _STR_BOUNDED:
            return BoundedStrMethod(self, obj, attribute)
        if isinstance(obj, dict) and attribute not in DICT_METHODS:
            # `customer.update` is the customer's field, not a method of dict.
            try:
                return obj[attribute]
            except (TypeError, LookupError):
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Undefined):
            obj._fail_with_undefined_error()
        if isinstance(obj, str) and isinstance(argument, str) and argument in _STR_BOUNDED:
            return BoundedStrMethod(self, obj, argument)
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> None:
        """`format` and `format_map` are handed out by `getattr` as bounded methods instead."""
        return None

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        if not self.is_safe_callable(obj):
            raise SecurityFailure(f"calling {describe(obj)} is not allowed")
        state = self._state
        if state is None or not isinstance(obj, _NESTING_CALLS):
            return context.call(obj, *args, **kwargs)
        state.depth += 1
        try:
            if state.depth > state.limits.max_call_depth:
                raise LimitFailure(
                    "max_call_depth",
                    f"macro, caller() or recursive loop calls nest deeper than "
                    f"{state.limits.max_call_depth}",
                )
            return context.call(obj, *args, **kwargs)
        finally:
            state.depth -= 1

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        limits = self.limits
        if operator == "*":
            return multiply(left, right, limits)
        if operator == "**":
            return power(left, right, limits)
        if operator == "+":
            return add(left, right, limits)
        if operator == "%":
            return modulo(left, right, limits)
        return self.binop_table[operator](left, right)

    def concat_values(self, values: Iterable[Any]) -> str:
        """The `~` operator."""
        return concat(values, self.limits.max_output_chars)

    def _concat_output(self, parts: Iterable[Any]) -> str:
        """Joins the output of a macro, `{% set %}` block, `{% filter %}` block or call block."""
        limit = self.limits.max_output_chars
        return join_text(
            (part if type(part) is str else to_text(part, limit) for part in parts), limit
        )
