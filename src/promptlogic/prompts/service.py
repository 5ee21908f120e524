"""Prompt logic: prompts, immutable versions, labels and their history. No HTTP; callers commit."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit import service as audit
from promptlogic.audit.service import Actor
from promptlogic.db.notify import publish
from promptlogic.errors import Conflict, Forbidden, NotFound
from promptlogic.pagination import decode_cursor, invalid_cursor, paginate
from promptlogic.prompts.checks import check_version
from promptlogic.prompts.models import Prompt, PromptLabel, PromptVersion
from promptlogic.prompts.schemas import (
    MAX_VERSION,
    ModelSettings,
    PromptCreate,
    PromptUpdate,
    VersionCreate,
)
from promptlogic.rendering import Renderer, sharing

PROMPT_TOPIC = "prompt"
CONTENT_FIELDS = (
    "messages",
    "template",
    "input_schema",
    "model",
    "response_format",
    "tools",
    "context",
)


@dataclass(frozen=True, slots=True)
class SavedVersion:
    version: PromptVersion
    created: bool


# Prompts


async def get_prompt(session: AsyncSession, *, tenant_id: uuid.UUID, name: str) -> Prompt:
    prompt = await session.scalar(Prompt.for_tenant(tenant_id).where(Prompt.name == name))
    if prompt is None:
        raise NotFound(f"No prompt named `{name}`.")
    return prompt


async def lock_prompt(session: AsyncSession, *, tenant_id: uuid.UUID, name: str) -> Prompt:
    """The prompt, row-locked until commit: version numbers and label moves serialize here."""
    prompt = await session.scalar(
        Prompt.for_tenant(tenant_id)
        .where(Prompt.name == name)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if prompt is None:
        raise NotFound(f"No prompt named `{name}`.")
    return prompt


async def labels_of(
    session: AsyncSession, *, tenant_id: uuid.UUID, prompt_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[str, int]]:
    """Label name → version for each prompt, in one query."""
    rows = await session.execute(
        PromptLabel.for_tenant(
            tenant_id, PromptLabel.prompt_id, PromptLabel.name, PromptLabel.version
        )
        .where(PromptLabel.prompt_id.in_(prompt_ids))
        .order_by(PromptLabel.name)
    )
    labels: dict[uuid.UUID, dict[str, int]] = {prompt_id: {} for prompt_id in prompt_ids}
    for prompt_id, label, version in rows:
        labels[prompt_id][label] = version
    return labels


async def create_prompt(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    body: PromptCreate,
    actor: Actor,
    renderer: Renderer,
) -> tuple[Prompt, PromptVersion | None]:
    """Create a prompt, and its first version when one is given; 409 if the name is taken."""
    taken = await session.scalar(
        Prompt.for_tenant(tenant_id, Prompt.id).where(Prompt.name == body.name)
    )
    if taken is not None:
        raise Conflict(f"A prompt named `{body.name}` already exists.")
    prompt = Prompt(
        tenant_id=tenant_id,
        name=body.name,
        kind=body.kind,
        description=body.description,
        protected_labels=sorted(set(body.protected_labels)),
        latest_version=0,
    )
    try:
        async with session.begin_nested():  # a concurrent create of the same name loses here
            session.add(prompt)
    except IntegrityError:
        raise Conflict(f"A prompt named `{body.name}` already exists.") from None
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="prompt.create",
        target_type="prompt",
        target_id=prompt.name,
        after={"kind": prompt.kind, "description": prompt.description},
    )
    version = None
    if body.version is not None:
        saved = await _save_version(
            session,
            prompt=prompt,
            body=body.version,
            actor=actor,
            field="version",
            renderer=renderer,
        )
        version = saved.version
    await publish(session, PROMPT_TOPIC, tenant_id=str(tenant_id), name=prompt.name)
    return prompt, version


async def list_prompts(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    limit: int,
    cursor: str | None = None,
    kind: str | None = None,
    search: str | None = None,
    include_archived: bool = False,
) -> tuple[list[Prompt], str | None]:
    """A page of prompts ordered by name."""
    statement = Prompt.for_tenant(tenant_id).order_by(Prompt.name).limit(limit + 1)
    if cursor is not None:
        (after,) = decode_cursor(cursor, str)
        statement = statement.where(Prompt.name > after)
    if kind is not None:
        statement = statement.where(Prompt.kind == kind)
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = statement.where(
            Prompt.name.ilike(pattern, escape="\\") | Prompt.description.ilike(pattern, escape="\\")
        )
    if not include_archived:
        statement = statement.where(Prompt.archived.is_(False))
    prompts = list((await session.scalars(statement)).all())
    return paginate(prompts, limit, lambda prompt: (prompt.name,))


async def update_prompt(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    body: PromptUpdate,
    actor: Actor,
    may_move_protected: bool,
) -> Prompt:
    """Change a prompt's settings. Whoever may not move its protected labels may neither
    change which labels are protected nor archive a prompt that has one deployed."""
    prompt = await lock_prompt(session, tenant_id=tenant_id, name=name)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "protected_labels" in changes:
        changes["protected_labels"] = sorted(set(changes["protected_labels"]))
    before = {field: getattr(prompt, field) for field in changes}
    if before == changes:
        return prompt
    if not may_move_protected:
        if changes.get("protected_labels", prompt.protected_labels) != prompt.protected_labels:
            raise Forbidden("Changing which labels are protected needs admin.")
        if changes.get("archived") and await _has_protected_label(session, prompt):
            raise Forbidden(f"`{name}` has a protected label deployed: archiving it needs admin.")
    for field, value in changes.items():
        setattr(prompt, field, value)
    prompt.updated_at = datetime.now(UTC)
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="prompt.archive" if changes.get("archived") else "prompt.update",
        target_type="prompt",
        target_id=name,
        before=before,
        after=changes,
    )
    await publish(session, PROMPT_TOPIC, tenant_id=str(tenant_id), name=name)
    return prompt


async def _has_protected_label(session: AsyncSession, prompt: Prompt) -> bool:
    found = await session.scalar(
        PromptLabel.for_tenant(prompt.tenant_id, PromptLabel.id).where(
            PromptLabel.prompt_id == prompt.id,
            PromptLabel.name.in_(prompt.protected_labels),
        )
    )
    return found is not None


# Versions


def content_hash(content: dict[str, Any]) -> str:
    """A stable digest of what a version holds: equal content, equal hash."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


