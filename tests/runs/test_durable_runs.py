"""`PROMPTLOGIC_RUN_RECORDS=durable`: an answer is only given for a run whose record is kept."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from promptlogic.runs.recorder import RunRecorder
from tests.helpers import assert_problem
from tests.runs.support import VARIABLES, events_of, make_prompt, run


@pytest.fixture
async def durable(app) -> AsyncIterator[RunRecorder]:
    """The app's recorder swapped for a durable one that gives up quickly."""
    recorder = RunRecorder(app.state.sessionmaker, interval=0.02, max_attempts=2, durable=True)
    await recorder.start()
    buffered, app.state.run_recorder = app.state.run_recorder, recorder
    try:
        yield recorder
    finally:
        app.state.run_recorder = buffered
        await recorder.stop()


@pytest.fixture
async def runs_table_gone(app) -> AsyncIterator[None]:
    """The database refuses every run record while this is active."""
    async with app.state.engine.begin() as connection:
        await connection.execute(text("ALTER TABLE runs RENAME TO runs_away"))
    # Prepared statements of pooled connections name the table by its id: drop them.
    await app.state.engine.dispose()
    try:
        yield
    finally:
        async with app.state.engine.begin() as connection:
            await connection.execute(text("ALTER TABLE runs_away RENAME TO runs"))
        await app.state.engine.dispose()


async def test_a_durable_run_is_answered_once_its_record_is_committed(
    app, client, admin, runner, durable
):
    await make_prompt(client, admin)
    response = await run(client, runner, {"variables": VARIABLES})
    assert response.status_code == 200, response.text
    assert durable.buffered == 0  # nothing waits: the record is already in the table
    stored = await client.get(f"/v1/runs/{response.json()['id']}", headers=runner.headers)
    assert stored.status_code == 200


async def test_a_durable_run_whose_record_cannot_be_written_is_a_503(
    client, admin, runner, durable, runs_table_gone
):
    await make_prompt(client, admin)
    response = await run(client, runner, {"variables": VARIABLES})
    problem = assert_problem(response, 503)
    assert problem["type"].endswith("run-not-recorded")
    assert response.headers["Retry-After"] == "1"
    assert "output" not in problem


async def test_a_durable_stream_ends_with_an_error_instead_of_done_when_not_recorded(
    client, admin, runner, durable, runs_table_gone
):
    await make_prompt(client, admin)
    response = await run(client, runner, {"variables": VARIABLES, "stream": True})
    events = events_of(response.text)
    assert "done" not in [name for name, _ in events]
    name, error = events[-1]
    assert name == "error"
    assert error["status"] == 503
