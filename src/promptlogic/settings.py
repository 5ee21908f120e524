"""The one reader of the environment: every setting, its default and its validation."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name, not a secret
MIN_SECRET_KEY_LENGTH = 32


class Settings(BaseSettings):
    """Service settings, read from `PROMPTLOGIC_*` variables (and a `.env` file if present)."""

    model_config = SettingsConfigDict(
        env_prefix="PROMPTLOGIC_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        populate_by_name=True,  # fields with an un-prefixed alias can still be set by name
    )

    database_url: str | None = Field(
        default=None,
        description="postgresql+asyncpg://… URL. Unset: an embedded Postgres under `home`.",
    )
    home: Path = Field(
        default=Path(".promptlogic"),
        description="Where the embedded Postgres, the generated secret key and demo data live.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key for signing and encryption (32+ characters). "
        "Required with `database_url`; generated under `home` otherwise.",
    )
    host: str = Field(default="127.0.0.1", description="Address `serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `serve` binds to.")
    workers: int = Field(default=1, ge=1, le=64, description="Worker processes for `serve`.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log level of the service."
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest request body accepted (413 beyond)."
    )
    db_pool_size: int = Field(default=10, ge=1, description="Connections kept per worker.")
    db_max_overflow: int = Field(default=10, ge=0, description="Extra connections under load.")
    db_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Timeout for connecting and for readiness checks."
    )
    api_key_cache_size: int = Field(
        default=10_000, ge=1, description="API keys kept in memory per worker."
    )
    usage_flush_seconds: float = Field(
        default=5.0, gt=0, description="How often last-used times of API keys are written."
    )
    run_records: Literal["buffered", "durable"] = Field(
        default="buffered",
        description="`buffered`: run records are written in batches behind the response; a hard "
        "kill loses those of the last flush interval (SIGTERM flushes them). `durable`: each "
        "response waits for its record's group commit.",
    )
    run_flush_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often buffered run records are written."
    )
    render_workers: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Sandboxed template worker processes per service worker "
        "(unset: three per CPU, at most 16).",
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias="OPENAI_API_KEY",
        description="Fallback provider key (un-prefixed, as the openai SDK names it): used by "
        "runs of a tenant without a provider connection of its own.",
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias="OPENAI_BASE_URL",
        description="Base URL for the fallback provider (unset: https://api.openai.com/v1).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Web origins whose pages may call the API from the browser, separated by "
        "commas (`https://app.example.com`): a product app's end users editing their rule set "
        "with a rule-set token. Empty: no cross-origin calls.",
    )
    seed_demo: bool = Field(
        default=True, description="Seed the `demo` tenant on the embedded database's first start."
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        """Comma-separated, as an environment variable gives them."""
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _asyncpg_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.startswith(("postgres://", "postgresql://")):
            value = "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not value.startswith("postgresql+asyncpg://"):
            raise ValueError("must be a postgresql+asyncpg:// URL")
        return value

    @field_validator("openai_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_KEY_LENGTH} characters")
        return value

    @model_validator(mode="after")
    def _secret_with_external_database(self) -> Settings:
        if self.database_url and self.secret_key is None:
            raise ValueError(
                "PROMPTLOGIC_SECRET_KEY is required when PROMPTLOGIC_DATABASE_URL is set "
                '(make one with: python -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
        return self

    @property
    def embedded(self) -> bool:
        """True when no database URL is given and the embedded Postgres is used."""
        return self.database_url is None

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    def resolved_secret_key(self) -> str:
        """The configured secret key, or the one generated once under `home` (embedded only)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return _load_or_create_secret(self.home_dir / SECRET_KEY_FILE)


def _load_or_create_secret(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key
