"""Hybrid search: vector similarity and full-text ranking, fused in one SQL statement.

Both lists are taken inside the database, each with the tenant, collection and metadata filter
in its own WHERE clause (never filtered afterwards, so k results come back whenever k chunks
match), and fused with reciprocal rank fusion: score = 1/(60 + vector rank) + 1/(60 + text
rank), a missing rank adding nothing.

The vector list uses the HNSW index of the collection's dimension: the statement repeats the
index's expression (`embedding::vector(N)`) and predicate (`dimensions = N`) as literals, so
the planner can match it. An approximate index scan returns `hnsw.ef_search` candidates (500
here, pgvector's default 40 finds only about half of the true ten nearest on hashed vectors)
and filters only those (pgvector 0.6 has no iterative scan): when a selective filter, or a
small collection among large ones, leaves fewer than the list needs, the same statement falls
back to an exact scan of the matching rows (cheap precisely because few rows match). The
fallback is gated by a one-time filter, so it is never executed when the index answered; the
statement runs without parallel workers, which Postgres would otherwise start for the
fallback's plan even when it is not executed (5 ms a search).

The full-text list ranks first the chunks that hold every word of a plain query, and only when
fewer than the list needs do, the chunks that hold any of them (a question's words are rarely
all in one chunk). That fallback ranks at most the first `ANY_WORD_SCAN` chunks it finds, in
storage order: with a common word, ranking every chunk that shares it read tens of thousands of
rows and took up to a second; the vector list still ranks the whole collection. A query with
web search syntax (quotes, `or`, `-word`) is taken as written.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import regex
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.errors import InvalidInput
from promptlogic.knowledge.models import TEXT_SEARCH_CONFIG, vector_expression

RRF_K = 60
MIN_CANDIDATES = 40  # per list
ANY_WORD_SCAN = 1_000  # chunks the any-word fallback ranks at most (see the module's docstring)
EF_SEARCH = 500  # recall@10 0.956 at 100,000 chunks, p50 7 / p99 15 ms (bench/knowledge_search.py)


@dataclass(frozen=True, slots=True)
class Hit:
    """One chunk found by a search, with how each ranking placed it."""

    id: uuid.UUID
    document_id: str
    chunk_index: int
    heading: str
    text: str
    score: float
    vector_rank: int | None
    text_rank: int | None
    similarity: float | None  # cosine similarity to the query, when in the vector list
    metadata: dict[str, Any]


MAX_FILTER_KEYS = 16
MAX_IN_VALUES = 100
MAX_FILTER_KEY_CHARS = 100
MAX_FILTER_STRING_CHARS = 500
Condition = list[dict[str, Any]]  # JSON documents, one of which the metadata must contain


def parse_filter(raw: Any, field: str) -> list[Condition]:
    """Metadata conditions from a filter: `{"key": value}`, `{"key": {"$in": [...]}}` or
    `{"key": {"$contains": value}}`; 422 naming `field.key` for anything else."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise InvalidInput.field(field, "must be an object of metadata conditions")
    if len(raw) > MAX_FILTER_KEYS:
        raise InvalidInput.field(field, f"at most {MAX_FILTER_KEYS} keys")
    conditions = []
    for key, value in raw.items():
        where = f"{field}.{key}"
        if not isinstance(key, str) or not 0 < len(key) <= MAX_FILTER_KEY_CHARS:
            raise InvalidInput.field(where, f"keys have 1 to {MAX_FILTER_KEY_CHARS} characters")
        if key.startswith("$"):
            raise InvalidInput.field(where, 'operators go inside a key: {key: {"$in": [...]}}')
        if isinstance(value, dict):
            conditions.append(_operator(key, value, where))
        else:
            conditions.append([{key: _scalar(value, where)}])
    return conditions


def _operator(key: str, value: dict[str, Any], where: str) -> Condition:
    if len(value) != 1:
        raise InvalidInput.field(where, "one operator per key: `$in` or `$contains`")
    ((operator, operand),) = value.items()
    if operator == "$in":
        if not isinstance(operand, list) or not 0 < len(operand) <= MAX_IN_VALUES:
            raise InvalidInput.field(f"{where}.$in", f"a list of 1 to {MAX_IN_VALUES} values")
        return [{key: _scalar(item, f"{where}.$in")} for item in operand]
    if operator == "$contains":
        return [{key: [_scalar(operand, f"{where}.$contains")]}]
    raise InvalidInput.field(where, f"unknown operator `{operator}`; use `$in` or `$contains`")


