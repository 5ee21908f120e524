"""The ingestion queue: jobs enqueued with their document, run by a worker in this process or
by `promptlogic worker` subprocesses that are killed, restarted and stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from promptlogic.jobs.worker import WorkerOptions, run_worker
from promptlogic.knowledge.embeddings import Embedders
from tests.conftest import TEST_SECRET
from tests.fakes import FakeOpenAI
from tests.fakes.openai_server import Reply
from tests.knowledge.support import add_document, make_collection

LONG = " ".join(f"Sentence {i} of the long manual." for i in range(1200))


async def jobs(session) -> list[dict[str, Any]]:
    rows = await session.execute(
        text("SELECT status::text AS status, dedupe_key FROM pgqueuer.pgqueuer ORDER BY id")
    )
    await session.rollback()
    return [dict(row._mapping) for row in rows]


async def clear_queue(session) -> None:
    await session.execute(text("DELETE FROM pgqueuer.pgqueuer"))
    await session.commit()


async def document(client: httpx.AsyncClient, headers: dict[str, str], name: str) -> dict:
    response = await client.get(f"/v1/collections/kb/documents/{name}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def drain(app) -> None:
    await run_worker(
        app.state.sessionmaker,
        Embedders(app.state.providers),
        app.state.settings.database_url,
        WorkerOptions(sweep=False),
        drain=True,
    )


@pytest.fixture
async def empty_queue(session) -> None:
    """No job left by another test (the queue's schema is not among the truncated tables)."""
    await clear_queue(session)


async def test_a_document_added_through_the_api_is_queued_and_ingested_by_a_worker(
    app, client, admin, session, empty_queue
):
    await make_collection(client, admin.headers, "kb")
    added = await add_document(client, admin.headers, "kb", "faq", "Refunds take ten days.")
    assert added["status"] == "pending"
    [job] = await jobs(session)
    assert job["status"] == "queued"
    assert job["dedupe_key"].startswith("ingest:")
    assert job["dedupe_key"].endswith(":1")  # the document's generation

    await drain(app)

    assert (await document(client, admin.headers, "faq"))["status"] == "ready"
    assert await jobs(session) == []


async def test_the_same_content_again_enqueues_nothing_and_a_new_text_one_job(
    app, client, admin, session, empty_queue
):
    await make_collection(client, admin.headers, "kb")
    await add_document(client, admin.headers, "kb", "faq", "Refunds take ten days.")
    await add_document(client, admin.headers, "kb", "faq", "Refunds take ten days.", expect=200)
    assert len(await jobs(session)) == 1
    await add_document(client, admin.headers, "kb", "faq", "Exchanges are free.")
    assert [job["dedupe_key"][-2:] for job in await jobs(session)] == [":1", ":2"]

    await drain(app)  # the first job finds its generation replaced, the second ingests

    found = await document(client, admin.headers, "faq")
    assert (found["status"], found["chunk_count"]) == ("ready", 1)


async def test_a_request_that_fails_leaves_no_job(app, client, admin, session, empty_queue):
    await add_document(client, admin.headers, "missing", "faq", "Text.", expect=404)
    assert await jobs(session) == []


async def test_the_sweep_enqueues_documents_left_pending_without_a_job(
    app, client, admin, session, empty_queue
):
    await make_collection(client, admin.headers, "kb")
    await add_document(client, admin.headers, "kb", "faq", "Refunds take ten days.")
    await clear_queue(session)  # as if the job was lost (e.g. failed on a database error)

    await run_worker(
        app.state.sessionmaker,
        Embedders(app.state.providers),
        app.state.settings.database_url,
        drain=True,
    )

    assert (await document(client, admin.headers, "faq"))["status"] == "ready"


# `promptlogic worker` as a process of its own ------------------------------------------------


@pytest.fixture
async def slow_gateway(client, admin, fake_openai: FakeOpenAI, empty_queue) -> FakeOpenAI:
    """Collection `kb` embedded through the fake OpenAI server, one second per batch of 64."""
    response = await client.post(
        "/v1/providers",
        headers=admin.headers,
        json={
            "name": "gateway",
            "kind": "openai_compatible",
            "base_url": fake_openai.base_url,
            "api_key": "sk-gateway-secret-0123456789abcdef",
            "timeout_seconds": 10,
        },
    )
    assert response.status_code == 201, response.text
    await make_collection(
        client,
        admin.headers,
        "kb",
        embedding={"provider": "gateway", "model": "text-embedding-3-small", "dimensions": 256},
        chunking={"max_tokens": 50},
    )
    fake_openai.set_default(Reply(delay=1.0), endpoint="embeddings")
    return fake_openai


class Workers:
    """`promptlogic worker` subprocesses on the test database; killed at the end."""

    def __init__(self, database_url: str) -> None:
        self.env = {
            **os.environ,
            "PROMPTLOGIC_DATABASE_URL": database_url,
            "PROMPTLOGIC_SECRET_KEY": TEST_SECRET,
        }
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *options: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "promptlogic.cli", "worker", *options],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def workers(settings) -> Iterator[Workers]:
    started = Workers(settings.database_url)
    yield started
    started.stop_all()


async def wait_for(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, check, seconds: float = 30
) -> dict:
    """The document once `check(document)` holds, polled through the API."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        found = await document(client, headers, name)
        if check(found):
            return found
        assert asyncio.get_running_loop().time() < deadline, f"still {found}"
        await asyncio.sleep(0.1)


def embedding(found: dict) -> bool:
    return found["status"] == "processing" and found["progress"]["chunks_embedded"] > 0


async def test_a_job_whose_worker_is_killed_is_picked_up_again_by_a_new_worker(
    client, admin, session, slow_gateway, workers
):
    await add_document(client, admin.headers, "kb", "manual", LONG)
    first = workers.start("--stalled-after", "2")

    progress = await wait_for(client, admin.headers, "manual", embedding)
    assert 0 < progress["progress"]["chunks_embedded"] < progress["progress"]["chunks_total"]
    first.kill()  # mid-way: no SIGTERM, no chance to finish or release the job
    first.wait()
    assert (await document(client, admin.headers, "manual"))["status"] == "processing"
    assert [job["status"] for job in await jobs(session)] == ["picked"]

    slow_gateway.set_default(Reply(), endpoint="embeddings")
    second = workers.start("--stalled-after", "2")
    ready = await wait_for(
        client, admin.headers, "manual", lambda found: found["status"] == "ready"
    )

    assert ready["chunk_count"] == ready["progress"]["chunks_total"] > 64
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=20) == 0
    assert await jobs(session) == []


async def test_sigterm_stops_a_worker_once_its_current_job_is_done(
    client, admin, session, slow_gateway, workers
):
    await add_document(client, admin.headers, "kb", "manual", LONG)
    worker = workers.start()
    await wait_for(client, admin.headers, "manual", embedding)

    worker.send_signal(signal.SIGTERM)

    assert worker.wait(timeout=30) == 0
    stderr = worker.stderr.read().decode() if worker.stderr else ""
    assert "promptlogic worker: stopped" in stderr
    found = await document(client, admin.headers, "manual")
    assert found["status"] == "ready", found  # finished, not abandoned
    assert await jobs(session) == []


async def test_an_idle_worker_stops_on_sigterm(workers, empty_queue):
    worker = workers.start()
    for _ in range(20):  # log lines may come first
        line = await asyncio.to_thread(worker.stderr.readline)  # type: ignore[union-attr]
        if b"running jobs" in line or not line:
            break
    assert b"running jobs" in line

    worker.send_signal(signal.SIGTERM)

    assert worker.wait(timeout=20) == 0
