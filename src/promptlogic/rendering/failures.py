"""Failures raised inside the sandbox, in a form that crosses the process boundary as data.

Worker processes import only this side of the package (no FastAPI, no database), so these are
plain exceptions; `rendering.errors` turns them into the 422s the API answers with.
"""

from __future__ import annotations

from typing import Any


class Failure(Exception):
    """A template could not be checked or rendered; `kind` says which family of problem."""

    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        limit: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.limit = limit
        self.name = name
        self.include: str | None = None
        self.template: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "line": self.line,
            "limit": self.limit,
            "name": self.name,
            "include": self.include,
            "template": self.template,
        }


class SourceFailure(Failure):
    """The source is not an acceptable template: syntax, a forbidden tag, size, nesting."""

    kind = "template"


class LimitFailure(Failure):
    """A bound of `RenderLimits` was reached; `limit` names the field."""

    kind = "limit"

    def __init__(self, limit: str, message: str, *, line: int | None = None) -> None:
        if f"({limit})" not in message:
            message = f"{message} ({limit})"
        super().__init__(message, line=line, limit=limit)


class UndefinedFailure(Failure):
    """A variable the template needs was not given (`name`), or an attribute is missing."""

    kind = "undefined"


class SecurityFailure(Failure):
    """The template reached for something the sandbox does not allow."""

    kind = "security"
