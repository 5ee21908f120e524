"""The fake OpenAI server, seen through the real `openai` SDK as promptlogic will see it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from tests.fakes import Fail, FakeOpenAI, Hang, Malformed, Reply, Stream, Usage

USER = [{"role": "user", "content": "Charged twice this month"}]


@pytest.fixture
async def openai_client(fake_openai: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with fake_openai.client() as client:
        yield client


async def ask(client: openai.AsyncOpenAI, **options: object) -> str | None:
    """One non-streaming completion's text."""
    completion = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )
    return completion.choices[0].message.content


async def stream_text(
    client: openai.AsyncOpenAI, received: list[str] | None = None, **options: object
) -> tuple[str, openai.types.CompletionUsage | None]:
    """A streamed completion's text and usage; deltas also go to `received` as they arrive."""
    received = [] if received is None else received
    usage = None
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        stream=True,
        **options,  # type: ignore[arg-type]
    )
    async for chunk in stream:
        usage = chunk.usage or usage
        if chunk.choices and chunk.choices[0].delta.content:
            received.append(chunk.choices[0].delta.content)
    return "".join(received), usage


async def test_default_reply_echoes_the_last_user_message_and_counts_words(
    openai_client: openai.AsyncOpenAI,
) -> None:
    completion = await openai_client.chat.completions.create(model="gpt-4o", messages=USER)  # type: ignore[arg-type]

    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o"
    assert completion.choices[0].message.content == "echo: Charged twice this month"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.model_dump(include={"prompt_tokens", "completion_tokens"}) == {
        "prompt_tokens": 4,
        "completion_tokens": 5,
    }


async def test_scripted_reply_gives_its_content_and_usage(
    fake_openai: FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    fake_openai.push(Reply("Refund one charge.", usage=Usage(120, 7)))

    completion = await openai_client.chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]

    assert completion.choices[0].message.content == "Refund one charge."
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (120, 7)
    assert completion.usage.total_tokens == 127


async def test_json_reply_is_sent_as_json_text(
    fake_openai: FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    fake_openai.push(Reply({"queue": "billing", "priority": 2}))

    assert await ask(openai_client) == '{"queue": "billing", "priority": 2}'


async def test_every_request_is_recorded_with_what_was_sent(
    fake_openai: FakeOpenAI, fake_openai_server: FakeOpenAI
) -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "triage", "schema": {"type": "object"}},
    }
    async with fake_openai.client(api_key="sk-tenant-key") as client:
        await ask(client, temperature=0.2, max_tokens=50, response_format=response_format)
        await client.models.list()

    assert fake_openai is fake_openai_server  # one server for the session
    assert fake_openai.call_count() == 1
    assert [r.path for r in fake_openai.requests()] == ["/v1/chat/completions", "/v1/models"]
    sent = fake_openai.last_request()
    assert sent.method == "POST"
    assert sent.headers["authorization"] == "Bearer sk-tenant-key"
    assert sent.body["model"] == "gpt-4o-mini"
    assert sent.body["messages"] == USER
    assert sent.body["temperature"] == 0.2
    assert sent.body["max_tokens"] == 50
    assert sent.body["response_format"] == response_format


