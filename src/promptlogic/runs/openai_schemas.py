"""Bodies of `POST /v1/chat/completions`, in the shapes of OpenAI's Chat Completions API.

The request types only what promptlogic reads, plus the parameters it refuses; every other
parameter is accepted, left unused (the prompt version owns its model settings) and named back
in the `X-Promptlogic-Ignored-Params` header. See docs/openai-compatible.md.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from promptlogic.prompts.schemas import LABEL_PATTERN, NAME_PATTERN, VersionNumber

# A label may be all digits (`prompt:triage@3` is the label `3`), so a version is pinned with
# the `version` field, never in the model string.
PROMPT_MODEL = re.compile(
    rf"^prompt:(?P<name>{NAME_PATTERN[1:-1]})(?:@(?P<label>{LABEL_PATTERN[1:-1]}))?$"
)
PARAMETER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_IGNORED_PARAMETERS = 64


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool | None = False


class ChatMessage(BaseModel):
    """A caller's message: only the last user message's text is ever read (as `input`)."""

    model_config = ConfigDict(extra="allow")

    role: Annotated[str, StringConstraints(max_length=50)]
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI's Chat Completions request, with `model` naming a managed prompt."""

    model_config = ConfigDict(extra="allow")

    model: Annotated[
        str,
        StringConstraints(max_length=300),
        Field(description="`prompt:NAME` (its `production` label) or `prompt:NAME@LABEL`."),
    ]
    messages: Annotated[list[ChatMessage], Field(max_length=1000)]
    variables: dict[str, Any] | None = Field(
        None, description="The prompt's variables (`extra_body={'variables': {...}}`)."
    )
    metadata: dict[str, Any] | None = Field(
        None,
        description="Entries named like one of the version's variables are that variable; "
        "`variables` may hold a JSON object (or a string of one); the rest is run metadata.",
    )
    version: VersionNumber | None = Field(
        None, description="Pin a version number instead of a label."
    )
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: Annotated[str, StringConstraints(max_length=300)] | None = None
    safety_identifier: Annotated[str, StringConstraints(max_length=300)] | None = None
    # Refused unless left at their defaults: the answer could not have the expected shape.
    n: int | None = None
    tools: list[Any] | None = None
    functions: list[Any] | None = None
    logprobs: bool | None = None
    audio: Any = None

    def refused(self) -> list[dict[str, str]]:
        """Field problems for the parameters promptlogic cannot honour."""
        problems = []
        if self.n not in (None, 1):
            problems.append(_problem("n", "a managed prompt answers with one choice; omit `n`"))
        for name in ("tools", "functions"):
            if getattr(self, name):
                message = "a managed prompt's tools belong to its version; omit them"
                problems.append(_problem(name, message))
        if self.logprobs:
            problems.append(_problem("logprobs", "log probabilities are not available"))
        if self.audio is not None:
            problems.append(_problem("audio", "audio output is not available"))
        problems += [
            _problem(name, "is not a Chat Completions parameter")
            for name in self.ignored()
            if not PARAMETER_NAME.match(name)
        ]
        if len(self.ignored()) > MAX_IGNORED_PARAMETERS:
            message = f"more than {MAX_IGNORED_PARAMETERS} unknown parameters"
            problems.append({"field": "body", "message": message})
        return problems

    def ignored(self) -> list[str]:
        """The parameters given but not used: everything this model does not declare."""
        return sorted(self.model_extra or {})


def _problem(name: str, message: str) -> dict[str, str]:
    return {"field": f"body.{name}", "message": message}


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str = "stop"
    logprobs: None = None


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, usage: dict[str, int | None]) -> CompletionUsage:
        """From a run's `usage` (`input_tokens`, `output_tokens`; unknown counts as 0)."""
        prompt = usage.get("input_tokens") or 0
        completion = usage.get("output_tokens") or 0
        return cls(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )


class RunInfo(BaseModel):
    """What promptlogic adds to OpenAI's shape: the run behind the answer."""

    run_id: uuid.UUID
    prompt: str
    version: int | None
    label: str | None
    provider: str | None
    cost: float | None
    latency_ms: int
    parsed: Any = Field(description="The output as JSON, when the version has a response format.")
    repaired: bool = Field(False, description="The output is from the one repair attempt.")


class ChatCompletion(BaseModel):
    """OpenAI's `chat.completion`; `id` is `chatcmpl-` and the run's id in hex."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = Field(description="The model that answered (the version's, or a fallback).")
    choices: list[Choice]
    usage: CompletionUsage
    system_fingerprint: None = None
    promptlogic: RunInfo
