"""The retry layer over the real SDK and the fake server: backoff, Retry-After, fallbacks."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from promptlogic.providers.base import Completion, Delta
from promptlogic.providers.clients import ResolvedConnection
from promptlogic.providers.openai_chat import OpenAIChatProvider
from promptlogic.providers.reliability import (
    ProviderFailed,
    ProviderTimeout,
    ReliableProvider,
    RetryPolicy,
    reliable,
    retry_after_seconds,
    scrub,
)
from tests.fakes import Fail, FakeOpenAI, Hang, Malformed, Reply, Stream, Usage
from tests.providers.conftest import FAKE_API_KEY

MESSAGES = [{"role": "user", "content": "Charged twice this month"}]
FAST = RetryPolicy(attempts=3, base_seconds=0.01, cap_seconds=0.05)


@pytest.fixture
def provider(
    chat_provider: OpenAIChatProvider, fake_connection: ResolvedConnection
) -> ReliableProvider:
    return reliable(chat_provider, fake_connection, policy=FAST)


def models_sent(fake: FakeOpenAI) -> list[str]:
    return [request.body["model"] for request in fake.requests("/v1/chat/completions")]


async def collect(stream, into: list[Delta | Completion] | None = None) -> list[Delta | Completion]:
    """The stream's items; also appended to `into` as they come, to see them if it fails."""
    items = [] if into is None else into
    async for item in stream:
        items.append(item)
    return items


async def test_429_waits_as_long_as_retry_after_says(
    fake_openai: FakeOpenAI, chat_provider: OpenAIChatProvider
):
    patient = ReliableProvider(chat_provider, policy=RetryPolicy(base_seconds=0.01, cap_seconds=2))
    fake_openai.push(Fail(429, "slow down", retry_after=0.3), Reply("done", usage=Usage(5, 1)))

    completion = await patient.complete(MESSAGES, {"name": "gpt-4o-mini"})

    assert completion.text == "done"
    first, second = fake_openai.requests("/v1/chat/completions")
    assert 0.3 <= second.received_at - first.received_at < 1.0  # not the 10 ms backoff


async def test_retry_after_beyond_the_cap_waits_only_the_cap(
    fake_openai: FakeOpenAI, provider: ReliableProvider
):
    fake_openai.push(Fail(429, retry_after=30), Reply("done"))

    assert (await provider.complete(MESSAGES, {"name": "m"})).text == "done"

    first, second = fake_openai.requests("/v1/chat/completions")
    assert second.received_at - first.received_at < 1.0


def test_retry_after_is_read_in_seconds_milliseconds_or_as_an_http_date():
    in_two_seconds = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)

    assert retry_after_seconds({"retry-after": "1.5"}) == 1.5
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert 0.5 < retry_after_seconds({"retry-after": in_two_seconds}) <= 2.0
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_backoff_grows_with_jitter_and_stays_under_the_cap():
    policy = RetryPolicy(base_seconds=0.25, cap_seconds=8)
    rng = random.Random(4)  # noqa: S311 - jitter

    for retry, step in [(0, 0.25), (1, 0.5), (2, 1.0), (10, 8.0)]:
        waits = {policy.backoff(retry, rng) for _ in range(20)}
        assert all(step / 2 <= wait <= step for wait in waits)
        assert len(waits) > 1


async def test_500_then_success_is_retried(fake_openai: FakeOpenAI, provider: ReliableProvider):
    fake_openai.push(Fail(500), Reply("recovered", usage=Usage(9, 1)))

    completion = await provider.complete(MESSAGES, {"name": "gpt-4o-mini"})

    assert (completion.text, completion.usage.input_tokens) == ("recovered", 9)
    assert fake_openai.call_count() == 2


async def test_a_timeout_then_success_is_retried(
    fake_openai: FakeOpenAI, provider: ReliableProvider
):
    fake_openai.push(Hang(), Reply("in time"))

    completion = await provider.complete(MESSAGES, {"name": "m", "timeout_seconds": 0.2})

    assert completion.text == "in time"
    assert fake_openai.call_count() == 2


async def test_exhausted_retries_are_a_502_whose_summary_holds_no_secret(
    fake_openai: FakeOpenAI, provider: ReliableProvider
):
    leak = f"upstream exploded; Authorization: Bearer {FAKE_API_KEY}, gateway-header-secret"
    fake_openai.set_default(Fail(503, leak))

    with pytest.raises(ProviderFailed) as raised:
        await provider.complete(MESSAGES, {"name": "gpt-4o-mini"})

    error = raised.value
    assert not isinstance(error, ProviderTimeout)
    assert (error.status, error.timed_out, fake_openai.call_count()) == (502, False, 3)
    assert error.errors[-1] == {
        "model": "gpt-4o-mini",
        "status": 503,
        "type": "server_error",
        "message": error.errors[-1]["message"],
    }
    assert "upstream exploded" in error.detail
    shown = f"{error.detail} {error.errors} {error!r}"
    assert FAKE_API_KEY not in shown
    assert FAKE_API_KEY[-10:] not in shown
    assert "gateway-header-secret" not in shown
    assert (error.__cause__, error.__context__) == (None, None)  # SDK errors hold the headers


async def test_timeouts_on_every_attempt_are_a_504(
    fake_openai: FakeOpenAI, chat_provider: OpenAIChatProvider
):
    provider = ReliableProvider(chat_provider, policy=RetryPolicy(2, 0.01, 0.02))
    fake_openai.set_default(Hang())

    with pytest.raises(ProviderTimeout) as raised:
        await provider.complete(MESSAGES, {"name": "m", "timeout_seconds": 0.1})

    assert (raised.value.status, raised.value.timed_out) == (504, True)
    assert fake_openai.call_count() == 2


