"""`POST /v1/chat/completions`, spoken to by the official `openai` SDK over real HTTP.

The app is served by uvicorn on a real socket (tests/live.py) and calls the fake OpenAI server
as its tenant's provider, so both sides of the run path are the real SDK.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from promptlogic.demo_prompts import TRIAGE_RESPONSE_FORMAT
from tests.factories import KeyFixture, make_key, make_tenant
from tests.fakes import Fail, Reply, Stream, Usage
from tests.live import serving
from tests.runs.support import use_fake

UPSTREAM_KEY = "sk-compat-upstream-secret-0123456789"
TRIAGE = {
    "messages": [
        {"role": "system", "content": "Triage for {{ company }}."},
        {"role": "user", "content": "{{ ticket }}"},
    ],
    "model": {"name": "gpt-4o-mini", "temperature": 0},
}
VARIABLES = {"company": "Acme", "ticket": "Where is my parcel?"}
RENDERED = [
    {"role": "system", "content": "Triage for Acme."},
    {"role": "user", "content": "Where is my parcel?"},
]
ASK = [{"role": "user", "content": "Where is my parcel?"}]


class Triage(BaseModel):
    category: str
    priority: str
    needs_human: bool
    summary: str


@pytest.fixture(scope="session")
async def live_url(app) -> AsyncIterator[str]:
    async with serving(app) as url:
        yield url


@pytest.fixture(autouse=True)
async def recorded(app) -> AsyncIterator[None]:
    """Write each test's runs before the next test empties the tables under them."""
    yield
    await app.state.run_recorder.flush()


def sdk_for(live_url: str, key: KeyFixture | str, **options: Any) -> openai.AsyncOpenAI:
    """The official client, pointed at promptlogic as a product app would point it."""
    token = key if isinstance(key, str) else key.token
    return openai.AsyncOpenAI(
        base_url=f"{live_url}/v1", api_key=token, **{"max_retries": 0, **options}
    )


@pytest.fixture
async def sdk(live_url, runner) -> AsyncIterator[openai.AsyncOpenAI]:
    async with sdk_for(live_url, runner) as client:
        yield client


async def make_prompt(client, admin, name="triage", **content) -> None:
    """`name` with version 1 on `production`."""
    body = {"name": name, "version": {**TRIAGE, **content}}
    response = await client.post("/v1/prompts", headers=admin.headers, json=body)
    assert response.status_code == 201, response.text
    await move_label(client, admin, name, "production", 1, expected=None)


async def add_version(client, admin, name="triage", **content) -> None:
    body = {**TRIAGE, **content}
    response = await client.post(f"/v1/prompts/{name}/versions", headers=admin.headers, json=body)
    assert response.status_code == 201, response.text


async def move_label(client, admin, name, label, version, expected) -> None:
    response = await client.put(
        f"/v1/prompts/{name}/labels/{label}",
        headers=admin.headers,
        json={"version": version, "expected_version": expected},
    )
    assert response.status_code == 200, response.text


async def stored(app, client, key, run_id) -> dict[str, Any]:
    await app.state.run_recorder.flush()
    response = await client.get(f"/v1/runs/{run_id}", headers=key.headers)
    assert response.status_code == 200, response.text
    return response.json()


def extra(model: BaseModel, name: str) -> Any:
    """A field promptlogic adds to OpenAI's shapes, as the SDK keeps it."""
    return (model.model_extra or {})[name]


async def read_text(stream: openai.AsyncStream[Any], *, into: list[str]) -> None:
    """Append each chunk's text to `into`, so what came before an error can be checked."""
    async for chunk in stream:
        into += [choice.delta.content or "" for choice in chunk.choices]


def problem_of(error: openai.APIStatusError) -> dict[str, Any]:
    """The whole error body: problem+json with OpenAI's `error` object in it."""
    assert error.response.headers["content-type"] == "application/problem+json"
    body = error.response.json()
    assert body["status"] == error.status_code
    assert body["error"]["message"] == body["detail"]
    return body


# --- answers -----------------------------------------------------------------------------


