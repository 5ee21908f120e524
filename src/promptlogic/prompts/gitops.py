"""Prompts as files, against a tenant: pull every prompt to its file, push a directory back.

A file is the whole truth about its prompt (the format is in `yaml_files`): pushing it creates
the prompt if missing, brings its settings in line and saves a version only when the content
differs from the latest one (the service compares content hashes).

A push runs in the caller's transaction and leaves committing to it: a dry run is a push that
is rolled back, so it reports the same plan and the same problems as the real one.
"""

from __future__ import annotations

import difflib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit.service import Actor
from promptlogic.errors import InvalidInput, NotFound, Problem
from promptlogic.prompts import labels, service
from promptlogic.prompts.diff import diff_versions
from promptlogic.prompts.models import Prompt
from promptlogic.prompts.resolution import LATEST, version_at
from promptlogic.prompts.schemas import DiffOut, PromptUpdate
from promptlogic.prompts.yaml_files import (
    Document,
    PromptFile,
    Pulled,
    dump,
    model_as_written,
    ordered,
    to_document,
)
from promptlogic.rendering import Renderer

# Pulling


async def pull(
    session: AsyncSession, *, tenant_id: uuid.UUID, label: str | None
) -> tuple[list[Pulled], list[dict[str, str]]]:
    """The file of each active prompt (at `label`, else the latest), and the prompts skipped."""
    pulled: list[Pulled] = []
    skipped: list[dict[str, str]] = []
    cursor: str | None = None
    while True:
        prompts, cursor = await service.list_prompts(
            session, tenant_id=tenant_id, limit=200, cursor=cursor
        )
        for prompt in prompts:
            version = await version_at(session, prompt, label=label)
            if version is None:
                reason = "no versions" if label in (None, LATEST) else f"no label `{label}`"
                skipped.append({"name": prompt.name, "reason": reason})
                continue
            text = dump(to_document(prompt, version))
            pulled.append(Pulled(prompt.name, version.number, text))
        if cursor is None:
            return pulled, skipped


# Pushing


Action = Literal["created", "new_version", "unchanged"]


@dataclass(frozen=True, slots=True)
class LabelChange:
    name: str
    from_version: int | None
    to_version: int

    @property
    def moved(self) -> bool:
        return self.from_version != self.to_version


@dataclass(slots=True)
class Change:
    """What a push did (or would do) to one prompt."""

    name: str
    file: str
    kind: str
    action: Action
    version: int
    previous_version: int | None = None
    updated: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    diff: DiffOut | None = None
    label: LabelChange | None = None

    def as_json(self) -> dict[str, Any]:
        label = self.label
        return {
            "name": self.name,
            "file": self.file,
            "kind": self.kind,
            "action": self.action,
            "version": self.version,
            "previous_version": self.previous_version,
            "updated": {key: {"from": a, "to": b} for key, (a, b) in self.updated.items()},
            "diff": self.diff.model_dump(mode="json", by_alias=True) if self.diff else None,
            "label": None
            if label is None
            else {
                "name": label.name,
                "from": label.from_version,
                "to": label.to_version,
                "moved": label.moved,
            },
        }


@dataclass(slots=True)
class PushResult:
    changes: list[Change] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def push(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    documents: list[Document],
    label: str | None,
    message: str,
    actor: Actor,
    renderer: Renderer,
) -> PushResult:
    """Apply `documents` in order in the session's transaction; the caller commits or not.

    Every document is tried, so one push reports every problem; when there is any, the caller
    must roll back, since the documents that did apply may rely on each other.
    """
    result = PushResult()
    for document in documents:
        try:
            change = await _push_one(
                session,
                tenant_id=tenant_id,
                document=document,
                message=message,
                actor=actor,
                renderer=renderer,
            )
            if label is not None:
                change.label = await _move_label(
                    session, tenant_id=tenant_id, change=change, label=label, actor=actor
                )
        except Problem as problem:
            result.problems += _problems_of(document.path, problem)
            continue
        result.changes.append(change)
    return result


def _problems_of(path: Path, problem: Problem) -> list[str]:
    if not problem.errors:
        return [f"{path}: {problem.detail}"]
    problems = []
    for error in problem.errors:
        where = str(error.get("field", "")).removeprefix("body.")
        problems.append(f"{path}: {where}: {error.get('message', problem.detail)}")
    return problems


async def _existing(session: AsyncSession, *, tenant_id: uuid.UUID, name: str) -> Prompt | None:
    try:
        return await service.get_prompt(session, tenant_id=tenant_id, name=name)
    except NotFound:
        return None


