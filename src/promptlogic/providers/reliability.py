"""The one retry layer of the run path: backoff, `Retry-After`, fallback models, safe errors.

The SDK's own retries are off (`max_retries=0`) and providers make one attempt, so this is the
only place a call is repeated and retries never multiply. Per model: up to `attempts` calls,
retried only when another try can help (429, 5xx, connection errors, timeouts), spaced by
jittered exponential backoff or by the provider's `Retry-After`. Then the version's
`fallbacks`, in order, each with its own attempts. What finally fails is raised as a
`ProviderFailed` (502) or `ProviderTimeout` (504) that summarizes each failure without
secrets: the SDK's exceptions hold the request, its headers and the API key, so they are never
chained, shown or logged.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import openai

from promptlogic.errors import Problem
from promptlogic.providers.base import (
    ChatProvider,
    Completion,
    Delta,
    Message,
    ModelSettings,
    ResponseFormat,
)

if TYPE_CHECKING:
    from promptlogic.providers.clients import ResolvedConnection

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 300
RETRYABLE_KINDS = frozenset({"rate_limited", "server_error", "connection", "timeout"})
CREDENTIAL_STATUSES = frozenset({401, 403})  # the same key fails on every model: no fallback
_KEY_LIKE = re.compile(r"\b(?:sk|pl)[-_][A-Za-z0-9_*-]{6,}|(?i:bearer)\s+\S+")


# One generator for every run: seeding a new one per run reads the OS's entropy each time.
_JITTER = random.Random()  # noqa: S311 - jitter, not cryptography


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one model: `attempts` calls in all, waits within [base/2, cap]."""

    attempts: int = 3
    base_seconds: float = 0.25
    cap_seconds: float = 8.0

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Equal jitter: half the exponential step fixed, half random, so callers that failed
        together do not come back together, yet no retry is immediate."""
        step = min(self.cap_seconds, self.base_seconds * 2**retry)
        return step / 2 + rng.uniform(0, step / 2)

    def wait_for(self, failure: Failure, retry: int, rng: random.Random) -> float:
        """The provider's `Retry-After` when it gave one (never beyond the cap), else backoff."""
        if failure.retry_after is not None:
            return min(failure.retry_after, self.cap_seconds)
        return self.backoff(retry, rng)


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed call as it may be shown to a client: no request, headers or body."""

    model: str
    kind: str  # rate_limited, server_error, connection, timeout, malformed_output, client_error…
    status: int | None
    message: str
    retry_after: float | None = None

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS

    @property
    def timed_out(self) -> bool:
        return self.kind == "timeout"

    @property
    def falls_back(self) -> bool:
        """Whether another model may do better: not when the credentials were refused."""
        return self.status not in CREDENTIAL_STATUSES

    def describe(self) -> str:
        status = f"{self.status} " if self.status is not None else ""
        return f"{status}{self.kind} on {self.model}: {self.message}"

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "status": self.status,
            "type": self.kind,
            "message": self.message,
        }


class ProviderFailed(Problem):
    """Every attempt on every model failed; `failures` holds each one, oldest first."""

    status, slug = 502, "provider-error"

    def __init__(self, failures: Sequence[Failure], *, partial: bool = False) -> None:
        self.failures = tuple(failures)
        self.partial = partial  # the stream had already sent text when it failed
        last = self.failures[-1]
        models = ", ".join(dict.fromkeys(f.model for f in self.failures))
        tries = len(self.failures)
        when = " after part of the answer was streamed" if partial else ""
        super().__init__(
            f"The model provider failed{when}: {last.describe()} "
            f"({tries} attempt{'s' if tries != 1 else ''}; models tried: {models})",
            errors=[failure.as_json() for failure in self.failures],
        )

    @property
    def timed_out(self) -> bool:
        return self.failures[-1].timed_out


class ProviderTimeout(ProviderFailed):
    """As `ProviderFailed`, when the last attempt ran out of time."""

    status, slug = 504, "provider-timeout"


def provider_failure(failures: Sequence[Failure], *, partial: bool = False) -> ProviderFailed:
    """The error for `failures`: a 504 when the last one was a timeout, else a 502."""
    cls = ProviderTimeout if failures[-1].timed_out else ProviderFailed
    return cls(failures, partial=partial)


def scrub(text: str, secrets: Sequence[str] = ()) -> str:
    """`text` on one line, short, with the connection's secrets and anything key-like masked
    (providers echo keys in auth errors; proxies echo headers)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    text = _KEY_LIKE.sub("[redacted]", " ".join(text.split()))
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    return text


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`retry-after-ms` (OpenAI's) or `Retry-After` in seconds or as an HTTP date."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            seconds = float(raw_ms) / 1000
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds):
            return max(0.0, seconds)
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def classify(exc: Exception, model: str, secrets: Sequence[str] = ()) -> Failure | None:
    """What a provider call's exception means; None when it is not the provider's failure
    (a bug of ours), which must surface as itself."""
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return Failure(model, "timeout", None, "no answer within the timeout")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        detail = f"{exc.message} ({cause})" if cause is not None and str(cause) else exc.message
        return Failure(model, "connection", None, scrub(detail, secrets))
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        body = exc.body
        message = body.get("message") if isinstance(body, Mapping) else None
        text = scrub(str(message or exc.message), secrets)
        if status == 429:
            retry_after = retry_after_seconds(exc.response.headers)
            return Failure(model, "rate_limited", status, text, retry_after)
        kind = "server_error" if status >= 500 else "client_error"
        return Failure(model, kind, status, text)
    if isinstance(exc, openai.APIResponseValidationError | ValueError):
        return Failure(model, "malformed_output", None, scrub(str(exc), secrets))
    if isinstance(exc, openai.OpenAIError):
        return Failure(model, "provider_error", None, scrub(str(exc), secrets))
    return None


