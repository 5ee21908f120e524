"""Which connection a run uses, and one pooled openai client per connection, per worker.

Resolution order for `model.provider`: the named connection; else the tenant's default; else
`OPENAI_API_KEY` / `OPENAI_BASE_URL` from the settings; else the built-in offline provider.
Resolutions are cached per worker (a cached one costs no database round trip) and dropped by
the `provider` NOTIFY. Clients are keyed by the connection's id and fingerprint, so a changed
connection gets a new client even if a notification raced with a load; the old one is closed
after a grace period, so calls in flight on it can finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openai import AsyncAzureOpenAI, AsyncOpenAI, DefaultAioHttpClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from promptlogic.errors import InvalidInput
from promptlogic.providers.base import ChatProvider
from promptlogic.providers.models import ProviderConnection
from promptlogic.providers.offline import OfflineProvider
from promptlogic.providers.openai_chat import OpenAIChatProvider
from promptlogic.providers.secrets import SecretBox, SecretUnreadable
from promptlogic.providers.service import secret_context
from promptlogic.settings import Settings

log = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"
PROVIDER_FIELD = "model.provider"
NO_KEY = "not-needed"  # the SDK insists on a key; servers without auth (Ollama) ignore it
CLOSE_GRACE_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class ResolvedConnection:
    """A connection as a run uses it, with its secrets decrypted (kept in memory only)."""

    name: str
    kind: str
    source: str  # "named", "default", "environment" or "offline"
    id: uuid.UUID | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    timeout_seconds: float = 60.0
    api_version: str | None = None
    fingerprint: str = ""  # changes whenever the stored connection does

    @property
    def client_key(self) -> str:
        return str(self.id) if self.id is not None else self.source


OFFLINE = ResolvedConnection(name="offline", kind="offline", source="offline")


def build_client(connection: ResolvedConnection) -> AsyncOpenAI:
    """A client with our settings only: the SDK's own retries off (the run path retries), and
    nothing it would otherwise pick up from the process environment for a tenant's calls."""
    common: dict[str, Any] = {
        "api_key": connection.api_key or NO_KEY,
        "timeout": connection.timeout_seconds,
        "max_retries": 0,
        "default_headers": dict(connection.headers) or None,
        # aiohttp instead of the default httpx transport: about a third of the CPU per call,
        # and no scan of every pooled connection before each request.
        "http_client": DefaultAioHttpClient(timeout=connection.timeout_seconds),
    }
    if connection.kind == "azure_openai":
        client: AsyncOpenAI = AsyncAzureOpenAI(
            azure_endpoint=connection.base_url,
            api_version=connection.api_version,
            **common,
        )
    else:
        client = AsyncOpenAI(base_url=connection.base_url or OPENAI_BASE_URL, **common)
    for attribute in ("organization", "project", "admin_api_key", "webhook_secret"):
        if hasattr(client, attribute):  # read from OPENAI_ORG_ID & co. by the SDK
            setattr(client, attribute, None)
    return client


