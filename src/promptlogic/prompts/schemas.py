"""Request and response bodies of prompts, versions, labels and diffs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from promptlogic.prompts.binding_schemas import Bindings
from promptlogic.validation import single_line

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
LABEL_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,49}$"
MAX_TEMPLATE_CHARS = 64 * 1024

PromptName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
LabelName = Annotated[str, StringConstraints(pattern=LABEL_PATTERN)]
Kind = Literal["chat", "context"]
Description = Annotated[str, StringConstraints(max_length=2000)]
TemplateSource = Annotated[str, StringConstraints(max_length=MAX_TEMPLATE_CHARS)]
CommitMessage = Annotated[str, StringConstraints(max_length=2000)]
JsonObject = dict[str, Any]
MAX_VERSION = 2**31 - 1  # versions are stored as integer
VersionNumber = Annotated[int, Field(ge=1, le=MAX_VERSION)]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: TemplateSource


class ModelSettings(BaseModel):
    """The model a chat version calls; unknown keys are kept as provider options."""

    model_config = ConfigDict(extra="allow")

    name: Annotated[
        str, StringConstraints(min_length=1, max_length=200), AfterValidator(single_line)
    ]
    provider: Annotated[str, StringConstraints(max_length=100)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    fallbacks: Annotated[list[str], Field(max_length=10)] = []
    repair: bool = Field(
        default=False,
        description="When the output fails the response format, ask the model once to fix it.",
    )


class ToolFunction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: Annotated[str, StringConstraints(max_length=4000)] = ""
    parameters: JsonObject = Field(default_factory=lambda: {"type": "object", "properties": {}})


class Tool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"] = "function"
    function: ToolFunction


class VersionContent(BaseModel):
    """What a version holds. `messages` for a chat prompt, `template` for a context one."""

    model_config = ConfigDict(extra="forbid")

    messages: Annotated[list[Message], Field(max_length=100)] | None = None
    template: TemplateSource | None = None
    input_schema: JsonObject | None = None
    model: ModelSettings | None = None
    response_format: JsonObject | None = None
    tools: Annotated[list[Tool], Field(max_length=128)] = []
    context: Bindings = Field(
        default=[],
        description="The state the version needs, bound before rendering and available to its "
        "templates under each binding's name: records, searches, rules.",
    )


class VersionCreate(VersionContent):
    commit_message: CommitMessage = ""


class PromptCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PromptName
    kind: Kind = "chat"
    description: Description = ""
    protected_labels: Annotated[list[LabelName], Field(max_length=20)] = ["production"]
    version: VersionCreate | None = None


class PromptUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: Description | None = None
    protected_labels: Annotated[list[LabelName], Field(max_length=20)] | None = None
    archived: bool | None = None


class SplitArm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: VersionNumber
    weight: Annotated[int, Field(ge=1, le=10_000)]


class LabelMoveRequest(BaseModel):
    """`version` for one version, or `versions` to split traffic over several by weight."""

    model_config = ConfigDict(extra="forbid")

    version: VersionNumber | None = None
    versions: Annotated[list[SplitArm], Field(min_length=2, max_length=10)] | None = Field(
        default=None,
        description="A traffic split: each run's version is picked by weight, by a stable "
        "hash of its `end_user` (at random without one).",
    )
    expected_version: VersionNumber | None = Field(
        default=None,
        description="The version the label pointed at when you last saw it; null if it did "
        "not exist. Required unless an If-Match header carries it.",
    )


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    messages: list[Message] | None
    template: str | None
    input_schema: JsonObject | None
    model: JsonObject
    response_format: JsonObject | None
    tools: list[JsonObject]
    context: list[JsonObject]
    commit_message: str
    author: str
    content_hash: str
    created_at: datetime


class PromptOut(BaseModel):
    id: uuid.UUID
    name: str
    kind: Kind
    description: str
    archived: bool
    protected_labels: list[str]
    latest_version: int | None
    labels: dict[str, int]
    created_at: datetime
    updated_at: datetime


class PromptCreated(PromptOut):
    version: VersionOut | None = None


class LabelOut(BaseModel):
    prompt: str
    label: str
    version: int
    versions: list[SplitArm] | None = Field(
        description="The traffic split, when the label has one; `version` is its heaviest arm."
    )
    protected: bool
    updated_at: datetime | None
    updated_by: str | None


class LabelMoveOut(BaseModel):
    id: int
    label: str
    from_version: int | None
    to_version: int
    to_versions: list[SplitArm] | None
    actor: str
    created_at: datetime


class MessageDiff(BaseModel):
    index: int
    role_from: str | None
    role_to: str | None
    diff: str


class FieldDiff(BaseModel):
    field: str
    from_value: Any = Field(serialization_alias="from")
    to_value: Any = Field(serialization_alias="to")


class DiffOut(BaseModel):
    prompt: str
    from_version: int = Field(serialization_alias="from")
    to_version: int = Field(serialization_alias="to")
    messages: list[MessageDiff]
    settings: list[FieldDiff]


class RenderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variables: JsonObject = {}
    label: LabelName | None = Field(
        default=None, description="Which label to render; `production` when neither is given."
    )
    version: VersionNumber | None = None


class RenderedMessage(BaseModel):
    role: str
    content: str


class VersionUsedOut(BaseModel):
    prompt: str
    version: int


class RenderOut(BaseModel):
    messages: list[RenderedMessage]
    prompt: str
    version: int
    label: str | None
    versions_used: list[VersionUsedOut]
    bound: list[JsonObject] = Field(
        default=[], description="What the version's context bindings bound (records, chunks)."
    )
