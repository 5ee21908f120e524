"""Embedders: the offline one (local, deterministic) and one per provider connection.

The offline embedder hashes features of the text into a fixed number of dimensions (the
"hashing trick"): normalized word unigrams and bigrams, and character trigrams, each feature
adding +1 or -1 (a second hash picks the sign, so collisions cancel out on average) to one
dimension; each kind of feature is scaled to unit length, they are summed with fixed weights
and the result is L2-normalized for cosine similarity. The same text always gives the same
vector, on any machine, with no network and no model file. It measures lexical overlap: shared
words, shared word pairs and, through the trigrams, shared word parts (plurals, typos,
compounds, CJK text without spaces). It knows nothing of meaning: "refund" and "money back"
share nothing. Good for tests, demos and offline development; use a provider's model for
semantic search.

A provider embedder calls the OpenAI-compatible embeddings API through the tenant's
connection (the registry's pooled client), in batches, retrying what a retry can fix.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
import unicodedata
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import openai
import regex

from promptlogic.errors import Conflict, InvalidInput
from promptlogic.providers.reliability import (
    Failure,
    RetryPolicy,
    classify,
    provider_failure,
)

if TYPE_CHECKING:
    from promptlogic.providers.clients import ProviderRegistry

log = logging.getLogger(__name__)

OFFLINE_MODEL = "offline-hash-v1"
PROVIDER_BATCH = 64  # inputs per embeddings call
THREAD_THRESHOLD_CHARS = 4_000  # more text than this is embedded off the event loop

_WORD_WEIGHT, _BIGRAM_WEIGHT, _TRIGRAM_WEIGHT = 1.0, 0.5, 1.0
_MARKS = regex.compile(r"\p{Mn}+")
# A CJK ideograph or kana is a word of its own (the text has no spaces to find words by);
# otherwise a word is a run of letters, digits and marks; a symbol (emoji) stands alone.
_TOKEN = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}]|[\p{L}\p{N}\p{Mc}]+|[\p{So}]")
_MIX_1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_TRIGRAM_BASE = (np.uint64(1_000_003), np.uint64(1_000_033))
_JITTER = random.Random()  # noqa: S311 - spacing of retries, not cryptography


class Embedder(Protocol):
    """Turns texts into unit vectors of `dimensions` floats, one per text, in order."""

    model: str
    dimensions: int

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def normalize(text: str) -> str:
    """Case-folded, compatibility-normalized text without accents and other non-spacing marks,
    so "Café", "CAFE" and "café" (composed or not) are the same word."""
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFKC", _MARKS.sub("", decomposed)).casefold()


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(normalize(text))


def _mix(values: np.ndarray) -> np.ndarray:
    """A 64-bit finalizer (MurmurHash3's): spreads every input bit over every output bit."""
    with np.errstate(over="ignore"):
        values = values ^ (values >> np.uint64(33))
        values = values * _MIX_1
        values = values ^ (values >> np.uint64(33))
        values = values * _MIX_2
        return values ^ (values >> np.uint64(33))


def _project(hashes: np.ndarray, dimensions: int) -> np.ndarray:
    """Signed counts of `hashes` in `dimensions` buckets, dampened (1 + log) and unit length."""
    if hashes.size == 0:
        return np.zeros(dimensions)
    mixed = _mix(hashes)
    buckets = (mixed % np.uint64(dimensions)).astype(np.intp)
    signs = np.where(mixed >> np.uint64(63), -1.0, 1.0)
    counts = np.bincount(buckets, weights=signs, minlength=dimensions)
    dampened = np.sign(counts) * np.log1p(np.abs(counts))
    norm = float(np.linalg.norm(dampened))
    return dampened / norm if norm > 0 else dampened


def _string_hashes(strings: Sequence[str], salt: bytes) -> np.ndarray:
    return np.fromiter(
        (zlib.crc32(s.encode(), zlib.crc32(salt)) for s in strings),
        dtype=np.uint64,
        count=len(strings),
    )


def _trigram_hashes(words: Sequence[str]) -> np.ndarray:
    """Hashes of the character trigrams of " word1 word2 … " (spaces mark word edges)."""
    padded = f" {' '.join(words)} "
    points = np.frombuffer(padded.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if points.size < 3:
        return np.zeros(0, dtype=np.uint64)
    base, offset = _TRIGRAM_BASE
    with np.errstate(over="ignore"):
        return (points[:-2] * base + points[1:-1]) * offset + points[2:]


def offline_vector(text: str, dimensions: int) -> list[float]:
    """The offline embedding of `text`: deterministic, unit length (all zeros when the text
    has no word, symbol or digit)."""
    words = tokens(text)
    bigrams = [f"{a} {b}" for a, b in itertools.pairwise(words)]
    vector = (
        _WORD_WEIGHT * _project(_string_hashes(words, b"w"), dimensions)
        + _BIGRAM_WEIGHT * _project(_string_hashes(bigrams, b"b"), dimensions)
        + _TRIGRAM_WEIGHT * _project(_trigram_hashes(words), dimensions)
    )
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).tolist()


@dataclass(frozen=True, slots=True)
class OfflineEmbedder:
    dimensions: int
    model: str = OFFLINE_MODEL

    def embed_now(self, texts: Sequence[str]) -> list[list[float]]:
        return [offline_vector(text, self.dimensions) for text in texts]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Small inputs (a query) inline; more text in a thread, off the event loop."""
        if sum(len(text) for text in texts) <= THREAD_THRESHOLD_CHARS:
            return self.embed_now(texts)
        return await asyncio.to_thread(self.embed_now, texts)


class ProviderEmbedder:
    """Embeddings from an OpenAI-compatible API, `PROVIDER_BATCH` texts a call."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        model: str,
        dimensions: int,
        secrets: Sequence[str] = (),
        policy: RetryPolicy | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.dimensions = dimensions
        self._secrets = tuple(secrets)
        self._policy = policy or RetryPolicy()

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), PROVIDER_BATCH):
            vectors.extend(await self._batch(list(texts[start : start + PROVIDER_BATCH])))
        return vectors

    async def _batch(self, texts: list[str]) -> list[list[float]]:
        failures: list[Failure] = []
        for attempt in range(self._policy.attempts):
            try:
                response = await self.client.embeddings.create(
                    model=self.model, input=texts, dimensions=self.dimensions
                )
                return self._vectors(response, len(texts))
            except Exception as exc:
                failure = classify(exc, self.model, self._secrets)
                if failure is None:
                    raise
            failures.append(failure)
            if not failure.retryable or attempt + 1 >= self._policy.attempts:
                break
            delay = self._policy.wait_for(failure, attempt, _JITTER)
            log.warning("embeddings call failed, retrying in %.2fs: %s", delay, failure.describe())
            await asyncio.sleep(delay)
        raise provider_failure(failures)

    def _vectors(self, response: Any, expected: int) -> list[list[float]]:
        data = sorted(response.data or [], key=lambda item: item.index)
        if len(data) != expected:
            raise ValueError(f"the provider returned {len(data)} embeddings for {expected} inputs")
        vectors = []
        for item in data:
            vector = [float(value) for value in item.embedding]
            if len(vector) != self.dimensions:
                raise ValueError(
                    f"the provider returned {len(vector)} dimensions, the collection has "
                    f"{self.dimensions}; does the model support `dimensions`?"
                )
            if not all(math.isfinite(value) for value in vector):
                raise ValueError("the provider returned a vector with a non-finite value")
            vectors.append(vector)
        return vectors


