"""Resolving `NAME`, `NAME@LABEL` and version numbers to a concrete version row."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.errors import InvalidInput, NotFound
from promptlogic.prompts.models import Prompt, PromptLabel, PromptVersion

LATEST = "latest"
DEFAULT_INCLUDE_LABEL = "production"
INCLUDE_REF = re.compile(
    r"^(?P<name>[a-z0-9][a-z0-9._-]{0,99})(?:@(?P<label>[a-z0-9][a-z0-9._-]{0,49}))?$"
)


@dataclass(frozen=True, slots=True)
class IncludeRef:
    name: str
    label: str | None  # None: `production`, or `latest` when the template has no production label


def parse_include(ref: str) -> IncludeRef | None:
    match = INCLUDE_REF.match(ref)
    if match is None:
        return None
    return IncludeRef(name=match["name"], label=match["label"])


async def version_at(
    session: AsyncSession, prompt: Prompt, *, label: str | None = None, number: int | None = None
) -> PromptVersion | None:
    """The version a label (or number, or `latest`) points at; None when there is none."""
    if number is None:
        if label in (None, LATEST):
            number = prompt.latest_version or None
        else:
            number = await session.scalar(
                PromptLabel.for_tenant(prompt.tenant_id, PromptLabel.version).where(
                    PromptLabel.prompt_id == prompt.id, PromptLabel.name == label
                )
            )
    if number is None:
        return None
    return await session.scalar(
        PromptVersion.for_tenant(prompt.tenant_id).where(
            PromptVersion.prompt_id == prompt.id, PromptVersion.number == number
        )
    )


async def resolve_include(
    session: AsyncSession, *, tenant_id: uuid.UUID, ref: IncludeRef, field: str
) -> tuple[Prompt, PromptVersion]:
    """The context template version an include points at; 422 naming `field` if none."""
    prompt = await session.scalar(Prompt.for_tenant(tenant_id).where(Prompt.name == ref.name))
    if prompt is None or prompt.kind != "context":
        raise InvalidInput.field(field, f"includes `{ref.name}`, which is not a context template")
    if prompt.archived:
        raise InvalidInput.field(field, f"includes `{ref.name}`, which is archived")
    if ref.label is None:
        version = await version_at(session, prompt, label=DEFAULT_INCLUDE_LABEL)
        version = version or await version_at(session, prompt, label=LATEST)
    else:
        version = await version_at(session, prompt, label=ref.label)
    if version is None:
        shown = f"{ref.name}@{ref.label}" if ref.label else ref.name
        raise InvalidInput.field(field, f"includes `{shown}`, which has no such version")
    return prompt, version


async def resolve_prompt_version(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    label: str | None,
    number: int | None,
) -> tuple[Prompt, PromptVersion]:
    """The version a caller asked for by label or number (default `production`... or latest)."""
    prompt = await session.scalar(Prompt.for_tenant(tenant_id).where(Prompt.name == name))
    if prompt is None:
        raise NotFound(f"No prompt named `{name}`.")
    version = await version_at(session, prompt, label=label, number=number)
    if version is None:
        wanted = f"version {number}" if number is not None else f"label `{label}`"
        raise NotFound(f"Prompt `{name}` has no {wanted}.")
    return prompt, version