def _scalar(value: Any, where: str) -> Any:
    """A string, number, boolean or null (what equality on JSON metadata can compare)."""
    if isinstance(value, str):
        if len(value) > MAX_FILTER_STRING_CHARS:
            raise InvalidInput.field(where, f"at most {MAX_FILTER_STRING_CHARS} characters")
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput.field(where, "must be a finite number")
    if value is None or isinstance(value, bool | int | float):
        return value
    raise InvalidInput.field(where, "must be a string, number, boolean or null")


def candidates_for(k: int) -> int:
    return max(MIN_CANDIDATES, k)


def filter_clauses(conditions: Sequence[Sequence[Mapping[str, Any]]]) -> tuple[str, dict[str, str]]:
    """SQL and parameters for metadata conditions: each is a list of JSON documents one of
    which the chunk's metadata must contain (`@>`, served by the GIN index)."""
    clauses: list[str] = []
    params: dict[str, str] = {}
    for i, alternatives in enumerate(conditions):
        parts = []
        for j, document in enumerate(alternatives):
            name = f"filter_{i}_{j}"
            params[name] = json.dumps(document, separators=(",", ":"))
            parts.append(f"metadata @> CAST(:{name} AS jsonb)")
        clauses.append(f" AND ({' OR '.join(parts)})")
    return "".join(clauses), params


_OPERATORS = regex.compile(r'"|(?:^|\s)-\S|(?i:(?:^|\s)or(?:\s|$))')


def uses_operators(query: str) -> bool:
    """Whether a query uses web search syntax: "a phrase", `or`, or -excluded words."""
    return _OPERATORS.search(query) is not None


# For the search's transaction only. A plan made for any parameter values (Postgres' generic
# plan, which it may pick after five runs of a prepared statement) knows neither the LIMIT nor
# how many rows a filter keeps, and skips the HNSW index for an exact scan: 200 ms without a
# filter, 500 ms with one keeping a third of the chunks. Planning each search costs about 1 ms.
SETTINGS_SQL = (
    "SELECT set_config('hnsw.ef_search', :ef_search, true), "
    "set_config('max_parallel_workers_per_gather', '0', true), "
    "set_config('plan_cache_mode', 'force_custom_plan', true)"
)


def ef_search_for(candidates: int) -> int:
    """The HNSW candidate list: at least `EF_SEARCH`, and never fewer than the list needs."""
    return max(EF_SEARCH, candidates)


def _websearch(query: str) -> str:
    return f"websearch_to_tsquery('{TEXT_SEARCH_CONFIG}', {query})"


def _any_word(tsquery: str) -> str:
    return f"CAST(replace(CAST({tsquery} AS text), ' & ', ' | ') AS tsquery)"


def _text_lists(scope: str, *, as_written: bool) -> str:
    """The CTEs ending in `text_hits` (id, rank): every word first, then any word (see above);
    a query with web search syntax in one list, as written."""
    every_word = _websearch(":query_text")
    ranked = """
        SELECT id, ts_rank_cd(tsv, query) AS text_score, {tier} AS tier
        FROM knowledge_chunks, {query} AS query
        WHERE {scope} AND tsv @@ query{extra}
        ORDER BY text_score DESC, id
        LIMIT :candidates"""
    first = ranked.format(tier=0, query=every_word, scope=scope, extra="")
    if as_written:
        second = "SELECT NULL::uuid, NULL::real, 1 WHERE false"
    else:
        any_word = _any_word(every_word)
        second = f"""
        SELECT id, ts_rank_cd(tsv, query) AS text_score, 1 AS tier
        FROM (
            SELECT id, tsv FROM knowledge_chunks, {any_word} AS query
            WHERE {scope} AND tsv @@ query AND NOT tsv @@ {every_word}
                AND (SELECT count(*) FROM text_every) < :candidates
            LIMIT {ANY_WORD_SCAN}
        ) AS sample, {any_word} AS query
        ORDER BY text_score DESC, id
        LIMIT :candidates"""  # noqa: S608 - only fixed clauses and integers; values are bound
    return f"""
    text_every AS MATERIALIZED ({first}
    ),
    text_any AS MATERIALIZED ({second}
    ),
    text_hits AS (
        SELECT id, row_number() OVER (ORDER BY tier, text_score DESC, id) AS rank
        FROM (SELECT * FROM text_every UNION ALL SELECT * FROM text_any) AS matched
        ORDER BY tier, text_score DESC, id
        LIMIT :candidates
    ),"""  # noqa: S608 - as above


