"""Context records: read, write with optimistic concurrency, bulk upsert. No HTTP; callers commit.

Every change bumps the record's version (an unchanged value is not a change), is audited, and
is announced on CONTEXT_TOPIC so caches of records drop it. The audit keeps names and versions,
never values: records often hold personal data, and deleting a record must remove it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Text, bindparam, cast, delete, func, literal, select, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID, insert
from sqlalchemy.dialects.postgresql.dml import Insert
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit import service as audit
from promptlogic.audit.service import Actor
from promptlogic.context.models import ContextRecord
from promptlogic.db.notify import publish
from promptlogic.errors import Conflict, NotFound
from promptlogic.pagination import decode_cursor, paginate

CONTEXT_TOPIC = "context_records"
"""Payload: `tenant_id`, `namespace`, and `key` (one record) or `keys` (several); neither means
every record of the namespace may have changed."""

NOTIFY_MAX_BYTES = 7000  # pg_notify refuses payloads of 8000 bytes or more
AUDIT_MAX_KEYS = 1000  # changed keys listed in a bulk upload's audit event
CHUNK_ROWS = 1000  # rows per INSERT of a bulk upload

RecordKey = tuple[str, str]  # (namespace, key)


@dataclass(frozen=True, slots=True)
class Precondition:
    """What the writer last saw: If-Match `"<n>"` or `*`, or If-None-Match `*`."""

    expected_version: int | None = None
    must_exist: bool = False
    create_only: bool = False


@dataclass(frozen=True, slots=True)
class PutResult:
    record: ContextRecord
    created: bool
    changed: bool


@dataclass(slots=True)
class BulkCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    versions: dict[str, int] = field(default_factory=dict)  # changed key -> its new version


def _name(namespace: str, key: str) -> str:
    return f"`{namespace}/{key}`"


def _where_record(tenant_id: uuid.UUID, namespace: str, key: str) -> tuple[Any, ...]:
    return (
        ContextRecord.tenant_id == tenant_id,
        ContextRecord.namespace == namespace,
        ContextRecord.key == key,
    )


async def find_record(
    session: AsyncSession, *, tenant_id: uuid.UUID, namespace: str, key: str
) -> ContextRecord | None:
    return await session.scalar(
        ContextRecord.for_tenant(tenant_id)
        .where(ContextRecord.namespace == namespace, ContextRecord.key == key)
        .execution_options(populate_existing=True)
    )


async def get_record(
    session: AsyncSession, *, tenant_id: uuid.UUID, namespace: str, key: str
) -> ContextRecord:
    record = await find_record(session, tenant_id=tenant_id, namespace=namespace, key=key)
    if record is None:
        raise NotFound(f"No context record {_name(namespace, key)}.")
    return record


async def get_records(
    session: AsyncSession, *, tenant_id: uuid.UUID, keys: Sequence[RecordKey]
) -> dict[RecordKey, ContextRecord]:
    """The tenant's records among `keys`, in one query; a missing one is absent from the dict."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    rows = await session.scalars(
        ContextRecord.for_tenant(tenant_id).where(
            tuple_(ContextRecord.namespace, ContextRecord.key).in_(wanted)
        )
    )
    return {(row.namespace, row.key): row for row in rows}


