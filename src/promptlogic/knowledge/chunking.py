"""Splitting a document into chunks: pure functions, no I/O.

A Markdown document is cut at its headings first, so a chunk never spans two sections and
carries its heading path ("Refunds > Exceptions"). Inside a section, whole paragraphs are
packed into chunks of at most `max_tokens`; only a paragraph larger than that is split, at
sentences, then at words, then between grapheme clusters (CJK text without spaces, a giant
token), so no character, emoji or combining mark is ever cut in half. Consecutive chunks of a
section overlap by up to `overlap_tokens` taken from the end of the previous chunk.

Tokens are counted with the offline provider's counter, so chunk sizes agree with the token
counts the run path reports; it is an estimate (about four characters a token), which suits
English and overestimates nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import regex

from promptlogic.providers.offline import count_tokens

Format = Literal["text", "markdown", "pdf"]  # PDF text is chunked as plain text
Counter = Callable[[str], int]

DEFAULT_MAX_TOKENS = 400
DEFAULT_OVERLAP_TOKENS = 50
HEADING_SEPARATOR = " > "
MAX_HEADING_CHARS = 500

_ATX_HEADING = regex.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT_UNDERLINE = regex.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = regex.compile(r"^ {0,3}(`{3,}|~{3,})")
# Each level cuts after its separator, so the pieces put back together are the text itself.
_PARAGRAPH_BREAK = regex.compile(r"\n[ \t]*\n\s*")
_SENTENCE_BREAK = regex.compile(
    r"(?<=[.!?\u2026][\"'\u201d\u2019)\]]*)\s+"  # after a full stop and closing quotes
    r"|(?<=[\u3002\uff01\uff1f\uff1b])"  # after CJK full stops, which need no space
    r"|\n\s*"  # at a line break (lists, code, poems)
)
_WORD_BREAK = regex.compile(r"\s+")
_GRAPHEME = regex.compile(r"\X")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a document, as stored and embedded."""

    index: int
    text: str
    heading: str  # the heading path, "" outside any heading
    token_count: int

    @property
    def embedding_text(self) -> str:
        """What gets embedded: the heading path gives a chunk the context of its section."""
        return f"{self.heading}\n\n{self.text}" if self.heading else self.text


@dataclass(frozen=True, slots=True)
class Section:
    path: tuple[str, ...]
    body: str


def chunk_document(
    text: str,
    *,
    format: Format = "text",
    max_tokens: int = DEFAULT_MAX_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
    counter: Counter = count_tokens,
) -> list[Chunk]:
    """The chunks of `text`, in order; none for a document without text (or only headings)."""
    if max_tokens < 1 or not 0 <= overlap_tokens <= max_tokens // 2:
        raise ValueError("need max_tokens >= 1 and 0 <= overlap_tokens <= max_tokens / 2")
    chunks: list[Chunk] = []
    for section in sections(text, format):
        heading = heading_path(section.path)
        for piece in pack(
            split_units(section.body, max_tokens, counter), max_tokens, overlap_tokens, counter
        ):
            chunks.append(Chunk(len(chunks), piece, heading, counter(piece)))
    return chunks


def heading_path(path: tuple[str, ...]) -> str:
    joined = HEADING_SEPARATOR.join(part for part in path if part)
    return joined if len(joined) <= MAX_HEADING_CHARS else joined[: MAX_HEADING_CHARS - 1] + "…"


