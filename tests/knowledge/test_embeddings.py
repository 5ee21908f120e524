"""The offline embedder: deterministic, normalized, lexical."""

from __future__ import annotations

import hashlib
import json
import math

from promptlogic.knowledge.embeddings import OfflineEmbedder, offline_vector, tokens


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_vectors_are_deterministic_unit_vectors_of_the_asked_size() -> None:
    first = offline_vector("Refunds take ten days.", 384)

    assert first == offline_vector("Refunds take ten days.", 384)
    assert len(first) == 384
    assert math.isclose(math.sqrt(sum(v * v for v in first)), 1.0, rel_tol=1e-9)
    assert len(offline_vector("Refunds take ten days.", 256)) == 256


def test_known_values_do_not_drift() -> None:
    """Stored vectors must stay comparable with new queries: a change to the features needs a
    new model name (and re-embedding), never a silent change of this one."""
    vector = offline_vector("Refunds take ten days.", 256)

    rounded = json.dumps([round(v, 6) for v in vector]).encode()
    assert hashlib.sha256(rounded).hexdigest() == (
        "ac742305fd44b90645c10d10fb9ff3ad3ce46f296a4648e711739af9185e5860"
    )


def test_case_accents_and_composition_do_not_matter() -> None:
    composed = offline_vector("Café crème", 256)

    assert composed == offline_vector("CAFE CREME", 256)
    assert composed == offline_vector("cafe\u0301 cre\u0300me", 256)


def test_tokens_split_cjk_into_characters_and_keep_emoji() -> None:
    assert tokens("Hello, 世界! 👍 naïve") == ["hello", "世", "界", "👍", "naive"]


def test_lexical_overlap_is_what_it_measures() -> None:
    query = offline_vector("refund policy for damaged items", 384)
    same_words = offline_vector("Our refund policy covers damaged items too", 384)
    typo = offline_vector("refnd polcy", 384)
    unrelated = offline_vector("shipping times to Canada", 384)
    synonym = offline_vector("money back guarantee", 384)

    assert cosine(query, same_words) > 0.5
    assert cosine(query, typo) > cosine(query, unrelated)
    assert abs(cosine(query, synonym)) < 0.2  # no semantics: synonyms are strangers


def test_text_without_words_has_a_zero_vector() -> None:
    assert offline_vector("!!! ... ---", 256) == [0.0] * 256


async def test_the_embedder_embeds_in_order_inline_or_in_a_thread() -> None:
    embedder = OfflineEmbedder(256)
    texts = ["alpha", "beta " * 2000, "gamma"]  # enough text to go to a thread

    vectors = await embedder.embed(texts)

    assert vectors == [offline_vector(text, 256) for text in texts]
    assert embedder.model == "offline-hash-v1"
