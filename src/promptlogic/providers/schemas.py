"""Request and response bodies of provider connections and the model catalog.

Credentials are write-only: `api_key` and header values come in, only whether a key is set
(and its last four characters, for long keys) and the header names go out.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    StringConstraints,
)

from promptlogic.prompts.schemas import NAME_PATTERN
from promptlogic.validation import single_line

Kind = Literal["openai", "azure_openai", "openai_compatible", "offline"]
ProviderName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$"
ModelName = Annotated[str, StringConstraints(pattern=MODEL_PATTERN)]
HEADER_NAME_PATTERN = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$"
MAX_HEADERS = 20


def http_url(value: str) -> str:
    """An absolute http(s) URL without credentials, query or fragment (which could hold
    secrets that would then be shown and logged: put those in `api_key` or a header)."""
    value = single_line(value)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError("must not contain credentials; use `api_key` or `default_headers`")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment; use `default_headers`")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    return value.rstrip("/")


def _header_value(value: SecretStr) -> SecretStr:
    if any(c in value.get_secret_value() for c in "\r\n\x00"):
        raise ValueError("must not contain line breaks or NUL")
    return value


BaseUrl = Annotated[str, StringConstraints(max_length=2000), AfterValidator(http_url)]
ApiKeyIn = Annotated[SecretStr, Field(min_length=1, max_length=2000)]
HeaderName = Annotated[str, StringConstraints(pattern=HEADER_NAME_PATTERN)]
HeaderValue = Annotated[SecretStr, Field(max_length=4000), AfterValidator(_header_value)]
Headers = Annotated[dict[HeaderName, HeaderValue], Field(max_length=MAX_HEADERS)]
Timeout = Annotated[float, Field(gt=0, le=600)]
ApiVersion = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,50}$")]
Price = Annotated[
    Decimal,
    Field(ge=0, le=Decimal("999999"), decimal_places=6),
    PlainSerializer(float, return_type=float, when_used="json"),
]


class ProviderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ProviderName
    kind: Kind
    base_url: BaseUrl | None = Field(
        default=None, description="Required for `openai_compatible` and `azure_openai`."
    )
    api_key: ApiKeyIn | None = Field(default=None, description="Stored encrypted; never returned.")
    default_headers: Headers = Field(
        default={},
        description="Sent on every call. Values are stored encrypted; only names are returned.",
    )
    timeout_seconds: Timeout = 60.0
    api_version: ApiVersion | None = Field(default=None, description="For `azure_openai` only.")
    is_default: bool = Field(
        default=False, description="Use it for runs that name no provider (one per tenant)."
    )


class ProviderUpdate(BaseModel):
    """Only the fields given change; `null` clears `base_url`, `api_key`, `api_version` and
    `default_headers` (which is replaced as a whole when given)."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind | None = None
    base_url: BaseUrl | None = None
    api_key: ApiKeyIn | None = None
    default_headers: Headers | None = None
    timeout_seconds: Timeout | None = None
    api_version: ApiVersion | None = None
    is_default: bool | None = None


class ProviderOut(BaseModel):
    id: uuid.UUID
    name: str
    kind: Kind
    base_url: str | None
    has_api_key: bool
    api_key_last4: str | None = Field(description="Shown only for keys of 16+ characters.")
    header_names: list[str]
    timeout_seconds: float
    api_version: str | None
    is_default: bool
    created_at: datetime
    updated_at: datetime


class PriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_per_million: Price
    output_per_million: Price


class ModelOut(BaseModel):
    name: str
    input_per_million: Price
    output_per_million: Price
    source: Literal["catalog", "tenant"] = Field(
        description="`tenant` when the tenant's own price overrides (or adds to) the catalog."
    )
    updated_at: datetime
