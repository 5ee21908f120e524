"""Sizes computed before a value is built, so no template operation can allocate past a limit.

Jinja's sandbox stops attribute escapes, not arithmetic: `'a' * 10**9`, `9 ** 9 ** 9`, `x ~ x`
doubling, `'%999999999s'` and `'{:999999999}'` each build one huge value inside a single C call
that no timer can interrupt. Every operation here checks the size of its result first.
"""

from __future__ import annotations

import re
import types
from _string import formatter_field_name_split  # type: ignore[import-not-found]
from collections.abc import Callable, ItemsView, Iterable, KeysView, Mapping, ValuesView
from string import Formatter
from typing import Any

from jinja2.runtime import Undefined

from promptlogic.rendering.failures import Failure, LimitFailure
from promptlogic.rendering.limits import RenderLimits

OUTPUT = "max_output_chars"
_SCALARS = (bool, int, float, complex)
_VIEWS = (KeysView, ValuesView, ItemsView)
_DIGITS = re.compile(r"\d+")


class Budget:
    """Characters still allowed; `take` raises `LimitFailure` naming the limit once overdrawn."""

    __slots__ = ("left", "limit", "name", "what")

    def __init__(self, limit: int, name: str = OUTPUT, what: str = "the value") -> None:
        self.limit = limit
        self.left = limit
        self.name = name
        self.what = what

    def take(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise LimitFailure(self.name, f"{self.what} would exceed {self.limit} characters")


def describe(value: object) -> str:
    """A short, internals-free name for a value a template cannot output or compute with."""
    if isinstance(value, types.GeneratorType):
        return "a generator (add `|list` or `|join`)"
    if callable(value):
        return "a function or macro (call it with `()`)"
    return f"a value of type `{type(value).__name__}`"


def measure(value: object, budget: Budget, *, indent: int = 0, json: bool = False) -> None:
    """Charge `budget` about as many characters as `str(value)` (or JSON) would produce.

    Iterative, so deep data cannot exhaust the stack, and stopped by the budget, so a structure
    sharing one big value many times is refused after a few steps. Only plain data passes.
    """
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if indent:
            budget.take(1 + indent * depth)
        if isinstance(item, str):
            budget.take(len(item) + 2)
        elif item is None or isinstance(item, bool):
            budget.take(5)
        elif isinstance(item, int):
            budget.take(item.bit_length() // 3 + 2)
        elif isinstance(item, float):
            budget.take(24)
        elif isinstance(item, list | tuple):
            budget.take(2 + 2 * len(item))
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, dict):
            budget.take(2 + 4 * len(item))
            for key, child in item.items():
                if json and not isinstance(key, str | int | float | bool | None):
                    raise Failure(f"JSON object keys must be strings, not {describe(key)}")
                stack.append((key, depth + 1))
                stack.append((child, depth + 1))
        elif isinstance(item, Undefined):
            str(item)  # StrictUndefined raises the error that names what is missing
            budget.take(2)
        elif not json and isinstance(item, range | complex):
            budget.take(50)
        elif not json and isinstance(item, _VIEWS):
            budget.take(20 + 2 * len(item))
            stack.extend((child, depth + 1) for child in item)
        else:
            raise Failure(f"cannot use {describe(item)} here")


def to_text(value: object, limit: int, name: str = OUTPUT) -> str:
    """`str(value)` for plain data, refused before building anything over `limit` characters."""
    if type(value) is str:
        text = value
    elif isinstance(value, str):
        text = str.__str__(value)
    elif value is None or isinstance(value, _SCALARS):
        if isinstance(value, int) and value.bit_length() > limit * 4:
            raise LimitFailure(name, f"the number has more than {limit} digits")
        text = str(value)
    else:
        measure(value, Budget(limit, name))
        text = str(value)
    if len(text) > limit:
        raise LimitFailure(name, f"the value has more than {limit} characters")
    return text


def join_text(parts: Iterable[str], limit: int, name: str = OUTPUT) -> str:
    """`"".join(parts)` that stops as soon as the parts exceed `limit` characters."""
    collected: list[str] = []
    size = 0
    for part in parts:
        size += len(part)
        if size > limit:
            raise LimitFailure(name, f"the text would exceed {limit} characters")
        collected.append(part)
    return "".join(collected)


def concat(values: Iterable[object], limit: int) -> str:
    """The `~` operator: every operand as text, the whole bounded."""
    budget = Budget(limit, what="the text")
    parts = []
    for value in values:
        text = to_text(value, limit)
        budget.take(len(text))
        parts.append(text)
    return "".join(parts)


def _is_int(value: object) -> bool:
    return isinstance(value, int)


def multiply(left: Any, right: Any, limits: RenderLimits) -> Any:
    """`*`, refused when the product (number, string or list) would exceed a limit."""
    if _is_int(left) and _is_int(right):
        if left.bit_length() + right.bit_length() > limits.max_int_bits:
            raise LimitFailure("max_int_bits", f"the product exceeds {limits.max_int_bits} bits")
        return left * right
    sequence, times = (left, right) if _is_int(right) else (right, left)
    if _is_int(times) and isinstance(sequence, str | list | tuple) and times > 0:
        limit = limits.max_output_chars
        if isinstance(sequence, str):
            size = len(sequence) * times
        else:
            budget = Budget(limit)
            measure(sequence, budget)
            size = max(limit - budget.left, len(sequence)) * times
        if size > limit:
            raise LimitFailure(OUTPUT, f"the repetition would exceed {limit} characters")
    return left * right


def power(base: Any, exponent: Any, limits: RenderLimits) -> Any:
    """`**`, refused when an integer result would exceed `max_int_bits` (estimated, not built)."""
    growing = _is_int(base) and _is_int(exponent) and exponent > 1 and abs(base) > 1
    if growing and base.bit_length() * exponent > limits.max_int_bits:
        raise LimitFailure("max_int_bits", f"the power exceeds {limits.max_int_bits} bits")
    return base**exponent


def add(left: Any, right: Any, limits: RenderLimits) -> Any:
    """`+`, refused when a joined string or list would exceed `max_output_chars`."""
    if isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > limits.max_output_chars:
            raise LimitFailure(
                OUTPUT, f"the text would exceed {limits.max_output_chars} characters"
            )
    elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
        budget = Budget(limits.max_output_chars)
        measure(left, budget)
        measure(right, budget)
    return left + right


def modulo(left: Any, right: Any, limits: RenderLimits) -> Any:
    """`%`: remainder for numbers, bounded printf-style formatting for strings."""
    if isinstance(left, str):
        return percent_format(left, right, limits.max_output_chars)
    return left % right


def whole_number(value: Any, limit: int, what: str, name: str = OUTPUT) -> int:
    """A count or width a template passed: a whole number no larger than `limit`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise Failure(f"{what} must be a whole number, not {describe(value)}")
    if value > limit:
        raise LimitFailure(name, f"{what} {value} is over the limit of {limit}")
    return value


def _check_number(digits: str, limit: int, what: str) -> int:
    if len(digits) > 9 or int(digits) > limit:
        raise LimitFailure(OUTPUT, f"a format {what} over {limit} is not allowed")
    return int(digits)


def _percent_specs(template: str, limit: int) -> list[tuple[str | None, int, str]]:
    """(mapping key, width or precision, conversion) of each `%` spec, parsed as CPython does.

    A mirror of the C parser rather than a regex, so `%(a(b))999999999s` (balanced parentheses
    in the key) cannot hide a width from the check.
    """
    specs = []
    size = len(template)
    position = template.find("%")
    while position != -1:
        index = position + 1
        key = None
        if index < size and template[index] == "(":
            depth, start = 1, index + 1
            index += 1
            while index < size and depth:
                depth += {"(": 1, ")": -1}.get(template[index], 0)
                index += 1
            key = template[start : index - 1]
        while index < size and template[index] in "-+ #0":
            index += 1
        padding = 0
        for what in ("width", "precision"):
            if what == "precision":
                if index >= size or template[index] != ".":
                    break
                index += 1
            if index < size and template[index] == "*":
                raise LimitFailure(OUTPUT, "`*` widths and precisions are not allowed")
            digits = _DIGITS.match(template, index)
            if digits:
                padding = max(padding, _check_number(digits.group(), limit, what))
                index = digits.end()
        if index < size and template[index] in "hlL":
            index += 1
        conversion = template[index] if index < size else ""
        specs.append((key, padding, conversion))
        position = template.find("%", index + 1)
    return specs


def _scalar_size(value: object, conversion: str, padding: int) -> int:
    if isinstance(value, int):
        return max(padding, value.bit_length() // 3 + 3)
    if isinstance(value, float) and conversion in "fF":
        return padding + 330
    return padding + 40


def percent_format(template: str, args: Any, limit: int) -> str:
    """`template % args`, refused before formatting when the result could exceed `limit`."""
    specs = _percent_specs(template, limit)
    budget = Budget(limit)
    budget.take(len(template))
    positional = args if isinstance(args, tuple) else (args,)
    index = 0
    for key, padding, conversion in specs:
        if conversion == "%":
            budget.take(padding + 1)
            continue
        if key is not None and isinstance(args, Mapping):
            value = args.get(key)
        elif index < len(positional):
            value = positional[index]
            index += 1
        else:
            break  # Python reports the missing argument itself
        if conversion in "sra" or not isinstance(value, _SCALARS):
            budget.take(padding)
            measure(value, budget)
        else:
            budget.take(_scalar_size(value, conversion, padding))
    text = template % args
    if len(text) > limit:
        raise LimitFailure(OUTPUT, f"the formatted text exceeds {limit} characters")
    return text


class BoundedFormatter(Formatter):
    """`str.format` for templates: attribute lookups go through the sandbox and the output
    (widths, precisions, repeated fields) is bounded before it is built."""

    def __init__(
        self,
        getattr: Callable[[Any, str], Any],
        getitem: Callable[[Any, Any], Any],
        limit: int,
    ) -> None:
        super().__init__()
        self._getattr = getattr
        self._getitem = getitem
        self._budget = Budget(limit, what="the formatted text")
        self._limit = limit

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        first, rest = formatter_field_name_split(field_name)
        value = self.get_value(first, args, kwargs)
        for is_attribute, key in rest:
            value = self._getattr(value, key) if is_attribute else self._getitem(value, key)
        return value, first

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion is None:
            return value
        if conversion == "s":
            return to_text(value, self._limit)
        if conversion in ("r", "a"):
            measure(value, Budget(self._limit))
            return repr(value) if conversion == "r" else ascii(value)
        raise Failure(f"unknown conversion `!{conversion}`")

    def format_field(self, value: Any, format_spec: str) -> str:
        for digits in _DIGITS.findall(format_spec):
            _check_number(digits, self._limit, "width or precision")
        if value is None or isinstance(value, (str, *_SCALARS)):
            text = format(value, format_spec)
        elif isinstance(value, Undefined):
            text = str(value)
        elif not format_spec:
            text = to_text(value, self._limit)
        else:
            raise Failure(f"cannot format {describe(value)} with `{format_spec}`")
        self._budget.take(len(text))
        return text

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._budget.take(len(format_string))
        return super().vformat(format_string, args, kwargs)