async def test_variables_in_metadata_run_the_production_version_as_a_chat_completion(
    app, client, admin, runner, sdk, fake_openai
):
    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai, api_key=UPSTREAM_KEY)
    fake_openai.push(Reply("Your parcel is on its way.", usage=Usage(40, 8)))

    raw = await sdk.chat.completions.with_raw_response.create(
        model="prompt:triage",
        messages=ASK,
        metadata={**VARIABLES, "order": "A-1042"},
        user="customer-7",
    )
    completion = raw.parse()

    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "Your parcel is on its way."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o-mini"
    assert completion.usage.model_dump(include={"prompt_tokens", "completion_tokens"}) == {
        "prompt_tokens": 40,
        "completion_tokens": 8,
    }
    assert completion.usage.total_tokens == 48
    run_id = raw.headers["x-promptlogic-run-id"]
    assert completion.id == f"chatcmpl-{uuid.UUID(run_id).hex}"
    info = extra(completion, "promptlogic")
    assert info["run_id"] == run_id
    assert (info["prompt"], info["version"], info["label"]) == ("triage", 1, "production")
    assert "x-promptlogic-ignored-params" not in raw.headers
    sent = fake_openai.last_request()
    assert sent.body["messages"] == RENDERED
    assert sent.body["model"] == "gpt-4o-mini"
    record = await stored(app, client, runner, run_id)
    assert record["status"] == "succeeded"
    assert record["inputs"] == VARIABLES  # only declared variables; the rest is metadata
    assert record["metadata"] == {"order": "A-1042"}
    assert record["end_user"] == "customer-7"
    assert record["output"] == "Your parcel is on its way."


async def test_an_answer_cut_short_says_length_whole_and_streamed(client, admin, sdk, fake_openai):
    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai, api_key=UPSTREAM_KEY)
    fake_openai.push(Reply("Your parcel", finish_reason="length"))
    whole = await sdk.chat.completions.create(
        model="prompt:triage", messages=ASK, metadata=VARIABLES
    )
    assert whole.choices[0].finish_reason == "length"
    fake_openai.push(Reply("Your parcel", finish_reason="length"))
    stream = await sdk.chat.completions.create(
        model="prompt:triage", messages=ASK, metadata=VARIABLES, stream=True
    )
    reasons = [c.choices[0].finish_reason async for c in stream if c.choices]
    assert reasons[-1] == "length"


async def test_variables_in_extra_body_and_a_label_in_the_model_select_that_version(
    client, admin, sdk, fake_openai
):
    await make_prompt(client, admin)
    await add_version(
        client,
        admin,
        messages=[
            {"role": "system", "content": "Staging triage for {{ company }}."},
            {"role": "user", "content": "{{ ticket }}"},
        ],
    )
    await move_label(client, admin, "triage", "staging", 2, expected=None)
    await use_fake(client, admin, fake_openai, api_key=UPSTREAM_KEY)

    staged = await sdk.chat.completions.create(
        model="prompt:triage@staging", messages=ASK, extra_body={"variables": VARIABLES}
    )
    assert fake_openai.last_request().body["messages"][0]["content"] == "Staging triage for Acme."
    info = extra(staged, "promptlogic")
    assert (info["version"], info["label"]) == (2, "staging")

    default = await sdk.chat.completions.create(
        model="prompt:triage", messages=ASK, extra_body={"variables": VARIABLES}
    )
    assert fake_openai.last_request().body["messages"] == RENDERED
    assert extra(default, "promptlogic")["version"] == 1

    pinned = await sdk.chat.completions.create(
        model="prompt:triage", messages=ASK, extra_body={"variables": VARIABLES, "version": 2}
    )
    assert extra(pinned, "promptlogic")["version"] == 2


