"""What several settings sections share: form and query field types, and turning a failed
attempt into one message per form field, from a pydantic model or a service's Problem."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import Form, Query
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.errors import Problem
from promptlogic.validation import SINGLE_LINE_PATTERN

PAGE_SIZE = 50

Text = Annotated[str, Form(max_length=2000)]
Cursor = Annotated[str | None, Query(max_length=500)]
Filter = Annotated[str, Query(max_length=200, pattern=SINGLE_LINE_PATTERN)]
Errors = dict[str, str]


# Errors: one message per form field, from a pydantic model or a service's Problem

# Where pydantic's wording is about its types rather than the form.
PLAINER = {("scopes", "too_short"): "choose one or more"}


def _validation_errors(exc: ValidationError) -> Errors:
    errors: Errors = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "form"
        message = PLAINER.get((field, error["type"]), str(error["msg"]))
        errors.setdefault(field, message.removeprefix("Value error, "))
    return errors


def _problem_errors(exc: Problem, field: str) -> Errors:
    if not exc.errors:
        return {field: exc.detail}
    return {str(e["field"]).removeprefix("body."): str(e["message"]) for e in exc.errors}


async def failed(session: AsyncSession, exc: Exception, field: str) -> tuple[Errors, int]:
    """Undo the attempt; the form's errors (a Problem naming no field is put on `field`) and
    the status to answer with."""
    await session.rollback()
    if isinstance(exc, ValidationError):
        return _validation_errors(exc), 422
    assert isinstance(exc, Problem)
    return _problem_errors(exc, field), exc.status


# Values, as forms show and read them


def usd(amount: Decimal) -> str:
    """An amount without the column's trailing zeros: 0.15, not 0.150000; 100, not 1E+2."""
    return f"{amount.normalize():f}"


def or_none(value: str) -> str | None:
    value = value.strip()
    return value or None
