"""OpenAI-compatible Chat Completions over managed prompts: `POST /v1/chat/completions`.

A product app on the `openai` SDK switches to a managed prompt by changing `base_url`,
`api_key` and `model` (`prompt:NAME` or `prompt:NAME@LABEL`). The request becomes a run of the
same pipeline as `POST /v1/prompts/{name}/run`, and the run's answer becomes OpenAI's
`chat.completion` (or `chat.completion.chunk` events). Errors keep their problem+json body and
also carry OpenAI's `error` object, which the SDK turns into its exception classes. What each
request field does is in docs/openai-compatible.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from promptlogic.errors import PROBLEM_JSON, InvalidInput
from promptlogic.prompts.cache import RenderPlan, Selector
from promptlogic.prompts.render import plan_for, selector_for
from promptlogic.rendering import sharing
from promptlogic.runs import idempotency
from promptlogic.runs.openai_schemas import (
    PROMPT_MODEL,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    ChatMessage,
    Choice,
    CompletionUsage,
    RunInfo,
)
from promptlogic.runs.pipeline import (
    RUN_ID_HEADER,
    PreparedRun,
    RunRequest,
    RunServices,
    execute_run,
    prepare_run,
    result_of,
    stream_run,
)
from promptlogic.tenancy.auth import RunPrincipal
from promptlogic.tenancy.principal import Principal

log = logging.getLogger(__name__)

IGNORED_HEADER = "X-Promptlogic-Ignored-Params"
INPUT_VARIABLE = "input"  # filled from the last user message when the version declares it
ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}
# The run pipeline already retried these (backoff, fallback models): the SDK must not repeat.
ALREADY_RETRIED = frozenset({502, 504})


router = APIRouter(prefix="/v1", tags=["openai-compatible"])


@router.post(
    "/chat/completions",
    response_model=None,
    responses={200: {"model": ChatCompletion, "description": "A `chat.completion`, or SSE."}},
)
async def create_chat_completion(
    body: ChatCompletionRequest,
    principal: RunPrincipal,
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse | StreamingResponse:
    """Run the managed prompt `model` names and answer as OpenAI's Chat Completions API does:
    a `chat.completion`, or `chat.completion.chunk` Server-Sent Events with `stream: true`."""
    services = RunServices.of(request.app.state)
    run_request = await run_request_of(services, principal, body)
    headers = _ignored_header(body.ignored())
    if body.stream:
        if idempotency_key is not None:
            raise InvalidInput.field(
                "header.Idempotency-Key", "a streamed run cannot be replayed; retry it without"
            )
        prepared = await prepare_run(services, principal, run_request)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = stream_run(services, principal, prepared)
        return StreamingResponse(
            openai_chunks(events, prepared, include_usage=include_usage),
            media_type="text/event-stream",
            headers={
                **headers,
                RUN_ID_HEADER: str(prepared.record.id),
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            },
        )
    if idempotency_key is None:
        record = await execute_run(services, principal, run_request)
        answer = completion_of(result_of(record), run_request.name, _epoch(record.created_at))
        return _answer(answer, headers)
    claim = idempotency.Claim(
        request.app.state.sessionmaker,
        principal.tenant_id,
        idempotency.checked_key(idempotency_key),
    )
    return await _run_once(claim, services, principal, run_request, body)


# --- request → run -----------------------------------------------------------------------


async def run_request_of(
    services: RunServices, principal: Principal, body: ChatCompletionRequest
) -> RunRequest:
    """The run a request asks for; 422 naming the field for whatever cannot be honoured."""
    problems = body.refused()
    if problems:
        raise InvalidInput(
            "; ".join(f"{p['field']}: {p['message']}" for p in problems), errors=problems
        )
    name, label = parse_model(body.model)
    if label is not None and body.version is not None:
        raise InvalidInput.field(
            "body.version", "give a label in `model` (`prompt:NAME@LABEL`) or `version`, not both"
        )
    selector = selector_for(label, body.version)
    declared = await declared_variables(services, principal, name, selector)
    variables, tags = split_metadata(body.metadata or {}, declared)
    variables = merge_variables(
        [
            ("body.metadata", variables),
            ("body.metadata.variables", decoded_variables(body.metadata or {})),
            ("body.variables", body.variables or {}),
        ]
    )
    text = last_user_text(body.messages)
    if INPUT_VARIABLE in declared and INPUT_VARIABLE not in variables and text is not None:
        variables[INPUT_VARIABLE] = text
    return RunRequest(
        name=name,
        selector=selector,
        variables=variables,
        end_user=body.user or body.safety_identifier,
        metadata=tags,
    )


def parse_model(model: str) -> tuple[str, str | None]:
    """`prompt:NAME` or `prompt:NAME@LABEL` as (name, label); anything else is a 422."""
    match = PROMPT_MODEL.match(model)
    if match is None:
        shown = model if len(model) <= 60 else model[:60] + "…"
        raise InvalidInput.field(
            "body.model",
            f"`{shown}` is not a managed prompt; this endpoint runs prompts, not raw models: "
            "use `prompt:NAME` or `prompt:NAME@LABEL`",
        )
    return match["name"], match["label"]


async def declared_variables(
    services: RunServices,
    principal: Principal,
    name: str,
    selector: Selector,
) -> frozenset[str]:
    """The variables the selected version declares (its input schema's `properties`): the
    only names that loose data (metadata entries, the last user message) may fill. A label
    that splits traffic may render any of its versions, so those of each count."""
    with sharing(principal.tenant_id):
        plan = await _cached_plan(services, principal.tenant_id, name, selector)
        plans = [plan]
        for version, _ in plan.split or ():
            if version != plan.version:
                arm = ("version", version)
                plans.append(await _cached_plan(services, principal.tenant_id, name, arm))
    return frozenset().union(*(_properties(p.input_schema) for p in plans))


async def _cached_plan(
    services: RunServices, tenant_id: uuid.UUID, name: str, selector: Selector
) -> RenderPlan:
    """A plan read as `render_prompt` reads it, through the same cache, so the render that
    follows finds it there."""
    try:
        return await plan_for(
            services.sessions, services.plans, services.renderer, tenant_id, name, selector
        )
    except InvalidInput as exc:
        raise _as_model_problem(exc) from None


def _properties(schema: dict[str, Any]) -> frozenset[str]:
    properties = schema.get("properties")
    return frozenset(properties) if isinstance(properties, dict) else frozenset()


def split_metadata(
    metadata: dict[str, Any], declared: frozenset[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(entries that are declared variables, the rest as the run's metadata)."""
    variables = {k: v for k, v in metadata.items() if k in declared and k != "variables"}
    tags = {k: v for k, v in metadata.items() if k not in variables and k != "variables"}
    return variables, tags


def decoded_variables(metadata: dict[str, Any]) -> dict[str, Any]:
    """`metadata.variables`: a JSON object, or a string holding one (OpenAI types metadata
    values as strings, so typed SDK callers send `json.dumps(...)`)."""
    value = metadata.get("variables")
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise InvalidInput.field(
            "body.metadata.variables", "must be a JSON object, or a string holding one"
        )
    return value


def merge_variables(sources: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One dict of variables; a name given in two places is refused rather than guessed."""
    merged: dict[str, Any] = {}
    for field, values in sources:
        for name, value in values.items():
            if name in merged:
                raise InvalidInput.field(
                    f"{field}.{name}", "is given more than once in the request; give it once"
                )
            merged[name] = value
    return merged


def last_user_text(messages: list[ChatMessage]) -> str | None:
    """The text of the last user message (text parts joined); None without one."""
    for message in reversed(messages):
        if message.role == "user":
            content = message.content
            if isinstance(content, list):
                parts = [p.get("text") for p in content if p.get("type") == "text"]
                return "\n".join(p for p in parts if isinstance(p, str))
            return content or ""
    return None


def _as_model_problem(exc: InvalidInput) -> InvalidInput:
    """A plan error about the prompt's name (a path field elsewhere) names `body.model` here."""
    errors = [
        {**e, "field": "body.model"} if e.get("field") == "path.name" else e
        for e in exc.errors or []
    ]
    detail = exc.detail.replace("path.name:", "body.model:", 1)
    return InvalidInput(detail, errors=errors)


# --- run → OpenAI's answer ---------------------------------------------------------------


def completion_of(result: dict[str, Any], prompt: str, created: int) -> dict[str, Any]:
    """A run's result (as `result_of` gives it) as a `chat.completion`."""
    return ChatCompletion(
        id=completion_id(result["id"]),
        created=created,
        model=result["model"] or "",
        choices=[
            Choice(
                message=AssistantMessage(content=result["output"]),
                finish_reason=result.get("finish_reason") or "stop",
            )
        ],
        usage=CompletionUsage.of(result["usage"]),
        promptlogic=run_info(result, prompt),
    ).model_dump(mode="json")


def completion_id(run_id: str | uuid.UUID) -> str:
    return f"chatcmpl-{uuid.UUID(str(run_id)).hex}"


def run_info(result: dict[str, Any], prompt: str) -> RunInfo:
    return RunInfo(
        run_id=result["id"],
        prompt=prompt,
        version=result["version"],
        label=result["label"],
        provider=result["provider"],
        cost=result["cost"],
        latency_ms=result["latency_ms"],
        parsed=result["parsed"],
        repaired=bool(result.get("repaired")),
    )


async def openai_chunks(
    events: AsyncIterator[str], run: PreparedRun, *, include_usage: bool
) -> AsyncIterator[str]:
    """The pipeline's run events (`delta`, then `done` or `error`) as OpenAI's chunks: the
    role, content deltas, a last chunk with `finish_reason`, the usage if asked, `[DONE]`.
    A failure is one `{"error": ...}` event and no `[DONE]`; the run is recorded either way.

    OpenAI's stream cannot take text back, so when a repair attempt may replace the output
    (a version with a response format and `repair`), the content is held and sent whole."""
    record = run.record
    base: dict[str, Any] = {
        "id": completion_id(record.id),
        "object": "chat.completion.chunk",
        "created": _epoch(record.created_at),
        "model": str(run.model.get("name", "")),
        "system_fingerprint": None,
    }
    if include_usage:
        base["usage"] = None  # as OpenAI does: null on every chunk but the usage one
    hold = bool(run.model.get("repair") and run.response_format)
    async with aclosing(events):
        yield _chunk(base, {"role": "assistant", "content": ""})
        async for event in events:
            name, data = parse_event(event)
            if name == "delta" and not hold:
                yield _chunk(base, {"content": data["text"]})
            elif name == "done":
                if hold and data["output"]:
                    yield _chunk(base, {"content": data["output"]})
                for chunk in _closing_chunks(base, data, record.prompt, include_usage):
                    yield chunk
            elif name == "error":
                yield _sse({"error": _stream_error(data)})
                return


def _closing_chunks(
    base: dict[str, Any], result: dict[str, Any], prompt: str, include_usage: bool
) -> list[str]:
    """After the content: `finish_reason` with the run's details, the usage, `[DONE]`."""
    done = {**base, "model": result["model"] or base["model"]}
    info = run_info(result, prompt).model_dump(mode="json")
    finish_reason = result.get("finish_reason") or "stop"
    chunks = [_chunk(done, {}, finish_reason=finish_reason, promptlogic=info)]
    if include_usage:
        usage = CompletionUsage.of(result["usage"]).model_dump()
        chunks.append(_sse({**done, "choices": [], "usage": usage}))
    return [*chunks, "data: [DONE]\n\n"]


def parse_event(text: str) -> tuple[str, dict[str, Any]]:
    """One event as `stream_run` writes it (`event: NAME\\ndata: JSON\\n\\n`): (name, data)."""
    head, _, data = text.partition("\n")
    return head.removeprefix("event: "), json.loads(data.strip().removeprefix("data: "))


def _chunk(
    base: dict[str, Any], delta: dict[str, Any], finish_reason: str | None = None, **extra: Any
) -> str:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    return _sse({**base, "choices": [choice], **extra})


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"


def _stream_error(data: dict[str, Any]) -> dict[str, Any]:
    status = int(data.get("status", 500))
    error = openai_error(status, str(data.get("detail", "")), str(data.get("type", "")), None)
    return {**error, "run_id": data.get("id")}


# --- errors ------------------------------------------------------------------------------


def openai_error(status: int, message: str, code: str, param: str | None) -> dict[str, Any]:
    """OpenAI's error object, typed by status the way OpenAI-compatible servers type it."""
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"message": message, "type": kind, "param": param, "code": code or None}


class OpenAIErrorBodies:
    """ASGI middleware: every problem+json answer on `path` keeps its body and gets OpenAI's
    `error` object added, so both kinds of client read the same answer; the openai SDK reads
    `error.message` into its exception's text. Outside the routes, it also covers what is
    refused before them (401 from the key gate, 413 or 422 from the body checks)."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def decorate(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                if headers.get(b"content-type", b"").startswith(PROBLEM_JSON.encode()):
                    start = message  # held until the whole body is here
                    return
            elif start is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                await _send_decorated(send, start, b"".join(chunks))
                return
            await send(message)

        await self.app(scope, receive, decorate)


async def _send_decorated(send: Send, start: Message, body: bytes) -> None:
    status = int(start["status"])
    problem = json.loads(body)
    if isinstance(problem, dict) and "error" not in problem:
        slug = str(problem.get("type", "")).rsplit("/", 1)[-1]
        errors = problem.get("errors") or [{}]
        param = str(errors[0].get("field", "")).removeprefix("body.") or None
        problem["error"] = openai_error(status, str(problem.get("detail", "")), slug, param)
        body = json.dumps(problem).encode()
    headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    if status in ALREADY_RETRIED:
        headers.append((b"x-should-retry", b"false"))
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --- helpers -----------------------------------------------------------------------------


async def _run_once(
    claim: idempotency.Claim,
    services: RunServices,
    principal: Principal,
    run_request: RunRequest,
    body: ChatCompletionRequest,
) -> JSONResponse:
    """A run under an `Idempotency-Key`: a repeat gets the first answer, not a second call
    (as `POST /v1/prompts/{name}/run` does)."""
    headers = _ignored_header(body.ignored())
    replay = await claim.take(
        idempotency.fingerprint("chat.completions", body.model_dump(mode="json"))
    )
    if replay is not None:
        return _answer(replay, {**headers, "Idempotent-Replayed": "true"})
    try:
        record = await execute_run(services, principal, run_request)
    except BaseException:
        # A failed run may be retried; shielded so a client hanging up still frees the key.
        await asyncio.shield(claim.release())
        raise
    answer = completion_of(result_of(record), run_request.name, _epoch(record.created_at))
    await claim.store(answer)
    return _answer(answer, headers)


def _answer(completion: dict[str, Any], headers: dict[str, str]) -> JSONResponse:
    run_id = str(completion["promptlogic"]["run_id"])
    return JSONResponse(completion, headers={**headers, RUN_ID_HEADER: run_id})


def _ignored_header(ignored: list[str]) -> dict[str, str]:
    """Names the parameters given but unused, so nothing is dropped without a word."""
    return {IGNORED_HEADER: ", ".join(ignored)} if ignored else {}


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())