async def test_a_split_label_keeps_a_user_on_one_version_and_takes_any_versions_variables(
    app, client, admin, runner, sdk, fake_openai
):
    await make_prompt(client, admin)
    toned = {"role": "user", "content": "{{ ticket }} ({{ tone }})"}
    await add_version(client, admin, messages=[TRIAGE["messages"][0], toned])
    response = await client.put(
        "/v1/prompts/triage/labels/ab",
        headers=admin.headers,
        json={
            "versions": [{"version": 1, "weight": 1}, {"version": 2, "weight": 1}],
            "expected_version": None,
        },
    )
    assert response.status_code == 200, response.text
    await use_fake(client, admin, fake_openai, api_key=UPSTREAM_KEY)
    metadata = {**VARIABLES, "tone": "calm", "order": "A-1"}

    versions = set()
    for user in ("u-1", "u-1", "u-2", "u-3", "u-4", "u-5", "u-6"):
        raw = await sdk.chat.completions.with_raw_response.create(
            model="prompt:triage@ab", messages=ASK, metadata=metadata, user=user
        )
        versions.add((user, extra(raw.parse(), "promptlogic")["version"]))
        record = await stored(app, client, runner, raw.headers["x-promptlogic-run-id"])
        assert record["inputs"] == {**VARIABLES, "tone": "calm"}  # `tone` is version 2's
        assert record["metadata"] == {"order": "A-1"}
    assert len({user for user, _ in versions}) == len(versions)  # u-1 got one version twice
    assert {version for _, version in versions} == {1, 2}


async def test_metadata_variables_may_be_a_json_string_holding_any_json(
    app, client, admin, runner, sdk, fake_openai
):
    await make_prompt(
        client,
        admin,
        messages=[{"role": "user", "content": "{{ items | join(', ') }} for {{ company }}"}],
        input_schema={
            "type": "object",
            "properties": {"items": {"type": "array"}, "company": {"type": "string"}},
            "required": ["items", "company"],
            "additionalProperties": False,
        },
    )
    await use_fake(client, admin, fake_openai, api_key=UPSTREAM_KEY)
    raw = await sdk.chat.completions.with_raw_response.create(
        model="prompt:triage",
        messages=ASK,
        metadata={"variables": json.dumps({"items": ["tea", "cake"]}), "company": "Acme"},
    )
    assert fake_openai.last_request().body["messages"] == [
        {"role": "user", "content": "tea, cake for Acme"}
    ]
    record = await stored(app, client, runner, raw.headers["x-promptlogic-run-id"])
    assert record["inputs"] == {"items": ["tea", "cake"], "company": "Acme"}
    assert record["metadata"] == {}


async def test_the_last_user_message_fills_a_declared_input_variable(
    app, client, admin, runner, sdk, fake_openai
):
    await make_prompt(
        client,
        admin,
        name="helpdesk",
        messages=[
            {"role": "system", "content": "You help {{ company }} customers."},
            {"role": "user", "content": "{{ input }}"},
        ],
    )
    await use_fake(client, admin, fake_openai, api_key=UPSTREAM_KEY)
    raw = await sdk.chat.completions.with_raw_response.create(
        model="prompt:helpdesk",
        messages=[
            {"role": "system", "content": "An old hard-coded system prompt."},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": [{"type": "text", "text": "Where is my parcel?"}]},
        ],
        metadata={"company": "Acme"},
    )
    assert fake_openai.last_request().body["messages"] == [
        {"role": "system", "content": "You help Acme customers."},
        {"role": "user", "content": "Where is my parcel?"},
    ]
    record = await stored(app, client, runner, raw.headers["x-promptlogic-run-id"])
    assert record["inputs"] == {"company": "Acme", "input": "Where is my parcel?"}

    await sdk.chat.completions.create(
        model="prompt:helpdesk",
        messages=ASK,
        metadata={"company": "Acme", "input": "Given explicitly"},
    )
    assert fake_openai.last_request().body["messages"][1]["content"] == "Given explicitly"


async def test_sampling_parameters_are_the_versions_and_the_callers_are_named_as_ignored(
    client, admin, sdk, fake_openai
):
    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai, api_key=UPSTREAM_KEY)
    raw = await sdk.chat.completions.with_raw_response.create(
        model="prompt:triage",
        messages=ASK,
        metadata=VARIABLES,
        temperature=1.7,
        max_tokens=5,
        seed=7,
    )
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-promptlogic-ignored-params"] == "max_tokens, seed, temperature"
    sent = fake_openai.last_request().body
    assert sent["temperature"] == 0
    assert "max_tokens" not in sent
    assert "seed" not in sent