async def _push_one(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    document: Document,
    message: str,
    actor: Actor,
    renderer: Renderer,
) -> Change:
    file = document.file
    prompt = await _existing(session, tenant_id=tenant_id, name=file.name)
    updated: dict[str, tuple[Any, Any]] = {}
    if prompt is None:
        await service.create_prompt(
            session, tenant_id=tenant_id, body=file.prompt_create(), actor=actor, renderer=renderer
        )
        previous = None
    else:
        if prompt.kind != file.kind:
            raise InvalidInput.field(
                "kind", f"`{file.name}` is a {prompt.kind} prompt; a prompt's kind cannot change"
            )
        updated = await _update_settings(session, prompt=prompt, file=file, actor=actor)
        previous = prompt.latest_version or None
    saved = await service.create_version(
        session,
        tenant_id=tenant_id,
        name=file.name,
        body=file.version_create(message),
        actor=actor,
        renderer=renderer,
    )
    action: Action = "unchanged"
    if saved.created:
        action = "created" if prompt is None else "new_version"
    change = Change(
        name=file.name,
        file=str(document.path),
        kind=file.kind,
        action=action,
        version=saved.version.number,
        previous_version=previous,
        updated=updated,
    )
    if saved.created and previous is not None:
        old = await service.get_version(
            session, tenant_id=tenant_id, name=file.name, number=previous
        )
        change.diff = diff_versions(file.name, old, saved.version)
    return change


async def _update_settings(
    session: AsyncSession, *, prompt: Prompt, file: PromptFile, actor: Actor
) -> dict[str, tuple[Any, Any]]:
    """Bring the prompt's settings in line with the file; returns each change (from, to)."""
    wanted: dict[str, Any] = {
        "description": file.description,
        "protected_labels": sorted(set(file.protected_labels)),
        "archived": False,
    }
    current = {
        "description": prompt.description,
        "protected_labels": sorted(prompt.protected_labels),
        "archived": prompt.archived,
    }
    updated = {key: (current[key], wanted[key]) for key in wanted if current[key] != wanted[key]}
    if updated:
        await service.update_prompt(
            session,
            tenant_id=prompt.tenant_id,
            name=prompt.name,
            body=PromptUpdate(**{key: wanted[key] for key in updated}),
            actor=actor,
            may_move_protected=True,  # a platform operator
        )
    return updated


async def _move_label(
    session: AsyncSession, *, tenant_id: uuid.UUID, change: Change, label: str, actor: Actor
) -> LabelChange:
    """Point `label` at the pushed version, expecting it where it points now."""
    try:
        state = await labels.get_label(session, tenant_id=tenant_id, name=change.name, label=label)
        current: int | None = state.version
    except NotFound:
        current = None
    if current != change.version:
        # The CLI acts as a platform operator, who may move protected labels.
        await labels.move_label(
            session,
            tenant_id=tenant_id,
            name=change.name,
            label=label,
            version=change.version,
            expected_version=current,
            actor=actor,
            may_move_protected=True,
        )
    return LabelChange(label, current, change.version)


# Reporting


def _yaml_lines(value: Any) -> list[str]:
    if value is None or value == [] or value == {}:
        return []
    return dump(value).splitlines(keepends=True)


def _settings_diff(name: str, diff: DiffOut) -> list[str]:
    """A unified diff of each changed setting, written as in a file."""
    lines: list[str] = []
    for item in diff.settings:
        old, new = ordered(item.from_value), ordered(item.to_value)
        if item.field == "model" and model_as_written(old or {}) != model_as_written(new or {}):
            # As a file shows them; in full when they differ only in spelled-out defaults.
            old, new = model_as_written(old or {}), model_as_written(new or {})
        lines += difflib.unified_diff(
            _yaml_lines(old),
            _yaml_lines(new),
            f"{name}@{diff.from_version} {item.field}",
            f"{name}@{diff.to_version} {item.field}",
        )
    return [line if line.endswith("\n") else line + "\n" for line in lines]


def _diff_lines(change: Change) -> list[str]:
    if change.diff is None:
        return []
    text: list[str] = []
    for message in change.diff.messages:
        if message.role_from != message.role_to:
            text.append(
                f"messages[{message.index}] role: {message.role_from or '(none)'}"
                f" → {message.role_to or '(none)'}\n"
            )
        text += message.diff.splitlines(keepends=True)
    text += _settings_diff(change.name, change.diff)
    return [line.rstrip("\n") for line in text]


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def describe(change: Change) -> list[str]:
    """The text lines telling what a push did (or would do) to one prompt."""
    if change.action == "created":
        head = f"{change.name}: created {change.kind} prompt, version {change.version}"
    elif change.action == "new_version":
        was = f"was {change.previous_version}" if change.previous_version else "its first"
        head = f"{change.name}: new version {change.version} ({was})"
    else:
        head = f"{change.name}: unchanged (version {change.version})"
    lines = [head]
    for key, (old, new) in change.updated.items():
        if key == "archived":
            lines.append("    restored (it was archived)")
        else:
            lines.append(f"    {key}: {_shown(old)} → {_shown(new)}")
    lines += ["    " + line for line in _diff_lines(change)]
    label = change.label
    if label is not None:
        if label.moved:
            was = "none" if label.from_version is None else label.from_version
            lines.append(f"    label {label.name}: {was} → {label.to_version}")
        else:
            lines.append(f"    label {label.name}: already at {label.to_version}")
    return lines


def summary(changes: list[Change]) -> dict[str, int]:
    counts = {"created": 0, "new_version": 0, "unchanged": 0, "labels_moved": 0}
    for change in changes:
        counts[change.action] += 1
        counts["labels_moved"] += bool(change.label and change.label.moved)
    return counts
