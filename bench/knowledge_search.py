"""Knowledge search at scale: ingestion throughput, search latency and HNSW recall.

A generated corpus (at least `--chunks` chunks, 100,000 by default, in one collection with the
offline embedder at its default dimension and the default chunking) is ingested into a fresh
embedded Postgres in a temporary directory (deleted afterwards; nothing touches the
developer's data). Then, over generated queries:

1. ingestion: documents/s and chunks/s. The bulk goes through the functions the API and the
   worker use, called directly (`service.add_document` for a batch of documents in one
   transaction, then `ingestion.ingest_document` for each, two at a time as a worker runs its
   jobs): posting every document over HTTP and through the queue would only add overhead to a
   run that is already minutes long. A smaller sample (`--api-documents`) goes the whole way:
   `POST /v1/collections/{c}/documents` to a `promptlogic serve` process (which enqueues a job
   per document), then the queue's worker (`jobs.worker.run_worker`, in this process, draining
   the queue) until every document is `ready`; into a second collection of the same database,
   so the HNSW index already holds the bulk.
2. hybrid search (`service.search`: collection look-up, query embedding, the one SQL
   statement), p50/p99 over `--queries` queries, without a filter, with a filter on a third of
   the chunks and with one on a sixtieth (a topic); and the statement's full-text part alone
   (`hybrid_search` with a vector of zeros, which skips the vector lists).
3. the vector part alone (`hybrid_search` with a text query that matches no chunk, so the
   statement and its HNSW scan are the shipped ones and the full-text list is empty), and its
   recall@10 against exact search (the same statement ordered by `distance + 0`, which no
   index serves) over `--recall-queries` query vectors, at the search's `hnsw.ef_search`
   (`search.EF_SEARCH`, 400) and other values, each with its p50/p99.
   `as near` counts a hit as found when it is as near as the exact 10th (ties).

The table is VACUUM ANALYZEd after ingestion (as autovacuum would soon do); each measurement
is preceded by a few warm-up queries. Times are wall clock in this process, database included.
On 2 shared cores the full run takes 20 to 30 minutes: 8 ingesting (the HNSW inserts are
most of it), most of the rest in the exact scans (the truth). `--explain` prints the plans.

    .venv/bin/python bench/knowledge_search.py                  # 100,000 chunks, 20-30 minutes
    .venv/bin/python bench/knowledge_search.py --quick          # 5,000 chunks, a smoke run
    .venv/bin/python bench/knowledge_search.py --chunks 20000 --ef-search 100 400 --explain
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
from common import BENCH_SECRET, live_server, scratch_database
from sqlalchemy import func, select, text

from promptlogic.audit.service import OPERATOR
from promptlogic.db.engine import commit, create_engine, create_sessionmaker
from promptlogic.db.migrations import upgrade
from promptlogic.knowledge import service
from promptlogic.knowledge.embeddings import Embedders, OfflineEmbedder
from promptlogic.knowledge.ingestion import Sessionmaker, ingest_document
from promptlogic.knowledge.models import Document, vector_expression
from promptlogic.knowledge.schemas import CollectionCreate, DocumentIn
from promptlogic.knowledge.search import (
    SETTINGS_SQL,
    candidates_for,
    ef_search_for,
    filter_clauses,
    hybrid_search,
    parse_filter,
    search_sql,
)
from promptlogic.settings import Settings
from promptlogic.tenancy import service as tenancy

SEED = 20261128
VOCABULARY = 4000
TOPICS = 60
TOPIC_WORDS = 80
TOPIC_SHARE = 0.4  # of a document's words drawn from its topic's cluster
LANGS = ("en", "de", "fr")
NO_TEXT_MATCH = "zqxjvvkq"  # a word no generated chunk has: the full-text list stays empty
K = 10
CONCURRENCY = 2  # ingestions at a time, as a worker runs them (WorkerOptions.concurrency)


# The corpus ------------------------------------------------------------------------------


class Corpus:
    """Deterministic text: Zipf-distributed words of a generated vocabulary, each document
    about one topic (a cluster of mid-frequency words it uses much more than others)."""

    def __init__(self, seed: int = SEED) -> None:
        rng = random.Random(seed)  # noqa: S311 - generated text, not secrets
        syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
        words: list[str] = []
        seen: set[str] = set()
        while len(words) < VOCABULARY:
            word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
            if rng.random() < 0.3:
                word += rng.choice("nrsltm")
            if word not in seen:
                seen.add(word)
                words.append(word)
        self.words = words
        weights = 1.0 / np.arange(1, VOCABULARY + 1) ** 1.05
        self.global_cdf = np.cumsum(weights / weights.sum())
        topic_rng = np.random.default_rng(seed)
        self.topics = [
            topic_rng.choice(np.arange(200, VOCABULARY), size=TOPIC_WORDS, replace=False)
            for _ in range(TOPICS)
        ]
        topic_weights = 1.0 / np.arange(1, TOPIC_WORDS + 1)
        self.topic_cdf = np.cumsum(topic_weights / topic_weights.sum())
        self.seed = seed

    def _draw(self, rng: np.random.Generator, topic: int, count: int) -> list[str]:
        from_topic = rng.random(count) < TOPIC_SHARE
        globally = np.searchsorted(self.global_cdf, rng.random(count) * self.global_cdf[-1])
        ranks = np.searchsorted(self.topic_cdf, rng.random(count) * self.topic_cdf[-1])
        topical = self.topics[topic][ranks]
        chosen = np.where(from_topic, topical, globally)
        return [self.words[i] for i in chosen.tolist()]

    def document(self, number: int) -> tuple[str, dict[str, Any]]:
        """Document `number`: Markdown with a title and sections, and its metadata."""
        rng = np.random.default_rng([self.seed, number])
        topic = number % TOPICS
        # The outline first (heading: 0, else a paragraph's sentence lengths), then every word
        # in one draw: numpy is fast per array, slow per call.
        outline: list[int | list[int]] = []
        for _ in range(int(rng.integers(5, 10))):
            outline.append(0)
            for _ in range(int(rng.integers(3, 7))):
                outline.append(rng.integers(6, 19, size=int(rng.integers(3, 7))).tolist())
        needed = 3 + sum(2 if item == 0 else sum(item) for item in outline)  # type: ignore[arg-type]
        words = iter(self._draw(rng, topic, needed))

        def take(count: int) -> str:
            return " ".join(next(words) for _ in range(count))

        lines = [f"# {take(3).title()}", ""]
        for item in outline:
            if item == 0:
                lines += [f"## {take(2).title()}", ""]
            else:
                assert isinstance(item, list)
                lines += [" ".join(take(n).capitalize() + "." for n in item), ""]
        metadata = {  # drawn, not derived from `number`: independent of the topic
            "topic": f"t{topic:02d}",
            "lang": LANGS[int(rng.integers(len(LANGS)))],
            "year": 2019 + int(rng.integers(8)),
            "tier": "internal" if rng.random() < 0.1 else "public",
        }
        return "\n".join(lines), metadata

    def queries(self, count: int) -> list[tuple[str, int]]:
        """Questions of 2 to 5 words: mostly a topic's words, often with a common word."""
        rng = np.random.default_rng([self.seed, 1 << 30])
        found = []
        for _ in range(count):
            topic = int(rng.integers(TOPICS))
            ranks = np.searchsorted(self.topic_cdf, rng.random(int(rng.integers(2, 5))))
            picked = self.topics[topic][np.minimum(ranks, TOPIC_WORDS - 1)]
            words = list(dict.fromkeys(self.words[i] for i in picked.tolist()))
            if rng.random() < 0.5:
                words.insert(int(rng.integers(len(words) + 1)), self.words[int(rng.integers(50))])
            found.append((" ".join(words), topic))
        return found


