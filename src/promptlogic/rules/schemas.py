"""Request and response bodies of tenant rules."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from promptlogic.prompts.schemas import NAME_PATTERN

MAX_TEXT_CHARS = 2_000  # the prompt's own policy may allow less
MAX_SET_CHARS = 200
MAX_PRIORITY = 1_000_000
MAX_REORDER_IDS = 1_000
Status = Literal["draft", "enabled", "disabled", "rejected"]  # as models.STATUSES

# Control characters but tab and line breaks, and lone surrogates.
_TEXT_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# A set name is often made from an id or an email at run time (`account-{{ account_id }}`):
# any printable text, as a record key.
_SET_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def rule_text(value: str) -> str:
    """Plain text, stripped, with `\\r\\n` as `\\n`; 1 to MAX_TEXT_CHARS characters."""
    value = value.replace("\r\n", "\n").strip()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > MAX_TEXT_CHARS:
        raise ValueError(f"is {len(value)} characters long; the limit is {MAX_TEXT_CHARS}")
    if _TEXT_FORBIDDEN.search(value):
        raise ValueError("must not contain control characters (tabs and line breaks are fine)")
    return value


def set_name(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    if len(value) > MAX_SET_CHARS:
        raise ValueError(f"is {len(value)} characters long; the limit is {MAX_SET_CHARS}")
    if _SET_FORBIDDEN.search(value):
        raise ValueError("must not contain control characters")
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    return value


PromptName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
SetName = Annotated[str, AfterValidator(set_name)]
RuleText = Annotated[str, AfterValidator(rule_text)]
Priority = Annotated[int, Field(strict=True, ge=0, le=MAX_PRIORITY)]
Enabled = Annotated[bool, Field(strict=True)]


def scope_errors(prompt: str | None, rule_set: str | None) -> list[dict[str, Any]]:
    """The problems of a body's scope: it names a prompt or a rule set, exactly one."""
    if prompt is None and rule_set is None:
        message = "give the rule's scope: a `prompt` or a `set`"
    elif prompt is not None and rule_set is not None:
        message = "give a `prompt` or a `set`, not both"
    else:
        return []
    return [{"field": "body.prompt", "message": message}, {"field": "body.set", "message": message}]


class RuleCreate(BaseModel):
    """A new rule: its scope (a prompt or a rule set), text, and whether it should be live."""

    model_config = ConfigDict(extra="forbid")

    prompt: PromptName | None = Field(default=None, description="The prompt the rule is for.")
    set: SetName | None = Field(
        default=None, description="Or the rule set it belongs to, e.g. `account-42`."
    )
    text: RuleText = Field(
        description=f"Plain language, up to {MAX_TEXT_CHARS} characters; data, never a template."
    )
    enabled: Enabled = Field(default=False, description="Live at once; else saved as a draft.")
    priority: Priority | None = Field(
        default=None, description="Lower comes first; by default after the scope's last rule."
    )


class RulePatch(BaseModel):
    """What changes; a field left out (or null) keeps its value."""

    model_config = ConfigDict(extra="forbid")

    text: RuleText | None = None
    enabled: Enabled | None = None
    priority: Priority | None = None


class ReorderRequest(BaseModel):
    """Every rule of one scope, by id, in the order they should apply."""

    model_config = ConfigDict(extra="forbid")

    prompt: PromptName | None = None
    set: SetName | None = None
    ids: Annotated[list[uuid.UUID], Field(max_length=MAX_REORDER_IDS)]


class RuleOut(BaseModel):
    id: uuid.UUID
    prompt: str | None
    set: str | None
    text: str
    enabled: bool = Field(description="Whether the author wants the rule live.")
    status: Status = Field(description="`enabled` only while the rule reaches runs.")
    check_reason: str | None = Field(description="Why the checks rejected it, if they did.")
    priority: int
    revision: int = Field(description="1 when created, one more on each change; the ETag.")
    author: str = Field(description="Who saved the current revision.")
    created_at: datetime
    updated_at: datetime


class RevisionOut(BaseModel):
    revision: int
    text: str
    enabled: bool
    status: Status
    check_reason: str | None
    priority: int
    author: str
    at: datetime


class RuleList(BaseModel):
    items: list[RuleOut]


MAX_PREVIEW_CHANGES = 50


class RuleChange(BaseModel):
    """One change of a previewed draft: a new rule (`text`), a saved rule as if live (`rule`,
    with new `text` or `priority` if given), or a saved rule left out (`"enabled": false`)."""

    model_config = ConfigDict(extra="forbid")

    rule: uuid.UUID | None = None
    text: RuleText | None = None
    enabled: Enabled | None = None
    priority: Priority | None = None


class PreviewRequest(BaseModel):
    """A prompt, its inputs, and the draft changes to a scope's rules."""

    model_config = ConfigDict(extra="forbid")

    prompt: PromptName
    label: Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=50)] | None = None
    version: Annotated[int, Field(strict=True, ge=1)] | None = None
    inputs: dict[str, Any] = Field(default_factory=dict, description="The prompt's variables.")
    set: SetName | None = Field(
        default=None, description="The rule set the changes are to; else the prompt's own rules."
    )
    changes: Annotated[list[RuleChange], Field(min_length=1, max_length=MAX_PREVIEW_CHANGES)]


class CheckRequest(BaseModel):
    """A text to judge as a rule of a scope, or a saved rule (with `text` in place of its own)."""

    model_config = ConfigDict(extra="forbid")

    rule: uuid.UUID | None = None
    prompt: PromptName | None = None
    set: SetName | None = None
    text: RuleText | None = None


class CheckOut(BaseModel):
    passed: bool
    reason: str | None = Field(description="Every failed check's reason, as a rejection shows.")
    checks: list[dict[str, Any]] = Field(
        description="Each check: `check` (limits, checker…), `passed`, `reason`, `prompt`, "
        "`run_id` of a checker's run."
    )