def sections(text: str, format: Format) -> list[Section]:
    """The document cut at its headings (Markdown only), with the path of headings above each
    part; parts without any text are left out."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if format != "markdown":
        return [Section((), text)] if text.strip() else []
    found: list[Section] = []
    path: list[tuple[int, str]] = []  # (level, title) of the open headings
    body: list[str] = []
    fence: str | None = None

    def close() -> None:
        if "".join(body).strip():
            found.append(Section(tuple(title for _, title in path), "\n".join(body)))
        body.clear()

    def open_heading(level: int, title: str) -> None:
        close()
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, " ".join(title.split())))

    for line in text.split("\n"):
        opener = _FENCE.match(line)
        if fence is not None:
            body.append(line)
            if opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence):
                fence = None
            continue
        if opener:
            fence = opener.group(1)
            body.append(line)
            continue
        atx = _ATX_HEADING.match(line)
        if atx:
            open_heading(len(atx.group(1)), atx.group(2) or "")
            continue
        underline = _SETEXT_UNDERLINE.match(line)
        if underline and _starts_paragraph(body):
            title = body.pop()
            open_heading(1 if underline.group(1)[0] == "=" else 2, title)
            continue
        body.append(line)
    close()
    return found


def _starts_paragraph(body: list[str]) -> bool:
    """A setext underline makes a heading of a one-line paragraph only."""
    return bool(body) and bool(body[-1].strip()) and (len(body) == 1 or not body[-2].strip())


def split_units(text: str, max_tokens: int, counter: Counter = count_tokens) -> list[str]:
    """`text` cut into pieces of at most `max_tokens` each, at the coarsest boundary that
    makes each piece fit: paragraphs, then sentences, then words, then grapheme clusters.
    Joined together, the pieces are `text` again."""
    return list(_units(text, 0, max_tokens, counter))


_LEVELS = (_PARAGRAPH_BREAK, _SENTENCE_BREAK, _WORD_BREAK)


def _units(text: str, level: int, max_tokens: int, counter: Counter) -> Iterator[str]:
    if level == len(_LEVELS):
        yield from _grapheme_groups(text, max_tokens, counter)
        return
    for piece in _split_after(_LEVELS[level], text):
        if counter(piece.strip()) <= max_tokens:
            yield piece
        else:
            yield from _units(piece, level + 1, max_tokens, counter)


def _split_after(pattern: regex.Pattern[str], text: str) -> list[str]:
    """`text` cut after each match of `pattern`, each piece keeping its separator."""
    pieces: list[str] = []
    start = 0
    for match in pattern.finditer(text):
        if match.end() > start:
            pieces.append(text[start : match.end()])
            start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def _grapheme_groups(text: str, max_tokens: int, counter: Counter) -> Iterator[str]:
    """Runs of whole grapheme clusters, each as long as fits."""
    current = ""
    for grapheme in _GRAPHEME.findall(text):
        if current and counter((current + grapheme).strip()) > max_tokens:
            yield current
            current = ""
        current += grapheme
    if current:
        yield current


def pack(
    units: list[str], max_tokens: int, overlap_tokens: int, counter: Counter = count_tokens
) -> list[str]:
    """Greedily fill chunks with whole units; each chunk after the first starts with the tail
    of the one before (at most `overlap_tokens`)."""
    chunks: list[str] = []
    current = ""  # text of the chunk being filled, overlap included
    fresh = False  # whether `current` holds any unit of its own yet
    for unit in units:
        candidate = current + unit
        if fresh and counter(candidate.strip()) > max_tokens:
            chunks.append(current.strip())
            current = _tail(current.strip(), overlap_tokens, counter)
            if current:
                current += " "
            candidate = current + unit
            if counter(candidate.strip()) > max_tokens:  # no room for the overlap as well
                candidate = unit
        current = candidate
        fresh = True
    if fresh and current.strip():
        chunks.append(current.strip())
    return [chunk for chunk in chunks if chunk]


def _tail(text: str, budget: int, counter: Counter) -> str:
    """The end of `text` within `budget` tokens, starting at a word (or, in text without
    spaces, at a grapheme cluster)."""
    if budget <= 0:
        return ""
    words = _split_after(_WORD_BREAK, text)
    taken = ""
    for word in reversed(words):
        if counter((word + taken).strip()) > budget:
            if taken:
                break
            graphemes = _GRAPHEME.findall(word.rstrip())
            for grapheme in reversed(graphemes):
                if counter(grapheme + taken) > budget:
                    break
                taken = grapheme + taken
            break
        taken = word + taken
    return taken.strip()