# Measuring -------------------------------------------------------------------------------


def pct(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(samples_ms: Sequence[float]) -> str:
    return (
        f"p50 {pct(samples_ms, 0.50):7.2f} ms  p90 {pct(samples_ms, 0.90):7.2f} ms  "
        f"p99 {pct(samples_ms, 0.99):7.2f} ms  max {max(samples_ms):7.2f} ms"
    )


@dataclass
class Target:
    tenant_id: uuid.UUID
    collection_id: uuid.UUID
    name: str
    dimensions: int


async def ingest(
    sessionmaker: Sessionmaker, target: Target, corpus: Corpus, chunks: int, batch: int
) -> tuple[int, int, float]:
    """Add and ingest documents until the collection has `chunks` chunks; returns documents,
    chunks and the seconds spent in adding and ingesting (generating text is not counted)."""
    embedders = Embedders(None)
    slots = asyncio.Semaphore(CONCURRENCY)
    documents = total = 0
    spent = 0.0
    reported = time.monotonic()

    async def one(document_id: uuid.UUID) -> None:
        async with slots:
            status = await ingest_document(
                sessionmaker, embedders, target.tenant_id, target.collection_id, document_id
            )
        if status != "ready":
            raise RuntimeError(f"document {document_id} ended `{status}`")

    while total < chunks:
        bodies = []
        for number in range(documents, documents + batch):
            body_text, metadata = corpus.document(number)
            bodies.append(
                DocumentIn(
                    id=f"doc-{number:06d}", format="markdown", text=body_text, metadata=metadata
                )
            )
        started = time.perf_counter()
        async with sessionmaker() as session:
            added = [
                await service.add_document(
                    session,
                    tenant_id=target.tenant_id,
                    collection=target.name,
                    body=body,
                    actor=OPERATOR,
                )
                for body in bodies
            ]
            await commit(session)
        ids = [item.document.id for item in added]
        await asyncio.gather(*(one(document_id) for document_id in ids))
        spent += time.perf_counter() - started
        async with sessionmaker() as session:
            total += int(
                await session.scalar(
                    select(func.sum(Document.chunk_count)).where(Document.id.in_(ids))
                )
                or 0
            )
        documents += batch
        if time.monotonic() - reported > 30:
            reported = time.monotonic()
            print(f"  … {documents:,} documents, {total:,} chunks, {total / spent:,.0f} chunks/s")
    return documents, total, spent


async def through_api(
    settings: Settings, key: str, corpus: Corpus, documents: int
) -> tuple[int, float, float, list[float]]:
    """Post `documents` to a new collection over HTTP, then run a worker (the queue's, in this
    process) until every job has ended; returns the chunks, the seconds the posts took, the
    seconds until the last document was ready, and each POST's latency in ms."""
    from promptlogic.jobs.worker import WorkerOptions, run_worker

    name = "api-sample"
    headers = {"Authorization": f"Bearer {key}"}
    posted: list[float] = []
    queue = list(range(1_000_000, 1_000_000 + documents))
    bodies = {n: corpus.document(n) for n in queue}
    with live_server(settings) as (url, _process):
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
            response = await client.post("/v1/collections", json={"name": name})
            response.raise_for_status()

            async def poster() -> None:
                while queue:
                    number = queue.pop()
                    body_text, metadata = bodies[number]
                    started = time.perf_counter()
                    answer = await client.post(
                        f"/v1/collections/{name}/documents",
                        json={
                            "id": f"api-{number}",
                            "format": "markdown",
                            "text": body_text,
                            "metadata": metadata,
                        },
                    )
                    posted.append((time.perf_counter() - started) * 1000)
                    if answer.status_code != 202:
                        raise RuntimeError(f"POST answered {answer.status_code}: {answer.text}")

            started = time.perf_counter()
            await asyncio.gather(*(poster() for _ in range(4)))
            posting = time.perf_counter() - started
            engine = create_engine(settings)
            await run_worker(
                create_sessionmaker(engine),
                Embedders(None),
                settings.database_url or "",
                WorkerOptions(concurrency=CONCURRENCY, sweep=False),
                drain=True,
            )
            await engine.dispose()
            elapsed = time.perf_counter() - started
            state = (await client.get(f"/v1/collections/{name}")).json()
            if state["documents"] != documents or state["ingesting"] or state["failed"]:
                raise RuntimeError(f"not all documents are ready: {state}")
            return state["chunks"], posting, elapsed, posted


async def timed(
    sessionmaker: Sessionmaker,
    calls: Sequence[Callable[[Any], Awaitable[Any]]],
    *,
    warmup: int = 20,
) -> tuple[list[float], list[Any]]:
    """Each call in its own transaction (as a request has); returns its latency in ms (the
    call only, not BEGIN) and its result."""
    samples: list[float] = []
    results: list[Any] = []
    for index, call in enumerate([*calls[:warmup], *calls]):
        async with sessionmaker() as session, session.begin():
            started = time.perf_counter()
            result = await call(session)
            elapsed = (time.perf_counter() - started) * 1000
        if index >= min(warmup, len(calls)):
            samples.append(elapsed)
            results.append(result)
    return samples, results


def exact_sql(dimensions: int, filters: str) -> str:
    """The vector ordering of the search statement, served by no index: the truth."""
    distance = (
        f"{vector_expression(dimensions)} <=> "
        f"CAST(CAST(:query_vector AS text) AS vector({int(dimensions)}))"
    )
    return f"""
SELECT id, {distance} AS distance FROM knowledge_chunks
WHERE tenant_id = :tenant_id AND collection_id = :collection_id
    AND dimensions = {int(dimensions)}{filters}
ORDER BY ({distance}) + 0, id
LIMIT :k
"""  # noqa: S608 - only integers and fixed clauses are formatted in


async def explain(
    sessionmaker: Sessionmaker,
    target: Target,
    query: str,
    vector: Sequence[float],
    raw_filter: dict[str, Any] | None,
) -> None:
    """Print the plan, with times and buffers, of the search statement for one query."""
    clauses, params = filter_clauses(parse_filter(raw_filter, "filter"))
    statement = search_sql(target.dimensions, clauses, with_vector=True)
    async with sessionmaker() as session:
        ef_search = ef_search_for(candidates_for(K))  # the search's settings (a custom plan)
        await session.execute(text(SETTINGS_SQL), {"ef_search": str(ef_search)})
        rows = await session.execute(
            text(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {statement}"),
            {
                "tenant_id": target.tenant_id,
                "collection_id": target.collection_id,
                "query_text": query,
                "query_vector": literal(vector),
                "candidates": candidates_for(K),
                "k": K,
                **params,
            },
        )
        for (line,) in rows:  # the query vector makes some lines long
            print("    " + (line if len(line) <= 150 else line[:147] + "..."))


def literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(repr(float(v)) for v in vector) + "]"


async def main(args: argparse.Namespace) -> None:
    corpus = Corpus()
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)")
    with scratch_database() as url:
        settings = Settings(database_url=url, secret_key=BENCH_SECRET)  # type: ignore[arg-type]
        engine = create_engine(settings)
        await upgrade(engine)
        sessionmaker = create_sessionmaker(engine)
        async with sessionmaker() as session:
            tenant = await tenancy.create_tenant(session, slug="bench-knowledge", name="Bench")
            key = await tenancy.create_api_key(
                session, tenant_id=tenant.id, name="bench", scopes=["admin"], actor=OPERATOR
            )
            collection = await service.create_collection(
                session,
                tenant_id=tenant.id,
                body=CollectionCreate(name="corpus"),
                embedders=Embedders(None),
                actor=OPERATOR,
            )
            target = Target(tenant.id, collection.id, collection.name, collection.dimensions)
            shared_buffers = await session.scalar(text("SHOW shared_buffers"))
            await commit(session)
        print(
            f"collection `corpus`: offline embedder, {target.dimensions} dimensions, chunks of "
            f"{collection.chunk_max_tokens} tokens (overlap {collection.chunk_overlap_tokens}); "
            f"shared_buffers {shared_buffers}"
        )

        print(f"\n## Ingestion (service functions, {CONCURRENCY} documents at a time)")
        documents, chunks, spent = await ingest(
            sessionmaker, target, corpus, args.chunks, args.batch
        )
        print(
            f"{documents:,} documents, {chunks:,} chunks in {spent:,.1f} s: "
            f"{documents / spent:,.1f} documents/s, {chunks / spent:,.0f} chunks/s"
        )
        started = time.perf_counter()
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE knowledge_chunks"))
            sizes = (
                await autocommit.execute(
                    text(
                        "SELECT pg_size_pretty(pg_total_relation_size('knowledge_chunks')), "
                        "pg_size_pretty(pg_relation_size("
                        f"'ix_knowledge_chunks_hnsw_{target.dimensions}'))"
                    )
                )
            ).one()
        print(
            f"VACUUM ANALYZE {time.perf_counter() - started:.1f} s; chunks table with indexes "
            f"{sizes[0]}, HNSW index {sizes[1]}"
        )

        queries = corpus.queries(max(args.queries, args.recall_queries))
        embedder = OfflineEmbedder(target.dimensions)
        vectors = embedder.embed_now([query for query, _ in queries])
        filters: dict[str, Callable[[int], dict[str, Any] | None]] = {
            "none": lambda topic: None,
            "lang (1/3)": lambda topic: {"lang": "de"},
            f"topic (1/{TOPICS})": lambda topic: {"topic": f"t{topic:02d}"},
        }
        embedders = Embedders(None)

        print(f"\n## Hybrid search: service.search, k={K}, {args.queries} queries")
        for label, make_filter in filters.items():

            def hybrid(query: str, topic: int, make_filter: Any = make_filter) -> Any:
                return lambda session: service.search(
                    session,
                    tenant_id=target.tenant_id,
                    collection=target.name,
                    query=query,
                    k=K,
                    filter=make_filter(topic),
                    embedders=embedders,
                )

            calls = [hybrid(query, topic) for query, topic in queries[: args.queries]]
            samples, results = await timed(sessionmaker, calls)
            short = sum(len(hits) < K for hits in results)
            print(f"filter {label:14} {latency(samples)}  (fewer than {K} hits: {short})")

        def text_only(query: str) -> Any:  # a vector of zeros: the statement without its ANN
            return lambda session: hybrid_search(
                session,
                tenant_id=target.tenant_id,
                collection_id=target.collection_id,
                dimensions=target.dimensions,
                query_text=query,
                query_vector=[0.0] * target.dimensions,
                k=K,
            )

        calls = [text_only(query) for query, _ in queries[: args.queries]]
        samples, _ = await timed(sessionmaker, calls)
        print(f"full-text part alone, no filter: {latency(samples)}")

        print(
            f"\n## Vector search alone (HNSW) against exact, k={K}, {args.recall_queries} "
            "query vectors"
        )
        print(f"{'filter':14} {'ef_search':>9} {'recall@10':>9} {'as near':>8}  latency")
        for label, make_filter in filters.items():
            conditions = [parse_filter(make_filter(topic), "filter") for _, topic in queries]
            truth: list[tuple[set[uuid.UUID], float]] = []
            for vector, condition in zip(vectors[: args.recall_queries], conditions, strict=False):
                clauses, params = filter_clauses(condition)
                async with sessionmaker() as session:
                    rows = await session.execute(
                        text(exact_sql(target.dimensions, clauses)),
                        {
                            "tenant_id": target.tenant_id,
                            "collection_id": target.collection_id,
                            "query_vector": literal(vector),
                            "k": K,
                            **params,
                        },
                    )
                    found = rows.all()
                    truth.append(({row.id for row in found}, found[-1].distance))
            for ef in args.ef_search:

                def vector_only(vector: list[float], condition: Any, ef: int = ef) -> Any:
                    return lambda session: hybrid_search(
                        session,
                        tenant_id=target.tenant_id,
                        collection_id=target.collection_id,
                        dimensions=target.dimensions,
                        query_text=NO_TEXT_MATCH,
                        query_vector=vector,
                        k=K,
                        conditions=condition,
                        ef_search=ef,
                    )

                calls = [
                    vector_only(vector, condition)
                    for vector, condition in zip(
                        vectors[: args.recall_queries], conditions, strict=False
                    )
                ]
                samples, results = await timed(sessionmaker, calls)
                recall = statistics.fmean(
                    len({hit.id for hit in hits} & expected) / len(expected)
                    for hits, (expected, _) in zip(results, truth, strict=True)
                )
                as_near = statistics.fmean(  # ties: as near as the exact 10th counts as found
                    sum(1 - (hit.similarity or 0) <= tenth + 1e-6 for hit in hits) / K
                    for hits, (_, tenth) in zip(results, truth, strict=True)
                )
                default = " (default)" if ef == ef_search_for(candidates_for(K)) else ""
                print(
                    f"{label:14} {ef:>9} {recall:>9.3f} {as_near:>8.3f}  "
                    f"{latency(samples)}{default}"
                )
        if args.api_documents:
            print(
                f"\n## Ingestion through the API ({args.api_documents} documents posted by 4 "
                f"clients, then a worker drains the queue, {CONCURRENCY} jobs at a time)"
            )
            await upgrade(engine)  # the server wants head: a migration may have come meanwhile
            api_chunks, posting, api_spent, posted = await through_api(
                settings, key.plaintext, corpus, args.api_documents
            )
            print(
                f"{args.api_documents} documents, {api_chunks:,} chunks ready in "
                f"{api_spent:.1f} s: {args.api_documents / api_spent:,.1f} documents/s, "
                f"{api_chunks / api_spent:,.0f} chunks/s (the posts took {posting:.1f} s)\n"
                f"POST (202) {latency(posted)}"
            )

        if args.explain:
            for label, make_filter in filters.items():
                query, topic = queries[0]
                for shown in (query, NO_TEXT_MATCH):
                    print(f"\n## EXPLAIN: query {shown!r}, filter {label}")
                    await explain(sessionmaker, target, shown, vectors[0], make_filter(topic))
        await engine.dispose()
    load = os.getloadavg()
    print(f"\nload average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000, help="at least this many")
    parser.add_argument("--batch", type=int, default=50, help="documents added per transaction")
    parser.add_argument("--queries", type=int, default=200, help="for hybrid search latency")
    parser.add_argument("--recall-queries", type=int, default=200)
    parser.add_argument("--api-documents", type=int, default=100)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[100, 200, 400, 600])
    parser.add_argument("--explain", action="store_true", help="print the plans of one query")
    parser.add_argument("--quick", action="store_true", help="5,000 chunks, fewer queries")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.chunks, arguments.queries, arguments.recall_queries = 5_000, 100, 100
        arguments.api_documents = 20
    asyncio.run(main(arguments))