class ProviderRegistry:
    """Per-worker resolution cache and client pool; owned by the app's lifespan."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        box: SecretBox,
        settings: Settings,
        *,
        is_live: Callable[[], bool] = lambda: True,
        close_grace_seconds: float = CLOSE_GRACE_SECONDS,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._box = box
        self._environment = _environment_connection(settings)
        self._is_live = is_live
        self._close_grace = close_grace_seconds
        self._resolved: dict[tuple[uuid.UUID, str | None], ResolvedConnection] = {}
        self._clients: dict[str, tuple[str, AsyncOpenAI]] = {}
        self._retiring: dict[asyncio.Task[None], AsyncOpenAI] = {}
        self._offline = OfflineProvider()
        self.generation = 0

    async def resolve_connection(
        self, tenant_id: uuid.UUID, provider_name: str | None
    ) -> ResolvedConnection:
        """The connection a run of `tenant_id` uses; 422 naming `model.provider` if the named
        one does not exist."""
        key = (tenant_id, provider_name)
        cached = self._resolved.get(key)
        if cached is not None:
            return cached
        generation = self.generation
        resolved = await self._load(tenant_id, provider_name)
        if generation == self.generation and self._is_live():
            self._resolved[key] = resolved
        return resolved

    def client_for(self, connection: ResolvedConnection) -> AsyncOpenAI:
        """The pooled client of `connection`, built on first use and reused after."""
        if connection.kind == "offline":
            raise ValueError("the offline provider has no openai client")
        current = self._clients.get(connection.client_key)
        if current is not None and current[0] == connection.fingerprint:
            return current[1]
        client = build_client(connection)
        self._clients[connection.client_key] = (connection.fingerprint, client)
        if current is not None:
            self._retire(current[1])
        return client

    def provider_for(self, connection: ResolvedConnection) -> ChatProvider:
        """The `ChatProvider` to call: one attempt per call (wrap it in `reliability`)."""
        if connection.kind == "offline":
            return self._offline
        return OpenAIChatProvider.for_connection(self.client_for(connection), connection)

    def on_provider_changed(self, message: dict[str, Any]) -> None:
        """NOTIFY handler for `provider`: forget the tenant's resolutions and the client."""
        self.generation += 1
        try:
            tenant_id = uuid.UUID(str(message.get("tenant_id")))
        except ValueError:
            self.clear()
            return
        for key in [key for key in self._resolved if key[0] == tenant_id]:
            del self._resolved[key]
        dropped = self._clients.pop(str(message.get("id")), None)
        if dropped is not None:
            self._retire(dropped[1])

    def clear(self) -> None:
        """Forget everything (notifications may have been missed)."""
        self.generation += 1
        self._resolved.clear()
        for _, client in self._clients.values():
            self._retire(client)
        self._clients.clear()

    async def aclose(self) -> None:
        """Close every client now (shutdown)."""
        for task in self._retiring:
            task.cancel()
        clients = [client for _, client in self._clients.values()] + list(self._retiring.values())
        self._clients.clear()
        self._retiring.clear()
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()

    def _retire(self, client: AsyncOpenAI) -> None:
        async def close_later() -> None:
            await asyncio.sleep(self._close_grace)
            await client.close()

        task = asyncio.get_running_loop().create_task(close_later())
        self._retiring[task] = client
        task.add_done_callback(lambda done: self._retiring.pop(done, None))

    async def _load(self, tenant_id: uuid.UUID, provider_name: str | None) -> ResolvedConnection:
        statement = ProviderConnection.for_tenant(tenant_id)
        if provider_name is not None:
            statement = statement.where(ProviderConnection.name == provider_name)
        else:
            statement = statement.where(ProviderConnection.is_default.is_(True))
        async with self._sessionmaker() as session:
            row = await session.scalar(statement)
        if row is not None:
            return self._decrypted(row, "named" if provider_name is not None else "default")
        if provider_name is not None:
            raise InvalidInput.field(
                PROVIDER_FIELD,
                f"no provider connection named `{provider_name}`; create it with "
                "POST /v1/providers or leave `model.provider` out to use the default",
            )
        return self._environment or OFFLINE

    def _decrypted(self, row: ProviderConnection, source: str) -> ResolvedConnection:
        try:
            api_key = (
                self._box.decrypt(row.api_key_encrypted, context=secret_context(row, "api_key"))
                if row.api_key_encrypted is not None
                else None
            )
            headers = (
                json.loads(
                    self._box.decrypt(
                        row.headers_encrypted, context=secret_context(row, "default_headers")
                    )
                )
                if row.headers_encrypted is not None
                else {}
            )
        except SecretUnreadable:
            raise InvalidInput.field(
                PROVIDER_FIELD,
                f"the credentials of provider `{row.name}` cannot be decrypted (was the secret "
                "key changed?); set its api_key and default_headers again",
            ) from None
        return ResolvedConnection(
            name=row.name,
            kind=row.kind,
            source=source,
            id=row.id,
            base_url=row.base_url,
            api_key=api_key,
            headers=tuple(sorted(headers.items())),
            timeout_seconds=row.timeout_seconds,
            api_version=row.api_version,
            fingerprint=row.updated_at.isoformat(),
        )


def _environment_connection(settings: Settings) -> ResolvedConnection | None:
    if settings.openai_api_key is None and settings.openai_base_url is None:
        return None
    return ResolvedConnection(
        name="environment",
        kind="openai" if settings.openai_base_url is None else "openai_compatible",
        source="environment",
        base_url=settings.openai_base_url or OPENAI_BASE_URL,
        api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else None,
        fingerprint="environment",
    )
