"""Turn settings into a concrete database: the embedded Postgres when none is configured."""

from __future__ import annotations

from pydantic import SecretStr

from promptlogic.db.embedded import embedded_database_url
from promptlogic.settings import Settings


def resolve_settings(settings: Settings | None = None) -> Settings:
    """Settings with a database URL and a secret key, starting the embedded Postgres if needed."""
    settings = settings or Settings()
    if not settings.embedded:
        return settings
    return settings.model_copy(
        update={
            "database_url": embedded_database_url(settings.home_dir),
            "secret_key": SecretStr(settings.resolved_secret_key()),
        }
    )
