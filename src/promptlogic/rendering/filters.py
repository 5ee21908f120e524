"""The filters and globals prompt templates get: Jinja's useful ones, each bounded.

Jinja's stock `center`, `indent`, `wordwrap`, `replace`, `join`, `format`, `batch`, `slice`,
`sum` and `string` can each build a value far larger than their input in one call; here every
one checks the size of its result first. HTML helpers (`escape`, `safe`, `urlize`, `xmlattr`),
`pprint`, `random` and `lipsum` are left out: prompts are plain text and renders repeatable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any

from jinja2 import filters as jinja
from jinja2 import pass_context, pass_environment
from jinja2.runtime import Context
from jinja2.utils import Cycler, Joiner, Namespace

from promptlogic.rendering.bounds import (
    OUTPUT,
    Budget,
    describe,
    measure,
    percent_format,
    to_text,
    whole_number,
)
from promptlogic.rendering.failures import Failure, LimitFailure
from promptlogic.rendering.limits import RenderLimits


def _limits(context: Context) -> RenderLimits:
    return context.environment.limits  # type: ignore[attr-defined,no-any-return]


def _bounded(text: str, limit: int) -> str:
    if len(text) > limit:
        raise LimitFailure(OUTPUT, f"the result exceeds {limit} characters")
    return text


@pass_context
def center(context: Context, value: Any, width: int = 80) -> str:
    limit = _limits(context).max_output_chars
    return to_text(value, limit).center(whole_number(width, limit, "width"))


@pass_context
def indent(
    context: Context, value: Any, width: int | str = 4, first: bool = False, blank: bool = False
) -> str:
    limit = _limits(context).max_output_chars
    text = to_text(value, limit)
    unit = width if isinstance(width, str) else " " * whole_number(width, limit, "width")
    if len(text) + (text.count("\n") + 2) * len(unit) > limit:
        raise LimitFailure(OUTPUT, f"the indented text would exceed {limit} characters")
    return jinja.do_indent(text, unit, first, blank)


@pass_context
def wordwrap(
    context: Context,
    value: Any,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    limit = _limits(context).max_output_chars
    text = to_text(value, limit)
    width = whole_number(width, limit, "width")
    if width < 1:
        raise Failure("width must be at least 1")
    separator = "\n" if wrapstring is None else to_text(wrapstring, limit)
    if len(text) + (len(text) // width + text.count("\n") + 1) * len(separator) > limit:
        raise LimitFailure(OUTPUT, f"the wrapped text would exceed {limit} characters")
    result = jinja.do_wordwrap(
        context.environment, text, width, break_long_words, separator, break_on_hyphens
    )
    return _bounded(result, limit)


@pass_context
def truncate(
    context: Context,
    value: Any,
    length: int = 255,
    killwords: bool = False,
    end: str = "...",
    leeway: int | None = None,
) -> str:
    limit = _limits(context).max_output_chars
    text = to_text(value, limit)
    length = whole_number(length, limit, "length")
    result = jinja.do_truncate(context.environment, text, length, killwords, str(end), leeway)
    return _bounded(result, limit)


def replace_text(text: str, old: Any, new: Any, count: Any, limit: int) -> str:
    """`str.replace` refused when the replacements would grow the text past `limit`."""
    old, new = to_text(old, limit), to_text(new, limit)
    occurrences = text.count(old) if old else len(text) + 1
    if count is not None:
        count = whole_number(count, 2**62, "count")
        if count >= 0:
            occurrences = min(occurrences, count)
    if len(text) + occurrences * (len(new) - len(old)) > limit:
        raise LimitFailure(OUTPUT, f"the replaced text would exceed {limit} characters")
    return text.replace(old, new, -1 if count is None else count)


@pass_context
def replace(context: Context, value: Any, old: Any, new: Any, count: int | None = None) -> str:
    limit = _limits(context).max_output_chars
    return replace_text(to_text(value, limit), old, new, count, limit)


def join_items(items: Iterable[Any], separator: str, limit: int) -> str:
    """`separator.join(items)` with every item as text, stopped once past `limit`."""
    budget = Budget(limit, what="the joined text")
    parts = []
    for index, item in enumerate(items):
        if index:
            budget.take(len(separator))
        text = to_text(item, limit)
        budget.take(len(text))
        parts.append(text)
    return separator.join(parts)


@pass_context
def join(context: Context, value: Iterable[Any], d: Any = "", attribute: Any = None) -> str:
    limit = _limits(context).max_output_chars
    if attribute is not None:
        value = map(jinja.make_attrgetter(context.environment, attribute), value)
    return join_items(value, to_text(d, limit), limit)


@pass_context
def format(context: Context, value: Any, *args: Any, **kwargs: Any) -> str:
    if args and kwargs:
        raise Failure("`format` takes positional or keyword arguments, not both")
    limit = _limits(context).max_output_chars
    return percent_format(to_text(value, limit), kwargs or args, limit)


@pass_context
def string(context: Context, value: Any) -> str:
    return to_text(value, _limits(context).max_output_chars)


@pass_context
def batch(context: Context, value: Iterable[Any], linecount: int, fill_with: Any = None) -> Any:
    limits = _limits(context)
    linecount = whole_number(linecount, limits.max_range, "batch size", "max_range")
    if linecount < 1:
        raise Failure("batch size must be at least 1")
    return jinja.do_batch(value, linecount, fill_with)


@pass_context
def slice_(context: Context, value: Iterable[Any], slices: int, fill_with: Any = None) -> Any:
    limits = _limits(context)
    slices = whole_number(slices, limits.max_range, "number of slices", "max_range")
    if slices < 1:
        raise Failure("number of slices must be at least 1")
    return jinja.sync_do_slice(value, slices, fill_with)


@pass_context
def sum_(context: Context, iterable: Iterable[Any], attribute: Any = None, start: Any = 0) -> Any:
    if isinstance(start, bool) or not isinstance(start, int | float):
        raise Failure("`sum` adds numbers; `start` must be a number")
    return jinja.sync_do_sum(context.environment, iterable, attribute, start)


@pass_context
def round_(context: Context, value: Any, precision: int = 0, method: str = "common") -> float:
    # Python's round(5, -10**9) computes 10**(10**9) before anything else.
    digits = _limits(context).max_int_bits * 3 // 10
    magnitude = -precision if isinstance(precision, int) and precision < 0 else precision
    whole_number(magnitude, digits, "round() precision", "max_int_bits")
    return jinja.do_round(value, precision, method)


@pass_context
def tojson(context: Context, value: Any, indent: int | None = None) -> str:
    limit = _limits(context).max_output_chars
    if indent is not None:
        indent = whole_number(indent, limit, "indent")
    measure(value, Budget(limit, what="the JSON"), indent=indent or 0, json=True)
    try:
        text = json.dumps(value, ensure_ascii=False, indent=indent)
    except (TypeError, ValueError) as exc:
        raise Failure(f"cannot convert to JSON: {exc}") from None
    return _bounded(text, limit)


def _moment(value: Any) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) <= 64:
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            pass
    shown = value if isinstance(value, str) and len(value) <= 64 else describe(value)
    raise Failure(f"`date` needs an ISO 8601 date or a Unix timestamp, not {shown!s}")


@pass_context
def date_(context: Context, value: Any, fmt: str = "%Y-%m-%d") -> str:
    """`{{ order.created_at|date("%d %B %Y") }}`: ISO 8601 strings (as JSON carries dates),
    Unix timestamps (UTC) or dates, formatted with `strftime`."""
    if not isinstance(fmt, str):
        raise Failure("the `date` format must be a string")
    # strftime writes at most 256 characters per format character (CPython's own cap).
    whole_number(len(fmt), _limits(context).max_output_chars // 256, "date format length")
    return _moment(value).strftime(fmt)


# Pure filters whose output is no larger than their input (or a number).
_LINEAR: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "attr": jinja.do_attr,
    "capitalize": jinja.do_capitalize,
    "count": len,
    "d": jinja.do_default,
    "default": jinja.do_default,
    "dictsort": jinja.do_dictsort,
    "filesizeformat": jinja.do_filesizeformat,
    "first": jinja.sync_do_first,
    "float": jinja.do_float,
    "groupby": jinja.sync_do_groupby,
    "int": jinja.do_int,
    "items": jinja.do_items,
    "last": jinja.do_last,
    "length": len,
    "list": jinja.sync_do_list,
    "lower": jinja.do_lower,
    "map": jinja.sync_do_map,
    "max": jinja.do_max,
    "min": jinja.do_min,
    "reject": jinja.sync_do_reject,
    "rejectattr": jinja.sync_do_rejectattr,
    "reverse": jinja.do_reverse,
    "select": jinja.sync_do_select,
    "selectattr": jinja.sync_do_selectattr,
    "sort": jinja.do_sort,
    "striptags": jinja.do_striptags,
    "title": jinja.do_title,
    "trim": jinja.do_trim,
    "unique": jinja.sync_do_unique,
    "upper": jinja.do_upper,
    "urlencode": jinja.do_urlencode,
    "wordcount": jinja.do_wordcount,
}

FILTERS: dict[str, Callable[..., Any]] = {
    **_LINEAR,
    "batch": batch,
    "center": center,
    "date": date_,
    "format": format,
    "indent": indent,
    "join": join,
    "replace": replace,
    "round": round_,
    "slice": slice_,
    "string": string,
    "sum": sum_,
    "tojson": tojson,
    "truncate": truncate,
    "wordwrap": wordwrap,
}


@pass_environment
def safe_range(environment: Any, *args: int) -> range:
    """`range()` capped at `max_range` items; the cap is the one a render runs with."""
    limit = environment.limits.max_range
    items = range(*args)
    if _length(items) <= limit:
        return items
    raise LimitFailure("max_range", f"range() is limited to {limit} items")


def _length(items: range) -> int:
    try:
        return len(items)
    except OverflowError:  # more items than a C integer counts
        return 2**63


def make_dict(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return dict(*args, **kwargs)


def namespace(*args: Any, **kwargs: Any) -> Namespace:
    return Namespace(*args, **kwargs)


def cycler(*items: Any) -> Cycler:
    return Cycler(*items)


def joiner(sep: str = ", ") -> Joiner:
    return Joiner(sep)


# Functions, not Jinja's classes: a class would print as `<class ...>` and carries more methods.
GLOBALS: dict[str, Any] = {
    "range": safe_range,
    "dict": make_dict,
    "namespace": namespace,
    "cycler": cycler,
    "joiner": joiner,
}