def prefix_bound(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix`, in code point order (the
    "C" collation of the key column); None when there is none (a prefix of U+10FFFF only)."""
    trimmed = prefix.rstrip("\U0010ffff")
    if not trimmed:
        return None
    following = ord(trimmed[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates are not characters
        following = 0xE000
    return trimmed[:-1] + chr(following)


async def list_records(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    namespace: str,
    limit: int,
    cursor: str | None = None,
    prefix: str | None = None,
) -> tuple[list[ContextRecord], str | None]:
    """A page of a namespace's records by key; `prefix` is an index range, not a LIKE."""
    statement = (
        ContextRecord.for_tenant(tenant_id)
        .where(ContextRecord.namespace == namespace)
        .order_by(ContextRecord.key)
        .limit(limit + 1)
    )
    if prefix:
        statement = statement.where(ContextRecord.key >= prefix)
        bound = prefix_bound(prefix)
        if bound is not None:
            statement = statement.where(ContextRecord.key < bound)
    if cursor is not None:
        (after,) = decode_cursor(cursor, str)
        statement = statement.where(ContextRecord.key > after)
    records = list((await session.scalars(statement)).all())
    return paginate(records, limit, lambda record: (record.key,))


def _json(encoded: str) -> Any:
    return cast(literal(encoded, Text), JSONB)


def _on_conflict_replace(statement: Insert) -> Insert:
    """Replace the value of an existing record, unless it is the same value (no change)."""
    return statement.on_conflict_do_update(
        constraint="pk_context_records",
        set_={
            "value": statement.excluded.value,
            "version": ContextRecord.version + 1,
            "updated_at": func.now(),
            "updated_by": statement.excluded.updated_by,
        },
        where=ContextRecord.value.is_distinct_from(statement.excluded.value),
    )


async def put_record(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    namespace: str,
    key: str,
    encoded: str,
    actor: Actor,
    precondition: Precondition = Precondition(),
) -> PutResult:
    """Create or replace a record with the value `encoded` (JSON text from `encode_value`).

    One statement decides, so concurrent writers cannot both win: a stale If-Match or an
    If-None-Match on an existing record is a 409 and changes nothing.
    """
    new_value = _json(encoded)  # one parameter, however often the statement names it
    if precondition.create_only:
        statement = (
            insert(ContextRecord)
            .values(
                tenant_id=tenant_id,
                namespace=namespace,
                key=key,
                value=new_value,
                updated_by=actor.name,
            )
            .on_conflict_do_nothing(constraint="pk_context_records")
        )
    elif precondition.expected_version is not None or precondition.must_exist:
        statement = (
            update(ContextRecord)
            .where(
                *_where_record(tenant_id, namespace, key),
                ContextRecord.value.is_distinct_from(new_value),
            )
            .values(
                value=new_value,
                version=ContextRecord.version + 1,
                updated_at=func.now(),
                updated_by=actor.name,
            )
        )
        if precondition.expected_version is not None:
            statement = statement.where(ContextRecord.version == precondition.expected_version)
    else:
        statement = _on_conflict_replace(
            insert(ContextRecord).values(
                tenant_id=tenant_id,
                namespace=namespace,
                key=key,
                value=new_value,
                updated_by=actor.name,
            )
        )
    written = await session.scalar(
        statement.returning(ContextRecord), execution_options={"populate_existing": True}
    )
    if written is None:
        current = await find_record(session, tenant_id=tenant_id, namespace=namespace, key=key)
        _check_unchanged(namespace, key, current, precondition)
        assert current is not None
        return PutResult(current, created=False, changed=False)
    created = written.version == 1
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="context.record.put",
        target_type="context_record",
        target_id=key,
        before=None if created else _summary(namespace, key, written.version - 1),
        after=_summary(namespace, key, written.version, size=len(encoded.encode())),
    )
    await publish(session, CONTEXT_TOPIC, tenant_id=str(tenant_id), namespace=namespace, key=key)
    return PutResult(written, created=created, changed=True)


def _check_unchanged(
    namespace: str, key: str, current: ContextRecord | None, precondition: Precondition
) -> None:
    """Nothing was written: say why, unless the value was already the one sent."""
    name = _name(namespace, key)
    if precondition.create_only:
        version = "" if current is None else f" (version {current.version})"
        raise Conflict(
            f"Context record {name} already exists{version}; If-None-Match: * only creates. "
            "Send If-Match with its ETag to replace it."
        )
    if current is None:
        if precondition.expected_version is not None:
            seen = f"expected version {precondition.expected_version}"
        elif precondition.must_exist:
            seen = "expected it to exist (If-Match: *)"
        else:  # it was there, with this value, and then deleted before we looked
            raise Conflict(f"Context record {name} was deleted while you wrote it. Retry.")
        raise Conflict(f"Context record {name} does not exist, but you {seen}.")
    expected = precondition.expected_version
    if expected is not None and current.version != expected:
        raise Conflict(
            f"Context record {name} is at version {current.version}, but you expected version "
            f"{expected}. Reload it and retry."
        )


def _summary(namespace: str, key: str, version: int, *, size: int | None = None) -> dict[str, Any]:
    summary: dict[str, Any] = {"namespace": namespace, "key": key, "version": version}
    if size is not None:
        summary["bytes"] = size
    return summary


async def delete_record(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    namespace: str,
    key: str,
    actor: Actor,
    expected_version: int | None = None,
) -> None:
    """Delete a record: 404 if there is none, 409 if it is not at `expected_version`."""
    statement = delete(ContextRecord).where(*_where_record(tenant_id, namespace, key))
    if expected_version is not None:
        statement = statement.where(ContextRecord.version == expected_version)
    version = await session.scalar(statement.returning(ContextRecord.version))
    if version is None:
        current = await find_record(session, tenant_id=tenant_id, namespace=namespace, key=key)
        if current is None:
            raise NotFound(f"No context record {_name(namespace, key)}.")
        raise Conflict(
            f"Context record {_name(namespace, key)} is at version {current.version}, but you "
            f"expected version {expected_version}. Reload it and retry."
        )
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="context.record.delete",
        target_type="context_record",
        target_id=key,
        before=_summary(namespace, key, version),
    )
    await publish(session, CONTEXT_TOPIC, tenant_id=str(tenant_id), namespace=namespace, key=key)


def _bulk_statement(tenant_id: uuid.UUID, namespace: str, actor: Actor) -> Any:
    """One INSERT for a chunk of rows, passed as two arrays (keys, JSON texts): the statement
    text is the same for any chunk size, so it is prepared once."""
    incoming = (
        func.unnest(bindparam("keys", type_=ARRAY(Text)), bindparam("values", type_=ARRAY(Text)))
        .table_valued("key", "value")
        .render_derived(name="incoming")
    )
    rows = select(
        literal(tenant_id, UUID(as_uuid=True)),
        literal(namespace, Text),
        incoming.c.key,
        cast(incoming.c.value, JSONB),
        literal(actor.name, Text),
    ).select_from(incoming)
    return _on_conflict_replace(
        insert(ContextRecord.__table__).from_select(
            ["tenant_id", "namespace", "key", "value", "updated_by"], rows
        )
    ).returning(ContextRecord.key, ContextRecord.version)


async def bulk_upsert(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    namespace: str,
    rows: Sequence[tuple[str, str]],
    actor: Actor,
    rejected: int = 0,
) -> BulkCounts:
    """Create or replace each (key, JSON text) row, a chunk per statement, in key order (so
    concurrent uploads lock rows in the same order). Keys must be distinct."""
    counts = BulkCounts()
    ordered = sorted(rows)
    statement = _bulk_statement(tenant_id, namespace, actor)
    for start in range(0, len(ordered), CHUNK_ROWS):
        chunk = ordered[start : start + CHUNK_ROWS]
        result = await session.execute(
            statement, {"keys": [k for k, _ in chunk], "values": [v for _, v in chunk]}
        )
        written = {key: version for key, version in result}
        counts.unchanged += len(chunk) - len(written)
        counts.created += sum(1 for version in written.values() if version == 1)
        counts.updated += sum(1 for version in written.values() if version > 1)
        counts.versions.update(written)
    if counts.versions:
        await _announce_bulk(session, tenant_id, namespace, counts, actor, rejected)
    return counts


async def _announce_bulk(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    namespace: str,
    counts: BulkCounts,
    actor: Actor,
    rejected: int,
) -> None:
    changed = sorted(counts.versions.items())
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="context.records.bulk",
        target_type="context_namespace",
        target_id=namespace,
        after={
            "namespace": namespace,
            "created": counts.created,
            "updated": counts.updated,
            "unchanged": counts.unchanged,
            "rejected": rejected,
            "versions": dict(changed[:AUDIT_MAX_KEYS]),
            "versions_truncated": len(changed) > AUDIT_MAX_KEYS,
        },
    )
    about: dict[str, Any] = {"tenant_id": str(tenant_id), "namespace": namespace}
    keys = [key for key, _ in changed]
    if len(json.dumps({"topic": CONTEXT_TOPIC, **about, "keys": keys})) <= NOTIFY_MAX_BYTES:
        about["keys"] = keys
    # else too many to name: the namespace-wide message drops all of its cached records
    await publish(session, CONTEXT_TOPIC, **about)