DEFAULT_MODEL = "gpt-4o-mini"


def _content(prompt: Prompt, body: VersionCreate) -> dict[str, Any]:
    data = body.model_dump(mode="json", exclude={"commit_message"})
    if prompt.kind == "chat" and data["model"] is None:
        data["model"] = ModelSettings(name=DEFAULT_MODEL).model_dump(mode="json")
    data["model"] = data["model"] or {}
    return {field: data[field] for field in CONTENT_FIELDS}


async def create_version(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    body: VersionCreate,
    actor: Actor,
    renderer: Renderer,
) -> SavedVersion:
    """Save a new version, or return the latest when the content is identical."""
    prompt = await get_prompt(session, tenant_id=tenant_id, name=name)
    saved = await _save_version(
        session, prompt=prompt, body=body, actor=actor, field="body", renderer=renderer, lock=True
    )
    if saved.created:
        await publish(session, PROMPT_TOPIC, tenant_id=str(tenant_id), name=name)
    return saved


async def _save_version(
    session: AsyncSession,
    *,
    prompt: Prompt,
    body: VersionCreate,
    actor: Actor,
    field: str,
    renderer: Renderer,
    lock: bool = False,
) -> SavedVersion:
    """Check and insert a version. The checks (slow: they visit includes and render workers)
    run before the prompt's row is locked, so a save holds the lock only to number and insert."""
    content = _content(prompt, body)
    digest = content_hash(content)
    if (latest := await _latest_if_same(session, prompt, digest)) is not None:
        return SavedVersion(latest, created=False)
    with sharing(prompt.tenant_id):  # one tenant cannot hold every render worker
        await check_version(session, prompt=prompt, content=content, field=field, renderer=renderer)
    if lock:
        prompt = await lock_prompt(session, tenant_id=prompt.tenant_id, name=prompt.name)
        if (latest := await _latest_if_same(session, prompt, digest)) is not None:
            return SavedVersion(latest, created=False)  # an identical save won the race
    prompt.latest_version += 1
    prompt.updated_at = datetime.now(UTC)
    version = PromptVersion(
        tenant_id=prompt.tenant_id,
        prompt_id=prompt.id,
        number=prompt.latest_version,
        commit_message=body.commit_message,
        author=actor.name,
        content_hash=digest,
        **content,
    )
    session.add(version)
    await session.flush()
    await session.refresh(version, ["created_at"])
    await audit.record(
        session,
        tenant_id=prompt.tenant_id,
        actor=actor,
        action="prompt.version.create",
        target_type="prompt",
        target_id=prompt.name,
        after={"version": version.number, "commit_message": version.commit_message},
    )
    return SavedVersion(version, created=True)


async def _latest_if_same(
    session: AsyncSession, prompt: Prompt, digest: str
) -> PromptVersion | None:
    if not prompt.latest_version:
        return None
    latest = await version_row(session, prompt, prompt.latest_version)
    return latest if latest.content_hash == digest else None


async def version_row(session: AsyncSession, prompt: Prompt, number: int) -> PromptVersion:
    version = await session.scalar(
        PromptVersion.for_tenant(prompt.tenant_id).where(
            PromptVersion.prompt_id == prompt.id, PromptVersion.number == number
        )
    )
    if version is None:
        raise NotFound(f"Prompt `{prompt.name}` has no version {number}.")
    return version


async def get_version(
    session: AsyncSession, *, tenant_id: uuid.UUID, name: str, number: int
) -> PromptVersion:
    prompt = await get_prompt(session, tenant_id=tenant_id, name=name)
    return await version_row(session, prompt, number)


async def list_versions(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[PromptVersion], str | None]:
    """A page of a prompt's versions, newest first."""
    prompt = await get_prompt(session, tenant_id=tenant_id, name=name)
    statement = (
        PromptVersion.for_tenant(tenant_id)
        .where(PromptVersion.prompt_id == prompt.id)
        .order_by(PromptVersion.number.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        (before,) = decode_cursor(cursor, int)
        if not 1 <= before <= MAX_VERSION + 1:
            raise invalid_cursor()
        statement = statement.where(PromptVersion.number < before)
    versions = list((await session.scalars(statement)).all())
    return paginate(versions, limit, lambda version: (version.number,))