async def test_a_response_format_prompt_answers_json_the_sdk_can_parse(
    client, admin, sdk, fake_openai
):
    await make_prompt(client, admin, response_format=TRIAGE_RESPONSE_FORMAT)
    await use_fake(client, admin, fake_openai, api_key=UPSTREAM_KEY)
    answer = {"category": "shipping", "priority": "normal", "needs_human": False, "summary": "Late"}
    fake_openai.push(Reply(answer), Reply(answer))

    completion = await sdk.chat.completions.create(
        model="prompt:triage", messages=ASK, metadata=VARIABLES
    )
    assert json.loads(completion.choices[0].message.content) == answer
    assert extra(completion, "promptlogic")["parsed"] == answer
    assert fake_openai.last_request().body["response_format"]["type"] == "json_schema"

    parsed = await sdk.chat.completions.parse(
        model="prompt:triage", messages=ASK, metadata=VARIABLES, response_format=Triage
    )
    assert parsed.choices[0].message.parsed == Triage(**answer)


async def test_a_repaired_output_replaces_the_invalid_one_whole_or_streamed(
    client, admin, sdk, fake_openai
):
    model = {**TRIAGE["model"], "repair": True}
    await make_prompt(client, admin, response_format=TRIAGE_RESPONSE_FORMAT, model=model)
    await use_fake(client, admin, fake_openai, api_key=UPSTREAM_KEY)
    answer = {"category": "shipping", "priority": "low", "needs_human": False, "summary": "Late"}
    ask = {"model": "prompt:triage", "messages": ASK, "metadata": VARIABLES}

    fake_openai.push(Reply("not json at all"), Reply(answer))
    completion = await sdk.chat.completions.create(**ask)
    assert json.loads(completion.choices[0].message.content) == answer
    assert extra(completion, "promptlogic")["repaired"] is True

    fake_openai.push(Reply("not json at all"), Reply(answer))
    stream = await sdk.chat.completions.create(**ask, stream=True)
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(text) == answer  # none of the invalid first answer reached the caller
    assert extra(chunks[-1], "promptlogic")["repaired"] is True
    assert fake_openai.call_count() == 4


async def test_an_idempotency_key_replays_the_first_answer_without_a_second_call(
    client, admin, sdk, fake_openai
):
    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai, api_key=UPSTREAM_KEY)
    fake_openai.push(Reply("first answer"))
    ask = {"model": "prompt:triage", "messages": ASK, "metadata": VARIABLES}
    headers = {"Idempotency-Key": "order-1042"}

    first = await sdk.chat.completions.with_raw_response.create(**ask, extra_headers=headers)
    again = await sdk.chat.completions.with_raw_response.create(**ask, extra_headers=headers)

    assert again.headers["idempotent-replayed"] == "true"
    assert again.parse().model_dump() == first.parse().model_dump()
    assert again.headers["x-promptlogic-run-id"] == first.headers["x-promptlogic-run-id"]
    assert fake_openai.call_count() == 1


# --- streaming ---------------------------------------------------------------------------


async def test_streamed_chunks_add_up_to_the_output_and_the_run_is_recorded(
    app, client, admin, runner, sdk, fake_openai
):
    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai, api_key=UPSTREAM_KEY)
    fake_openai.push(Stream(["Your ", "parcel ", "is coming."], usage=Usage(30, 5)))

    stream = await sdk.chat.completions.create(
        model="prompt:triage", messages=ASK, metadata=VARIABLES, stream=True
    )
    chunks = [chunk async for chunk in stream]

    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Your parcel is coming."
    assert [c.choices[0].finish_reason for c in chunks] == [None] * (len(chunks) - 1) + ["stop"]
    assert all(chunk.usage is None for chunk in chunks)  # not asked for
    run_id = extra(chunks[-1], "promptlogic")["run_id"]
    assert chunks[0].id == f"chatcmpl-{uuid.UUID(run_id).hex}"
    record = await stored(app, client, runner, run_id)
    assert record["status"] == "succeeded"
    assert record["output"] == "Your parcel is coming."
    assert record["time_to_first_token_ms"] is not None