async def test_fallback_model_answers_after_the_primary_is_exhausted(
    fake_openai: FakeOpenAI, provider: ReliableProvider
):
    fake_openai.push(Fail(500), Fail(502), Fail(503))

    completion = await provider.complete(
        MESSAGES, {"name": "gpt-4o-mini", "fallbacks": ["gpt-4o", "gpt-4.1-mini"]}
    )

    assert completion.model == "gpt-4o"
    assert models_sent(fake_openai) == ["gpt-4o-mini"] * 3 + ["gpt-4o"]
    assert "fallbacks" not in fake_openai.last_request().body


async def test_every_model_failing_names_them_all(
    fake_openai: FakeOpenAI, provider: ReliableProvider
):
    fake_openai.set_default(Fail(500))

    with pytest.raises(ProviderFailed) as raised:
        await provider.complete(MESSAGES, {"name": "a", "fallbacks": ["b"]})

    assert models_sent(fake_openai) == ["a", "a", "a", "b", "b", "b"]
    assert "models tried: a, b" in raised.value.detail


async def test_a_400_is_not_retried(fake_openai: FakeOpenAI, provider: ReliableProvider):
    fake_openai.push(Fail(400, "max_tokens is too large"))

    with pytest.raises(ProviderFailed) as raised:
        await provider.complete(MESSAGES, {"name": "m"})

    assert fake_openai.call_count() == 1
    assert raised.value.errors == [
        {"model": "m", "status": 400, "type": "client_error", "message": "max_tokens is too large"}
    ]


async def test_refused_credentials_do_not_fall_back(
    fake_openai: FakeOpenAI, provider: ReliableProvider
):
    fake_openai.push(Fail(401, f"Incorrect API key provided: {FAKE_API_KEY}"))

    with pytest.raises(ProviderFailed) as raised:
        await provider.complete(MESSAGES, {"name": "m", "fallbacks": ["other"]})

    assert fake_openai.call_count() == 1
    assert FAKE_API_KEY not in raised.value.detail


async def test_malformed_json_is_a_502_not_retried_but_falls_back(
    fake_openai: FakeOpenAI, provider: ReliableProvider
):
    fake_openai.push(Malformed(), Reply("fine"))

    completion = await provider.complete(MESSAGES, {"name": "m", "fallbacks": ["n"]})
    assert (completion.text, models_sent(fake_openai)) == ("fine", ["m", "n"])

    fake_openai.push(Malformed())
    with pytest.raises(ProviderFailed) as raised:
        await provider.complete(MESSAGES, {"name": "m"})
    assert (raised.value.status, raised.value.errors[0]["type"]) == (502, "malformed_output")
    assert fake_openai.call_count() == 3


async def test_stream_broken_after_the_first_delta_ends_with_the_error_unretried(
    fake_openai: FakeOpenAI, provider: ReliableProvider
):
    fake_openai.push(Stream(["one ", "two ", "three"], break_after=2))
    received: list[Delta | Completion] = []

    with pytest.raises(ProviderFailed) as raised:
        await collect(provider.stream(MESSAGES, {"name": "m", "fallbacks": ["n"]}), received)

    assert received == [Delta("one "), Delta("two ")]
    assert raised.value.partial
    assert raised.value.errors[0]["type"] == "connection"
    assert fake_openai.call_count() == 1


async def test_stream_broken_before_any_delta_is_retried(
    fake_openai: FakeOpenAI, provider: ReliableProvider
):
    fake_openai.push(
        Stream(["lost"], break_after=0), Fail(429, retry_after=0), Stream(["ok"], usage=Usage(3, 1))
    )

    items = await collect(provider.stream(MESSAGES, {"name": "m"}))

    assert items[0] == Delta("ok")
    assert isinstance(items[-1], Completion)
    assert (items[-1].text, items[-1].usage.output_tokens) == ("ok", 1)
    assert fake_openai.call_count() == 3


async def test_stream_falls_back_when_the_primary_never_starts(
    fake_openai: FakeOpenAI, provider: ReliableProvider
):
    fake_openai.push(Fail(500), Fail(500), Fail(500), Stream(["from ", "fallback"]))

    items = await collect(provider.stream(MESSAGES, {"name": "m", "fallbacks": ["n"]}))

    assert items[-1].text == "from fallback"
    assert models_sent(fake_openai) == ["m", "m", "m", "n"]


async def test_errors_that_are_not_the_providers_surface_as_themselves():
    class Broken:
        name = "broken"
        calls = 0

        async def complete(self, messages, model_settings, response_format=None):
            self.calls += 1
            raise RuntimeError("a bug of ours")

    broken = Broken()
    with pytest.raises(RuntimeError, match="a bug of ours"):
        await ReliableProvider(broken, policy=FAST).complete(MESSAGES, {"name": "m"})
    assert broken.calls == 1


def test_scrub_masks_secrets_and_key_like_strings_and_truncates():
    text = "key sk-proj-abcdef123456 and bearer abc.def and my-own-secret\n" + "x" * 500

    cleaned = scrub(text, ["my-own-secret"])

    assert "abcdef123456" not in cleaned
    assert "abc.def" not in cleaned
    assert "my-own-secret" not in cleaned
    assert "\n" not in cleaned
    assert len(cleaned) == 300
