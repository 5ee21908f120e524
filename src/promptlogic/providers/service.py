"""Provider connections: create, read, change, delete. No HTTP here; callers commit.

Credentials are encrypted before they reach the session and never appear in audit summaries,
notifications or errors. Every change publishes on `provider`, so each worker drops its cached
resolution and its client for the connection.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit import service as audit
from promptlogic.audit.service import Actor
from promptlogic.db.notify import publish
from promptlogic.errors import Conflict, InvalidInput, NotFound
from promptlogic.pagination import decode_cursor, paginate
from promptlogic.providers.models import ProviderConnection
from promptlogic.providers.schemas import ProviderCreate, ProviderOut, ProviderUpdate
from promptlogic.providers.secrets import SecretBox

PROVIDER_TOPIC = "provider"
NEEDS_BASE_URL = ("openai_compatible", "azure_openai")
NEEDS_API_KEY = ("openai", "azure_openai")
HINT_MIN_KEY_LENGTH = 16  # shorter keys would give away too much of themselves


def secret_context(connection: ProviderConnection, field: str) -> str:
    """Binds a ciphertext to its tenant, record and field."""
    return f"{connection.tenant_id}/{connection.id}/{field}"


def to_out(connection: ProviderConnection) -> ProviderOut:
    return ProviderOut(
        id=connection.id,
        name=connection.name,
        kind=connection.kind,  # type: ignore[arg-type]
        base_url=connection.base_url,
        has_api_key=connection.api_key_encrypted is not None,
        api_key_last4=connection.api_key_hint,
        header_names=connection.header_names,
        timeout_seconds=connection.timeout_seconds,
        api_version=connection.api_version,
        is_default=connection.is_default,
        created_at=connection.created_at,
        updated_at=connection.updated_at,
    )


def _summary(connection: ProviderConnection) -> dict[str, Any]:
    """What the audit trail keeps: everything but the secrets themselves."""
    return {
        "kind": connection.kind,
        "base_url": connection.base_url,
        "has_api_key": connection.api_key_encrypted is not None,
        "header_names": list(connection.header_names),
        "timeout_seconds": connection.timeout_seconds,
        "api_version": connection.api_version,
        "is_default": connection.is_default,
    }


def _check(connection: ProviderConnection) -> None:
    """The combination rules, checked on the connection as it would be saved."""
    if connection.kind in NEEDS_BASE_URL and not connection.base_url:
        raise InvalidInput.field("body.base_url", f"required for kind `{connection.kind}`")
    if connection.kind in NEEDS_API_KEY and connection.api_key_encrypted is None:
        raise InvalidInput.field("body.api_key", f"required for kind `{connection.kind}`")
    if connection.kind == "azure_openai" and not connection.api_version:
        raise InvalidInput.field("body.api_version", "required for kind `azure_openai`")
    if connection.kind != "azure_openai" and connection.api_version:
        raise InvalidInput.field("body.api_version", "only for kind `azure_openai`")
    if connection.kind == "offline" and (connection.base_url or connection.api_key_encrypted):
        raise InvalidInput.field("body.kind", "an offline connection has no base_url or api_key")


def _set_api_key(connection: ProviderConnection, box: SecretBox, api_key: str | None) -> None:
    if api_key is None:
        connection.api_key_encrypted = connection.api_key_hint = None
        return
    connection.api_key_encrypted = box.encrypt(
        api_key, context=secret_context(connection, "api_key")
    )
    connection.api_key_hint = api_key[-4:] if len(api_key) >= HINT_MIN_KEY_LENGTH else None


def _set_headers(connection: ProviderConnection, box: SecretBox, headers: dict[str, str]) -> None:
    connection.header_names = sorted(headers)
    connection.headers_encrypted = (
        box.encrypt(json.dumps(headers), context=secret_context(connection, "default_headers"))
        if headers
        else None
    )


async def _clear_other_defaults(session: AsyncSession, connection: ProviderConnection) -> None:
    await session.execute(
        update(ProviderConnection)
        .where(
            ProviderConnection.tenant_id == connection.tenant_id,
            ProviderConnection.id != connection.id,
            ProviderConnection.is_default.is_(True),
        )
        .values(is_default=False, updated_at=datetime.now(UTC))
    )


async def _save(session: AsyncSession, connection: ProviderConnection, *, is_new: bool) -> None:
    """Flush, turning a lost race (same name, or a second default) into a 409."""
    try:
        async with session.begin_nested():
            if is_new:
                session.add(connection)
            await session.flush()
    except IntegrityError as exc:
        if "uq_provider_connections_default" in str(exc.orig):
            raise Conflict("Another default provider was set at the same time; retry.") from None
        raise Conflict(f"A provider named `{connection.name}` already exists.") from None
    await session.refresh(connection, ["created_at", "updated_at"])


async def _announce(session: AsyncSession, connection: ProviderConnection) -> None:
    await publish(
        session,
        PROVIDER_TOPIC,
        tenant_id=str(connection.tenant_id),
        id=str(connection.id),
        name=connection.name,
    )


async def get_connection(
    session: AsyncSession, *, tenant_id: uuid.UUID, name: str
) -> ProviderConnection:
    connection = await session.scalar(
        ProviderConnection.for_tenant(tenant_id).where(ProviderConnection.name == name)
    )
    if connection is None:
        raise NotFound(f"No provider named `{name}`.")
    return connection


async def list_connections(
    session: AsyncSession, *, tenant_id: uuid.UUID, limit: int, cursor: str | None = None
) -> tuple[list[ProviderConnection], str | None]:
    """A page of the tenant's connections by name."""
    statement = (
        ProviderConnection.for_tenant(tenant_id).order_by(ProviderConnection.name).limit(limit + 1)
    )
    if cursor is not None:
        (after,) = decode_cursor(cursor, str)
        statement = statement.where(ProviderConnection.name > after)
    found = list((await session.scalars(statement)).all())
    return paginate(found, limit, lambda connection: (connection.name,))


