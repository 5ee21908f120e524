"""The 422s a template produces, and how a worker's failure becomes one.

Each names the field it concerns (the template, or `variables.NAME` for a missing variable), the
line when known, and for a limit the `RenderLimits` field that was exceeded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from promptlogic.errors import InvalidInput, Problem


class RenderError(InvalidInput):
    """A template could not be checked or rendered."""

    def __init__(
        self,
        message: str,
        line: int | None = None,
        *,
        field: str = "template",
        limit: str | None = None,
        include: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.message = message
        self.line = line
        self.field = field
        self.limit = limit
        self.include = include
        location = ", ".join(_parts(include, line))
        detail = detail or (f"{location}: {message}" if location else message)
        problem: dict[str, Any] = {"field": field, "message": detail}
        if line is not None:
            problem["line"] = line
        super().__init__(detail, errors=[problem])


class TemplateProblem(RenderError):
    """The source is not an acceptable template: syntax, a forbidden tag, size, an include."""


class LimitExceeded(RenderError):
    """A render or check reached a bound; `limit` names the `RenderLimits` field (or `memory`)."""


class UndefinedVariable(RenderError):
    """The template uses a variable (`name`) or an attribute that was not given."""

    name: str | None = None


class SandboxViolation(RenderError):
    """The template reached for something the sandbox does not allow."""


class RendererUnavailable(Problem):
    """The render workers are not running, or all stayed busy past the queue timeout."""

    status, slug = 503, "renderer-unavailable"


def _parts(include: str | None, line: int | None) -> list[str]:
    parts = [f"in include `{include}`"] if include else []
    return parts + ([f"line {line}"] if line is not None else [])


_KINDS: dict[str, type[RenderError]] = {
    "template": TemplateProblem,
    "limit": LimitExceeded,
    "undefined": UndefinedVariable,
    "security": SandboxViolation,
}


def from_failure(failure: Mapping[str, Any], fields: Sequence[str], whole: str) -> RenderError:
    """The error for a worker's failure; `fields[i]` names entry template i, `whole` the rest."""
    index = failure.get("template")
    field = fields[index] if isinstance(index, int) and 0 <= index < len(fields) else whole
    message = str(failure.get("message") or "the template failed")
    line, include = failure.get("line"), failure.get("include")
    kind = _KINDS.get(str(failure.get("kind")), RenderError)
    name = failure.get("name")
    if kind is UndefinedVariable and name:
        detail = f"`{name}` is undefined ({', '.join([field, *_parts(include, line)])})"
        error = UndefinedVariable(
            message, line, field=f"variables.{name}", include=include, detail=detail
        )
        error.name = name
        return error
    return kind(message, line, field=field, limit=failure.get("limit"), include=include)
