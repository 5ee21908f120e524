"""Request and response bodies of context records."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from promptlogic.context.values import key_problem

JsonObject = dict[str, Any]


def checked_key(key: str) -> str:
    problem = key_problem(key)
    if problem is not None:
        raise PydanticCustomError("context_key", problem)
    return key


RecordKeyText = Annotated[str, AfterValidator(checked_key)]


class RecordPut(BaseModel):
    """The body of a PUT: the record's whole new value, a JSON object."""

    model_config = ConfigDict(extra="forbid")

    value: JsonObject = Field(description="Any JSON object, up to 256 KiB as compact JSON.")


class BulkLine(BaseModel):
    """One line of a bulk upload."""

    model_config = ConfigDict(extra="forbid")

    key: RecordKeyText
    value: JsonObject


class RecordOut(BaseModel):
    namespace: str
    key: str
    value: JsonObject
    version: int = Field(description="1 when created, one more on each change; the ETag.")
    created_at: datetime
    updated_at: datetime
    updated_by: str


class LineError(BaseModel):
    line: int = Field(description="1-based line number in the upload.")
    errors: list[dict[str, str]] = Field(description="`{field, message}` per problem.")


class BulkOut(BaseModel):
    written: int = Field(description="Good lines: created + updated + unchanged.")
    created: int
    updated: int
    unchanged: int = Field(description="Lines whose value was already the record's value.")
    errors: list[LineError] = Field(description="Each bad line, by number; none was written.")