async def create_connection(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    body: ProviderCreate,
    box: SecretBox,
    actor: Actor,
) -> ProviderConnection:
    """Create a connection; 409 if the name is taken. A new default replaces the old one."""
    taken = await session.scalar(
        ProviderConnection.for_tenant(tenant_id, ProviderConnection.id).where(
            ProviderConnection.name == body.name
        )
    )
    if taken is not None:
        raise Conflict(f"A provider named `{body.name}` already exists.")
    connection = ProviderConnection(
        id=uuid.uuid4(),  # known before the flush: the ciphertexts are bound to it
        tenant_id=tenant_id,
        name=body.name,
        kind=body.kind,
        base_url=body.base_url,
        timeout_seconds=body.timeout_seconds,
        api_version=body.api_version,
        is_default=body.is_default,
    )
    _set_api_key(connection, box, body.api_key.get_secret_value() if body.api_key else None)
    _set_headers(
        connection, box, {k: v.get_secret_value() for k, v in body.default_headers.items()}
    )
    _check(connection)
    if connection.is_default:
        await _clear_other_defaults(session, connection)
    await _save(session, connection, is_new=True)
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="provider.create",
        target_type="provider",
        target_id=connection.name,
        after=_summary(connection),
    )
    await _announce(session, connection)
    return connection


async def update_connection(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    body: ProviderUpdate,
    box: SecretBox,
    actor: Actor,
) -> ProviderConnection:
    """Change the fields given; `null` clears the optional ones. An unchanged body is a no-op."""
    connection = await get_connection(session, tenant_id=tenant_id, name=name)
    given = body.model_fields_set
    before = _summary(connection)
    replaces_secret = "api_key" in given or "default_headers" in given
    for field in ("kind", "timeout_seconds", "is_default"):
        if field in given and getattr(body, field) is None:
            raise InvalidInput.field(f"body.{field}", "must not be null")
    for field in ("kind", "base_url", "timeout_seconds", "api_version", "is_default"):
        if field in given:
            setattr(connection, field, getattr(body, field))
    if "api_key" in given:
        _set_api_key(connection, box, body.api_key.get_secret_value() if body.api_key else None)
    if "default_headers" in given:
        headers = body.default_headers or {}
        _set_headers(connection, box, {k: v.get_secret_value() for k, v in headers.items()})
    _check(connection)
    after = _summary(connection)
    if after == before and not replaces_secret:
        return connection
    connection.updated_at = datetime.now(UTC)
    if connection.is_default and not before["is_default"]:
        await _clear_other_defaults(session, connection)
    await _save(session, connection, is_new=False)
    if replaces_secret:  # say that a secret changed, never what it is
        after["secrets_replaced"] = sorted(given & {"api_key", "default_headers"})
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="provider.update",
        target_type="provider",
        target_id=name,
        before=before,
        after=after,
    )
    await _announce(session, connection)
    return connection


async def delete_connection(
    session: AsyncSession, *, tenant_id: uuid.UUID, name: str, actor: Actor
) -> None:
    """Delete a connection; runs naming it fail with a 422 from then on."""
    connection = await get_connection(session, tenant_id=tenant_id, name=name)
    before = _summary(connection)
    await session.delete(connection)
    await session.flush()
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="provider.delete",
        target_type="provider",
        target_id=name,
        before=before,
    )
    await _announce(session, connection)