async def test_the_sdks_stream_helper_assembles_the_completion_with_usage(
    client, admin, sdk, fake_openai
):
    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai, api_key=UPSTREAM_KEY)
    fake_openai.push(Stream(["Your ", "parcel ", "is coming."], usage=Usage(30, 5)))

    async with sdk.chat.completions.stream(
        model="prompt:triage",
        messages=ASK,
        metadata=VARIABLES,
        stream_options={"include_usage": True},
    ) as stream:
        final = await stream.get_final_completion()

    assert final.choices[0].message.content == "Your parcel is coming."
    assert final.choices[0].finish_reason == "stop"
    assert final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (30, 5)
    assert final.usage.total_tokens == 35


async def test_include_usage_sends_one_usage_chunk_without_choices_before_done(
    client, admin, sdk, fake_openai
):
    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai, api_key=UPSTREAM_KEY)
    fake_openai.push(Stream(["Your ", "parcel."], usage=Usage(30, 2)))
    stream = await sdk.chat.completions.create(
        model="prompt:triage",
        messages=ASK,
        metadata=VARIABLES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    *content, last = chunks
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (30, 2)
    assert all(chunk.usage is None and chunk.choices for chunk in content)


async def test_a_stream_that_breaks_raises_in_the_sdk_and_the_run_is_recorded_failed(
    app, client, admin, runner, sdk, fake_openai
):
    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai, api_key=UPSTREAM_KEY)
    fake_openai.push(Stream(["Your ", "parcel ", "is coming."], break_after=1))

    stream = await sdk.chat.completions.create(
        model="prompt:triage", messages=ASK, metadata=VARIABLES, stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        await read_text(stream, into=received)

    assert "".join(received) == "Your "
    assert caught.value.type == "server_error"
    assert caught.value.message
    assert UPSTREAM_KEY not in caught.value.message
    run_id = caught.value.body["run_id"]  # type: ignore[index]
    record = await stored(app, client, runner, run_id)
    assert record["status"] == "failed"


# --- errors, as the SDK raises them ------------------------------------------------------


async def test_an_unknown_prompt_or_label_is_a_not_found_error(client, admin, sdk):
    await make_prompt(client, admin)
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk.chat.completions.create(model="prompt:ghost", messages=ASK)
    assert "No prompt named `ghost`" in caught.value.message
    assert caught.value.type == "not_found_error"
    problem_of(caught.value)

    with pytest.raises(openai.NotFoundError) as caught:
        await sdk.chat.completions.create(model="prompt:triage@canary", messages=ASK)
    assert "label `canary`" in caught.value.message


@pytest.mark.parametrize("model", ["gpt-4o-mini", "prompt:", "prompt:Triage", "triage"])
async def test_a_model_that_names_no_prompt_is_a_422_naming_body_model(sdk, model):
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        await sdk.chat.completions.create(model=model, messages=ASK)
    assert caught.value.param == "model"
    assert "prompt:NAME@LABEL" in caught.value.message
    body = problem_of(caught.value)
    assert [e["field"] for e in body["errors"]] == ["body.model"]


async def test_a_context_template_is_not_runnable_and_the_422_names_body_model(client, admin, sdk):
    body = {"name": "policy", "kind": "context", "version": {"template": "Be kind."}}
    response = await client.post("/v1/prompts", headers=admin.headers, json=body)
    assert response.status_code == 201, response.text
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        await sdk.chat.completions.create(model="prompt:policy@latest", messages=ASK)
    assert caught.value.param == "model"
    assert [e["field"] for e in problem_of(caught.value)["errors"]] == ["body.model"]


async def test_missing_variables_are_a_422_naming_each_and_call_no_model(
    client, admin, sdk, fake_openai
):
    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai, api_key=UPSTREAM_KEY)
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        await sdk.chat.completions.create(
            model="prompt:triage", messages=ASK, metadata={"company": "Acme"}
        )
    assert "variables.ticket" in caught.value.message
    assert caught.value.param == "variables.ticket"
    assert fake_openai.call_count() == 0


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"metadata": {"variables": "not json"}}, "body.metadata.variables"),
        ({"metadata": {"variables": "[1, 2]"}}, "body.metadata.variables"),
        (
            {"metadata": {"company": "Acme"}, "extra_body": {"variables": {"company": "Acme"}}},
            "body.variables.company",
        ),
        ({"model": "prompt:triage@production", "extra_body": {"version": 1}}, "body.version"),
        ({"n": 2}, "body.n"),
        ({"logprobs": True}, "body.logprobs"),
        (
            {"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]},
            "body.tools",
        ),
        ({"extra_body": {"Variables": {}}}, "body.Variables"),
        (
            {"stream": True, "metadata": VARIABLES, "extra_headers": {"Idempotency-Key": "k-1"}},
            "header.Idempotency-Key",
        ),
    ],
)
async def test_requests_that_cannot_be_honoured_are_a_422_naming_the_field(
    client, admin, sdk, options, field
):
    await make_prompt(client, admin)
    ask: dict[str, Any] = {"model": "prompt:triage", "messages": ASK, **options}
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        await sdk.chat.completions.create(**ask)
    body = problem_of(caught.value)
    assert field in [e["field"] for e in body["errors"]], body