def search_sql(dimensions: int, filters: str, *, with_vector: bool, any_word: bool = True) -> str:
    """The hybrid statement for a collection of `dimensions` (a literal: the index's predicate
    must be visible to the planner) and the metadata `filters` clause."""
    scope = (
        "tenant_id = :tenant_id AND collection_id = :collection_id "
        f"AND dimensions = {int(dimensions)}{filters}"
    )
    query_vector = f"CAST(CAST(:query_vector AS text) AS vector({int(dimensions)}))"
    distance = f"{vector_expression(dimensions)} <=> {query_vector}"
    if with_vector:
        vector_lists = f"""
    ann AS MATERIALIZED (
        SELECT id, {distance} AS distance
        FROM knowledge_chunks
        WHERE {scope}
        ORDER BY {distance}
        LIMIT :candidates
    ),
    exact AS MATERIALIZED (
        SELECT id, {distance} AS distance
        FROM knowledge_chunks
        WHERE {scope} AND (SELECT count(*) FROM ann) < :candidates
        ORDER BY ({distance}) + 0
        LIMIT :candidates
    ),
    vector_hits AS (
        SELECT id, distance, row_number() OVER (ORDER BY distance, id) AS rank
        FROM (
            SELECT id, distance FROM ann WHERE (SELECT count(*) FROM ann) >= :candidates
            UNION ALL
            SELECT id, distance FROM exact
        ) AS found
        WHERE distance <> 'NaN'::float8
    ),"""  # noqa: S608 - only integers and fixed clauses are formatted in; values are bound
    else:  # a query without anything to embed: full text only
        vector_lists = """
    vector_hits AS (
        SELECT NULL::uuid AS id, NULL::float8 AS distance, NULL::bigint AS rank WHERE false
    ),"""
    return f"""
WITH {vector_lists}{_text_lists(scope, as_written=not any_word)}
    fused AS (
        SELECT coalesce(v.id, t.id) AS id, v.rank AS vector_rank, t.rank AS text_rank,
            v.distance,
            coalesce(1.0::float8 / ({RRF_K} + v.rank), 0)
                + coalesce(1.0::float8 / ({RRF_K} + t.rank), 0) AS score
        FROM vector_hits AS v FULL JOIN text_hits AS t ON t.id = v.id
    )
SELECT f.id, d.external_id, c.chunk_index, c.heading, c.text, f.score, f.vector_rank,
    f.text_rank, f.distance, c.metadata
FROM fused AS f
JOIN knowledge_chunks AS c ON c.id = f.id AND c.tenant_id = :tenant_id
JOIN knowledge_documents AS d ON d.id = c.document_id AND d.tenant_id = :tenant_id
ORDER BY f.score DESC, f.vector_rank NULLS LAST, f.text_rank NULLS LAST, f.id
LIMIT :k
"""  # noqa: S608 - as above


async def hybrid_search(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    collection_id: uuid.UUID,
    dimensions: int,
    query_text: str,
    query_vector: Sequence[float],
    k: int,
    conditions: Sequence[Sequence[Mapping[str, Any]]] = (),
    ef_search: int | None = None,
) -> list[Hit]:
    """The k best chunks of a collection for a query and its embedding; `ef_search` replaces
    `ef_search_for(k)` (benchmarks measure recall with it)."""
    candidates = candidates_for(k)
    filters, params = filter_clauses(conditions)
    ef_search = ef_search or ef_search_for(candidates)
    await session.execute(text(SETTINGS_SQL), {"ef_search": str(ef_search)})
    with_vector = any(value != 0 for value in query_vector)
    statement = search_sql(
        dimensions, filters, with_vector=with_vector, any_word=not uses_operators(query_text)
    )
    values: dict[str, Any] = {
        "tenant_id": tenant_id,
        "collection_id": collection_id,
        "query_text": query_text,
        "candidates": candidates,
        "k": k,
        **params,
    }
    if with_vector:
        values["query_vector"] = "[" + ",".join(repr(float(v)) for v in query_vector) + "]"
    rows = (await session.execute(text(statement), values)).all()
    return [
        Hit(
            id=row.id,
            document_id=row.external_id,
            chunk_index=row.chunk_index,
            heading=row.heading,
            text=row.text,
            score=float(row.score),
            vector_rank=row.vector_rank,
            text_rank=row.text_rank,
            similarity=_similarity(row.distance),
            metadata=row.metadata,
        )
        for row in rows
    ]


def _similarity(distance: float | None) -> float | None:
    if distance is None or math.isnan(distance):
        return None
    return 1.0 - float(distance)