@dataclass(frozen=True, slots=True)
class EmbeddingSpec:
    """A collection's embedding settings, fixed at its creation."""

    provider: str | None
    model: str
    dimensions: int


class Embedders:
    """Builds the embedder of a collection; `providers` is the app's `ProviderRegistry`
    (None: only offline collections can be served)."""

    def __init__(self, providers: ProviderRegistry | None) -> None:
        self.providers = providers

    async def for_spec(
        self, tenant_id: uuid.UUID, spec: EmbeddingSpec, *, field: str | None = None
    ) -> Embedder:
        """The embedder for `spec`. A provider connection that no longer exists is a 409 (a
        422 naming `field` when the caller is choosing the connection now)."""
        if spec.provider is None:
            return OfflineEmbedder(spec.dimensions, model=spec.model)
        if self.providers is None:
            raise Conflict("Provider-backed collections are not available in this process.")
        try:
            connection = await self.providers.resolve_connection(tenant_id, spec.provider)
        except InvalidInput:
            message = f"no provider connection named `{spec.provider}`"
            if field is not None:
                raise InvalidInput.field(field, message) from None
            raise Conflict(
                f"The collection embeds with provider `{spec.provider}`, which no longer "
                "exists; create a connection of that name again."
            ) from None
        if connection.kind == "offline":
            return OfflineEmbedder(spec.dimensions, model=spec.model)
        secrets = [connection.api_key or "", *(value for _, value in connection.headers)]
        return ProviderEmbedder(
            self.providers.client_for(connection),
            model=spec.model,
            dimensions=spec.dimensions,
            secrets=secrets,
        )
