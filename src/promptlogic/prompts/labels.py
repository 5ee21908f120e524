"""Labels: movable names on versions. A move is a deploy, a move back a rollback; every move is
kept in the label's history and the audit trail. No HTTP; callers commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit import service as audit
from promptlogic.audit.service import Actor
from promptlogic.db.notify import publish
from promptlogic.errors import Conflict, Forbidden, InvalidInput, NotFound
from promptlogic.pagination import decode_cursor, paginate
from promptlogic.prompts.models import LabelMove, Prompt, PromptLabel
from promptlogic.prompts.resolution import LATEST
from promptlogic.prompts.service import PROMPT_TOPIC, get_prompt, lock_prompt, version_row

Split = list[dict[str, int]]  # [{"version": 3, "weight": 90}, {"version": 4, "weight": 10}]


@dataclass(frozen=True, slots=True)
class LabelState:
    prompt: str
    label: str
    version: int
    protected: bool
    updated_at: datetime | None
    updated_by: str | None
    split: Split | None = None


def heaviest_arm(split: Split) -> int:
    """The version a split label names where one version is shown: its heaviest (first of
    equals), so `labels` in a prompt listing still reads as the version most traffic gets."""
    return max(split, key=lambda arm: arm["weight"])["version"]


async def get_label(
    session: AsyncSession, *, tenant_id: uuid.UUID, name: str, label: str
) -> LabelState:
    prompt = await get_prompt(session, tenant_id=tenant_id, name=name)
    if label == LATEST:
        if not prompt.latest_version:
            raise NotFound(f"Prompt `{name}` has no versions yet.")
        return LabelState(name, LATEST, prompt.latest_version, False, None, None)
    row = await _label_row(session, prompt, label)
    if row is None:
        raise NotFound(f"Prompt `{name}` has no label `{label}`.")
    return LabelState(
        name,
        label,
        row.version,
        label in prompt.protected_labels,
        row.updated_at,
        row.updated_by,
        row.split,
    )


async def _label_row(session: AsyncSession, prompt: Prompt, label: str) -> PromptLabel | None:
    return await session.scalar(
        PromptLabel.for_tenant(prompt.tenant_id).where(
            PromptLabel.prompt_id == prompt.id, PromptLabel.name == label
        )
    )


async def move_label(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    label: str,
    version: int | None,
    expected_version: int | None,
    actor: Actor,
    may_move_protected: bool,
    split: Split | None = None,
) -> LabelState:
    """Point `label` at `version`, or split it over several versions by weight, if it still
    points where the caller last saw it (409 if not)."""
    if label == LATEST:
        raise InvalidInput.field("path.label", "`latest` always means the newest version")
    prompt = await lock_prompt(session, tenant_id=tenant_id, name=name)
    if label in prompt.protected_labels and not may_move_protected:
        raise Forbidden(f"`{label}` is a protected label of `{name}`: moving it needs admin.")
    if split is not None:
        version = heaviest_arm(split)
        for arm in split:
            await version_row(session, prompt, arm["version"])
    assert version is not None
    await version_row(session, prompt, version)
    row = await _label_row(session, prompt, label)
    current = row.version if row is not None else None
    if current != expected_version:
        seen = "no label" if expected_version is None else f"version {expected_version}"
        actual = "does not exist" if current is None else f"points at version {current}"
        raise Conflict(f"Label `{label}` {actual}, but you expected {seen}. Reload and retry.")
    if current == version and row is not None and row.split == split:
        return await get_label(session, tenant_id=tenant_id, name=name, label=label)
    # Evals build on prompts; a label's promotion gate is theirs (evals.gates).
    from promptlogic.evals import gates

    arms = [arm["version"] for arm in split] if split is not None else [version]
    await gates.check_move(session, prompt, label, arms, current)
    now = datetime.now(UTC)
    before_split = None
    if row is None:
        row = PromptLabel(
            tenant_id=tenant_id,
            prompt_id=prompt.id,
            name=label,
            version=version,
            split=split,
            updated_at=now,
            updated_by=actor.name,
        )
        session.add(row)
    else:
        before_split = row.split
        row.version, row.split, row.updated_at, row.updated_by = version, split, now, actor.name
    session.add(
        LabelMove(
            tenant_id=tenant_id,
            prompt_id=prompt.id,
            label=label,
            from_version=current,
            to_version=version,
            to_split=split,
            actor=actor.name,
        )
    )
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="prompt.label.move",
        target_type="prompt",
        target_id=name,
        before=_summary(label, current, before_split),
        after=_summary(label, version, split),
    )
    await publish(session, PROMPT_TOPIC, tenant_id=str(tenant_id), name=name)
    await session.flush()
    protected = label in prompt.protected_labels
    return LabelState(name, label, version, protected, now, actor.name, split)


def _summary(label: str, version: int | None, split: Split | None) -> dict[str, Any]:
    summary: dict[str, Any] = {"label": label, "version": version}
    if split is not None:
        summary["versions"] = split
    return summary


async def label_history(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    label: str,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[LabelMove], str | None]:
    """A page of a label's moves, newest first."""
    prompt = await get_prompt(session, tenant_id=tenant_id, name=name)
    statement = (
        LabelMove.for_tenant(tenant_id)
        .where(LabelMove.prompt_id == prompt.id, LabelMove.label == label)
        .order_by(LabelMove.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        (before,) = decode_cursor(cursor, int)
        statement = statement.where(LabelMove.id < before)
    moves = list((await session.scalars(statement)).all())
    return paginate(moves, limit, lambda move: (move.id,))
