"""Chunking: sections at headings, paragraphs kept whole, sizes in tokens, overlap, Unicode."""

from __future__ import annotations

import itertools
import unicodedata

import pytest
import regex

from promptlogic.knowledge.chunking import chunk_document, sections, split_units
from promptlogic.providers.offline import count_tokens

POLICY = """# Refunds

We refund unused items within 30 days of delivery.

Refunds go back to the original payment method.

## Exceptions

Sale items are final.

### Gift cards

Gift cards cannot be refunded.

# Shipping

We ship to the EU and the UK.
"""


def words_of(text: str) -> list[str]:
    return text.split()


def overlap(before: str, after: str) -> str:
    """The longest start of `after` that `before` ends with."""
    for size in range(min(len(before), len(after)), 0, -1):
        if before.endswith(after[:size]):
            return after[:size]
    return ""


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t\n"])
@pytest.mark.parametrize("format", ["text", "markdown"])
def test_an_empty_document_has_no_chunks(text: str, format: str) -> None:
    assert chunk_document(text, format=format) == []  # type: ignore[arg-type]


def test_a_document_of_headings_only_has_no_chunks() -> None:
    assert chunk_document("# Refunds\n## Exceptions\n\n### Gift cards\n", format="markdown") == []


def test_markdown_is_cut_at_headings_and_each_chunk_carries_its_heading_path() -> None:
    chunks = chunk_document(POLICY, format="markdown")

    assert [(c.heading, c.text) for c in chunks] == [
        (
            "Refunds",
            "We refund unused items within 30 days of delivery.\n\n"
            "Refunds go back to the original payment method.",
        ),
        ("Refunds > Exceptions", "Sale items are final."),
        ("Refunds > Exceptions > Gift cards", "Gift cards cannot be refunded."),
        ("Shipping", "We ship to the EU and the UK."),
    ]
    assert [c.index for c in chunks] == [0, 1, 2, 3]
    assert chunks[1].embedding_text == "Refunds > Exceptions\n\nSale items are final."
    assert all(c.token_count == count_tokens(c.text) for c in chunks)


def test_plain_text_keeps_hashes_as_text() -> None:
    (chunk,) = chunk_document(POLICY, format="text")

    assert chunk.heading == ""
    assert chunk.text == POLICY.strip()


def test_setext_headings_fenced_code_and_crlf() -> None:
    text = (
        "Returns\r\n=======\r\n\r\nSend it back.\r\n\r\nDetails\r\n-------\r\n"
        "```\r\n# not a heading\r\n```\r\n"
    )

    found = sections(text, "markdown")

    assert [(s.path, s.body.strip()) for s in found] == [
        (("Returns",), "Send it back."),
        (("Returns", "Details"), "```\n# not a heading\n```"),
    ]


def test_a_thematic_break_under_a_blank_line_is_not_a_heading() -> None:
    found = sections("# Notes\n\nFirst part.\n\n---\n\nSecond part.\n", "markdown")

    assert len(found) == 1
    assert "---" in found[0].body


def test_paragraphs_that_fit_are_never_split_and_chunks_respect_the_size() -> None:
    paragraphs = [f"Paragraph {i}. " + "Some words here. " * (5 + i % 7) for i in range(40)]
    text = "\n\n".join(p.strip() for p in paragraphs)

    chunks = chunk_document(text, max_tokens=120, overlap_tokens=0)

    assert len(chunks) > 5
    assert all(c.token_count <= 120 for c in chunks)
    for paragraph in paragraphs:
        assert any(paragraph.strip() in c.text for c in chunks), paragraph
    assert words_of(" ".join(c.text for c in chunks)) == words_of(text)  # nothing lost


def test_one_huge_paragraph_is_split_at_sentences_with_overlap() -> None:
    sentences = [f"Sentence number {i} talks about refunds." for i in range(300)]
    text = " ".join(sentences)

    chunks = chunk_document(text, max_tokens=100, overlap_tokens=20)

    assert len(chunks) > 10
    assert all(c.token_count <= 100 for c in chunks)
    for before, after in itertools.pairwise(chunks):
        shared = overlap(before.text, after.text)
        assert shared, "each later chunk starts with the previous chunk's tail"
        assert 10 <= count_tokens(shared) <= 20
    # every sentence is whole in some chunk
    for sentence in sentences:
        assert any(sentence in c.text for c in chunks), sentence


def test_a_huge_run_of_words_without_punctuation_is_split_at_words() -> None:
    text = " ".join(f"word{i}" for i in range(3000))

    chunks = chunk_document(text, max_tokens=50, overlap_tokens=0)

    assert all(c.token_count <= 50 for c in chunks)
    assert words_of(" ".join(c.text for c in chunks)) == words_of(text)


def test_without_overlap_nothing_is_repeated() -> None:
    text = " ".join(f"w{i}" for i in range(2000))

    chunks = chunk_document(text, max_tokens=60, overlap_tokens=0)

    joined = words_of(" ".join(c.text for c in chunks))
    assert len(joined) == len(set(joined)) == 2000


def _whole_graphemes(chunks: list[str]) -> None:
    for text in chunks:
        first = text[0]
        assert unicodedata.combining(first) == 0, f"starts with a combining mark: {text[:5]!r}"
        assert first not in "\u200d\ufe0f", f"starts inside an emoji sequence: {text[:5]!r}"
        assert not 0x1F3FB <= ord(first) <= 0x1F3FF, f"starts with a skin tone: {text[:5]!r}"
        assert text[-1] != "\u200d", f"ends inside an emoji sequence: {text[-5:]!r}"


def test_cjk_without_spaces_is_split_at_its_full_stops() -> None:
    sentence = "退款将在三十天内退回原支付方式。"
    text = sentence * 200

    chunks = chunk_document(text, max_tokens=40, overlap_tokens=8)

    assert all(c.token_count <= 40 for c in chunks)
    assert all(sentence in c.text for c in chunks)  # whole sentences, plus overlap
    assert "".join(c.text for c in chunk_document(text, max_tokens=40, overlap_tokens=0)) == text


def test_giant_tokens_are_split_between_grapheme_clusters_only() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji of five code points
    thumbs = "\U0001f44d\U0001f3fd"  # thumbs up, medium skin tone
    accented = "e\u0301"  # e + combining acute accent
    text = (family + thumbs + accented) * 400  # no space, no sentence end

    pieces = split_units(text, 25)
    chunks = chunk_document(text, max_tokens=25, overlap_tokens=5)

    assert "".join(pieces) == text
    assert all(count_tokens(p) <= 25 for p in pieces)
    _whole_graphemes(pieces)
    _whole_graphemes([c.text for c in chunks])
    assert all(c.token_count <= 25 for c in chunks)
    graphemes = regex.findall(r"\X", "".join(pieces))
    assert set(graphemes) == {family, thumbs, accented}


def test_split_units_puts_the_text_back_together() -> None:
    text = POLICY * 20 + "\n\n" + "x" * 5000 + "\n\n" + "naïve café déjà vu. " * 100

    assert "".join(split_units(text, 64)) == text


@pytest.mark.parametrize(("max_tokens", "overlap"), [(0, 0), (100, 51), (100, -1)])
def test_impossible_sizes_are_refused(max_tokens: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        chunk_document("text", max_tokens=max_tokens, overlap_tokens=overlap)