def models_to_try(model_settings: ModelSettings) -> list[str]:
    """The version's model, then its fallbacks, each once, in order."""
    fallbacks = model_settings.get("fallbacks") or []
    return list(dict.fromkeys([str(model_settings["name"]), *map(str, fallbacks)]))


class ReliableProvider:
    """A `ChatProvider` that retries and falls back around a one-attempt provider."""

    def __init__(
        self,
        provider: ChatProvider,
        *,
        policy: RetryPolicy | None = None,
        secrets: Sequence[str] = (),
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.provider = provider
        self.name = provider.name
        self.policy = policy or RetryPolicy()
        self._secrets = tuple(secrets)
        self._sleep = sleep
        self._rng = rng or _JITTER

    async def complete(
        self,
        messages: Sequence[Message],
        model_settings: ModelSettings,
        response_format: ResponseFormat = None,
    ) -> Completion:
        failures: list[Failure] = []
        for model in models_to_try(model_settings):
            settings = _for_model(model_settings, model)
            for attempt in range(self.policy.attempts):
                try:
                    return await self.provider.complete(messages, settings, response_format)
                except Exception as exc:
                    failure = self._failure(exc, model)
                failures.append(failure)
                if not await self._retry(failure, attempt):
                    break
            if not failures[-1].falls_back:
                break
        raise provider_failure(failures)

    async def stream(
        self,
        messages: Sequence[Message],
        model_settings: ModelSettings,
        response_format: ResponseFormat = None,
    ) -> AsyncIterator[Delta | Completion]:
        """Retries and fallbacks only until the first delta: after it the client has part of
        an answer, and a second one would be spliced onto it."""
        failures: list[Failure] = []
        for model in models_to_try(model_settings):
            settings = _for_model(model_settings, model)
            for attempt in range(self.policy.attempts):
                started = False
                try:
                    async with _closing(
                        self.provider.stream(messages, settings, response_format)
                    ) as items:
                        async for item in items:
                            started = started or isinstance(item, Delta)
                            yield item
                    return
                except Exception as exc:
                    failure = self._failure(exc, model)
                failures.append(failure)
                if started:
                    raise provider_failure(failures, partial=True)
                if not await self._retry(failure, attempt):
                    break
            if not failures[-1].falls_back:
                break
        raise provider_failure(failures)

    def _failure(self, exc: Exception, model: str) -> Failure:
        failure = classify(exc, model, self._secrets)
        if failure is None:
            raise exc
        return failure

    async def _retry(self, failure: Failure, attempt: int) -> bool:
        """Wait before the next attempt on the same model; False when there is none."""
        if not failure.retryable or attempt + 1 >= self.policy.attempts:
            log.warning("provider call failed, not retried: %s", failure.describe())
            return False
        delay = self.policy.wait_for(failure, attempt, self._rng)
        log.warning("provider call failed, retrying in %.2fs: %s", delay, failure.describe())
        await self._sleep(delay)
        return True


@asynccontextmanager
async def _closing(
    items: AsyncIterator[Delta | Completion],
) -> AsyncIterator[AsyncIterator[Delta | Completion]]:
    """Close a provider's stream (its HTTP response) however the iteration ends."""
    try:
        yield items
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()


def _for_model(model_settings: ModelSettings, model: str) -> dict[str, Any]:
    return {**model_settings, "name": model, "fallbacks": []}


def reliable(
    provider: ChatProvider,
    connection: ResolvedConnection | None = None,
    *,
    policy: RetryPolicy | None = None,
) -> ReliableProvider:
    """`provider` with retries, masking the connection's API key and header values in errors."""
    secrets: list[str] = []
    if connection is not None:
        secrets = [connection.api_key or "", *(value for _, value in connection.headers)]
    return ReliableProvider(provider, policy=policy, secrets=secrets)