async def test_queue_is_played_in_order_then_the_default_answers(
    fake_openai: FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    fake_openai.push(Reply("first"), Reply("second"))
    fake_openai.set_default(Reply("fallback"))

    assert await ask(openai_client) == "first"
    assert fake_openai.pending() == 1
    assert await ask(openai_client) == "second"
    assert await ask(openai_client) == "fallback"
    assert fake_openai.pending() == 0
    assert fake_openai.call_count() == 3


async def test_delayed_reply_arrives_after_its_delay(
    fake_openai: FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    fake_openai.push(Reply("slow", delay=0.2))

    started = time.monotonic()
    assert await ask(openai_client) == "slow"
    assert time.monotonic() - started >= 0.2


async def test_delayed_replies_are_served_concurrently(
    fake_openai: FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    fake_openai.set_default(Reply("ok", delay=0.2))

    started = time.monotonic()
    answers = await asyncio.gather(*(ask(openai_client) for _ in range(50)))

    assert answers == ["ok"] * 50
    assert time.monotonic() - started < 1.0


async def test_429_is_a_rate_limit_error_with_retry_after(
    fake_openai: FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    fake_openai.push(Fail(429, "slow down", retry_after=2))

    with pytest.raises(openai.RateLimitError) as raised:
        await ask(openai_client)

    assert raised.value.status_code == 429
    assert raised.value.response.headers["retry-after"] == "2"
    assert raised.value.code == "rate_limit_exceeded"
    assert "slow down" in raised.value.message
    assert fake_openai.call_count() == 1  # max_retries=0: the SDK never retries on its own


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
async def test_error_status_maps_to_the_sdk_error(
    fake_openai: FakeOpenAI,
    openai_client: openai.AsyncOpenAI,
    status: int,
    error_class: type[openai.APIStatusError],
) -> None:
    fake_openai.push(Fail(status))

    with pytest.raises(error_class) as raised:
        await ask(openai_client)

    assert raised.value.status_code == status
    assert "retry-after" not in raised.value.response.headers


async def test_retry_after_is_visible_in_the_spacing_of_retries(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Fail(429, retry_after=0.3), Reply("after the wait"))

    async with fake_openai.client(max_retries=1) as retrying:
        assert await ask(retrying) == "after the wait"

    first, second = fake_openai.requests("/v1/chat/completions")
    assert second.received_at - first.received_at >= 0.3


async def test_hang_outlasts_the_client_timeout(
    fake_openai: FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    fake_openai.push(Hang())

    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await ask(openai_client, timeout=0.2)

    assert time.monotonic() - started < 2
    assert await ask(openai_client) == "echo: Charged twice this month"  # the server is free


async def test_malformed_json_fails_the_parse(
    fake_openai: FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    fake_openai.push(Malformed())

    # This SDK version lets the decoder's error through (json.JSONDecodeError, a ValueError).
    with pytest.raises(ValueError, match="Expecting value"):
        await ask(openai_client)


async def test_malformed_stream_event_fails_the_stream(
    fake_openai: FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    fake_openai.push(Malformed())

    with pytest.raises(ValueError, match="Expecting value"):
        await stream_text(openai_client)


async def test_stream_assembles_the_chunks_and_reports_usage_last(
    fake_openai: FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    fake_openai.push(Stream(["Refund ", "one ", "charge."], usage=Usage(30, 3)))
    received: list[str] = []

    text, usage = await stream_text(openai_client, received, stream_options={"include_usage": True})

    assert received == ["Refund ", "one ", "charge."]
    assert text == "Refund one charge."
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (30, 3, 33)
    assert fake_openai.last_request().body["stream_options"] == {"include_usage": True}


async def test_stream_without_include_usage_reports_none(
    fake_openai: FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    fake_openai.push(Stream(["a", "b"]))

    assert await stream_text(openai_client) == ("ab", None)


async def test_reply_is_streamed_word_by_word_to_a_streaming_request(
    fake_openai: FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    fake_openai.push(Reply("three small words"))
    received: list[str] = []

    text, usage = await stream_text(openai_client, received, stream_options={"include_usage": True})

    assert received == ["three", " small", " words"]
    assert text == "three small words"
    assert usage is not None
    assert usage.completion_tokens == 3


async def test_stream_chunk_delay_spaces_the_chunks(
    fake_openai: FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    fake_openai.push(Stream(["a", "b", "c"], chunk_delay=0.1))

    started = time.monotonic()
    assert (await stream_text(openai_client))[0] == "abc"
    assert time.monotonic() - started >= 0.2


async def test_stream_broken_midway_raises_after_the_first_chunks(
    fake_openai: FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    fake_openai.push(Stream(["one ", "two ", "three"], break_after=2))
    received: list[str] = []

    with pytest.raises(openai.APIConnectionError) as raised:
        await stream_text(openai_client, received)

    assert received == ["one ", "two "]
    assert "incomplete chunked read" in str(raised.value.__cause__)
    assert await ask(openai_client)  # the server keeps serving


async def test_stream_script_answers_a_non_streaming_request_whole(
    fake_openai: FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    fake_openai.push(Stream(["Refund ", "one."]))

    assert await ask(openai_client) == "Refund one."


async def test_embeddings_are_deterministic_unit_vectors_of_the_asked_dimension(
    fake_openai: FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    # The SDK asks for base64 by default and decodes it; asking for floats must agree.
    decoded = await openai_client.embeddings.create(
        model="text-embedding-3-small", input=["refund", "invoice", "refund"], dimensions=64
    )
    floats = await openai_client.embeddings.create(
        model="text-embedding-3-small", input="refund", dimensions=64, encoding_format="float"
    )

    first, second, again = (item.embedding for item in decoded.data)
    assert len(first) == 64
    assert first == again == floats.data[0].embedding
    assert first != second
    assert sum(v * v for v in first) == pytest.approx(1.0, abs=1e-5)
    assert fake_openai.requests("/v1/embeddings")[0].body["encoding_format"] == "base64"


async def test_embeddings_follow_their_own_script(
    fake_openai: FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    fake_openai.push(Fail(503), endpoint="embeddings")

    with pytest.raises(openai.InternalServerError):
        await openai_client.embeddings.create(model="text-embedding-3-small", input="x")
    assert await ask(openai_client)  # the chat queue was untouched
    assert fake_openai.call_count("/v1/embeddings") == 1


async def test_models_are_listed(openai_client: openai.AsyncOpenAI) -> None:
    models = [model.id async for model in openai_client.models.list()]

    assert "gpt-4o-mini" in models


async def test_unknown_route_is_a_404(fake_openai: FakeOpenAI) -> None:
    async with httpx.AsyncClient(base_url=fake_openai.base_url) as http:
        response = await http.post("/responses", json={})

    assert response.status_code == 404
    assert response.json()["error"]["message"] == "the fake has no route POST /v1/responses"


def test_reset_forgets_the_script_the_record_and_the_default(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Fail(500), Fail(500))
    fake_openai.set_default(Hang())

    started = time.perf_counter()
    fake_openai.reset()
    elapsed = time.perf_counter() - started

    assert fake_openai.pending() == 0
    assert fake_openai.requests() == []
    assert elapsed < 0.001


@pytest.mark.parametrize("turn", [1, 2])
async def test_each_test_starts_with_a_clean_fake(
    fake_openai: FakeOpenAI, openai_client: openai.AsyncOpenAI, turn: int
) -> None:
    # Whichever turn runs second would see the first's leftovers without the reset.
    assert fake_openai.pending() == 0
    assert fake_openai.requests() == []
    assert await ask(openai_client) == "echo: Charged twice this month"

    fake_openai.push(Fail(500), Fail(500))
    fake_openai.set_default(Fail(401))
