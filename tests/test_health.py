"""Liveness and readiness."""

import asyncio

from promptlogic.app import create_app
from promptlogic.db.engine import create_engine
from promptlogic.db.migrations import upgrade
from tests.conftest import client_for, make_settings, running
from tests.helpers import assert_problem


async def test_healthz_answers_without_authentication(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_each_check_when_ready(client):
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"
    assert response.json()["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "change_listener": "ok",
    }


async def test_readyz_fails_while_the_database_is_down_and_recovers(pg):
    url = await pg.create_database("readyz")
    engine = create_engine(make_settings(url))
    await upgrade(engine)
    await engine.dispose()
    name = url.rsplit("/", 1)[1].split("?", 1)[0]
    settings = make_settings(url, db_timeout_seconds=1.0)
    async with running(create_app(settings)) as app, client_for(app) as client:
        assert (await client.get("/readyz")).status_code == 200
        # Take the database away: refuse new connections and drop the existing ones.
        await pg.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        await pg.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        try:
            body = assert_problem(await client.get("/readyz"), 503)
            assert body["checks"]["database"] == "unreachable"
            assert "database unreachable" in body["detail"]
            # The listener notices its lost connection asynchronously.
            for _ in range(100):
                checks = (await client.get("/readyz")).json()["checks"]
                if checks["change_listener"] == "disconnected":
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("/readyz kept reporting the change listener as connected")
        finally:
            await pg.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        for _ in range(200):
            if (await client.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("/readyz did not recover once the database came back")