async def test_a_wrong_key_is_an_authentication_error(live_url, client, admin):
    await make_prompt(client, admin)
    forged = "pl_0123456789ab_" + "a" * 48
    async with sdk_for(live_url, forged) as stranger:
        with pytest.raises(openai.AuthenticationError) as caught:
            await stranger.chat.completions.create(model="prompt:triage", messages=ASK)
    # Refused before any route runs, and still in OpenAI's shape: the SDK shows the reason.
    assert "API key" in caught.value.message
    assert caught.value.code == "unauthorized"
    assert caught.value.response.headers["content-type"].startswith("application/problem+json")


async def test_a_body_over_the_limit_is_refused_with_a_reason_the_sdk_shows(
    live_url, client, admin, sdk
):
    await make_prompt(client, admin)
    with pytest.raises(openai.APIStatusError) as caught:
        await sdk.chat.completions.create(
            model="prompt:triage", messages=[{"role": "user", "content": "x" * 2_000_000}]
        )
    assert caught.value.status_code == 413
    assert "larger than the limit" in caught.value.message
    assert caught.value.code == "payload-too-large"


async def test_a_key_without_the_run_scope_is_a_permission_denied_error(
    live_url, client, session, tenant, admin
):
    await make_prompt(client, admin)
    reader = await make_key(session, tenant, ["read", "write"])
    async with sdk_for(live_url, reader) as sdk:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await sdk.chat.completions.create(
                model="prompt:triage", messages=ASK, metadata=VARIABLES
            )
    assert "`run` scope" in caught.value.message


async def test_another_tenants_prompt_is_not_found_and_not_shown(client, session, sdk, fake_openai):
    other = await make_tenant(session, "globex")
    other_admin = await make_key(session, other, ["admin"])
    secret = [{"role": "user", "content": "Globex secret logic for {{ ticket }}"}]
    await make_prompt(client, other_admin, name="globex-triage", messages=secret)

    with pytest.raises(openai.NotFoundError) as caught:
        await sdk.chat.completions.create(
            model="prompt:globex-triage", messages=ASK, metadata={"ticket": "x"}
        )
    assert "Globex secret" not in caught.value.response.text
    assert fake_openai.call_count() == 0


async def test_an_upstream_failure_is_a_502_the_sdk_does_not_retry_and_a_failed_run(
    app, live_url, client, admin, runner, fake_openai
):
    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai, api_key=UPSTREAM_KEY)
    fake_openai.set_default(Fail(500))

    async with sdk_for(live_url, runner, max_retries=2) as sdk:  # the SDK's default retries
        with pytest.raises(openai.APIStatusError) as caught:
            await sdk.chat.completions.create(
                model="prompt:triage", messages=ASK, metadata=VARIABLES
            )

    assert caught.value.status_code == 502
    assert caught.value.type == "server_error"
    assert UPSTREAM_KEY not in caught.value.response.text
    problem_of(caught.value)
    assert fake_openai.call_count() == 3  # the pipeline's attempts only, not 3 per SDK try
    await app.state.run_recorder.flush()
    failed = await client.get("/v1/runs", headers=runner.headers, params={"status": "failed"})
    assert [run["prompt"] for run in failed.json()["items"]] == ["triage"]
