"""Request and response bodies of tenancy: the principal, API keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from promptlogic.tenancy.roles import Scope, ordered
from promptlogic.validation import as_utc, single_line


def _in_future(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    value = as_utc(value)
    if value <= datetime.now(UTC):
        raise ValueError("must be in the future")
    return value


def _unique_scopes(scopes: list[Scope]) -> list[Scope]:
    return ordered(set(scopes))


KeyName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(single_line),
]


class MeOut(BaseModel):
    tenant: TenantOut
    key: KeyRef
    scopes: list[Scope]


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    slug: str
    name: str


class KeyRef(BaseModel):
    id: uuid.UUID
    name: str


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: KeyName
    scopes: Annotated[list[Scope], Field(min_length=1), AfterValidator(_unique_scopes)]
    expires_at: Annotated[datetime | None, AfterValidator(_in_future)] = None


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[Scope]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    api_key: str = Field(description="The key itself. Shown only in this response; store it now.")


MeOut.model_rebuild()
