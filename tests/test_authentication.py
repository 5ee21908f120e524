"""Authentication across workers: caching, revocation through NOTIFY, expiry, usage."""

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, func, make_url, select, update

from promptlogic.app import create_app
from promptlogic.db.engine import commit
from promptlogic.db.notify import CHANNEL, LISTENER_APPLICATION_NAME
from promptlogic.tenancy.models import ApiKey
from tests.conftest import client_for, running
from tests.factories import make_key, make_tenant


async def _poll_until_status(client, headers, status: int, seconds: float = 3.0) -> float:
    """Seconds until GET /v1/me answers `status`; fails if it never does."""
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        if (await client.get("/v1/me", headers=headers)).status_code == status:
            return time.perf_counter() - started
        await asyncio.sleep(0.01)
    raise AssertionError(f"/v1/me never answered {status} within {seconds}s")


async def test_key_revoked_on_one_worker_is_refused_by_another_at_once(app, client, session):
    tenant = await make_tenant(session)
    admin = await make_key(session, tenant, ["admin"])
    victim = await make_key(session, tenant, ["run"])
    async with running(create_app(app.state.settings)) as other_app, client_for(other_app) as other:
        # Both workers have the key cached.
        assert (await client.get("/v1/me", headers=victim.headers)).status_code == 200
        assert (await other.get("/v1/me", headers=victim.headers)).status_code == 200
        response = await client.delete(f"/v1/api-keys/{victim.key.id}", headers=admin.headers)
        assert response.status_code == 204
        # The revoking worker refuses it immediately, the other one as soon as NOTIFY arrives.
        assert (await client.get("/v1/me", headers=victim.headers)).status_code == 401
        await _poll_until_status(other, victim.headers, 401, seconds=2.0)


async def test_cached_key_is_not_refreshed_by_time_only_by_notification(app, client, session):
    """Without a NOTIFY a cached key stays as it was: the cache has no TTL to hide behind."""
    tenant = await make_tenant(session)
    key = await make_key(session, tenant, ["run"])
    assert (await client.get("/v1/me", headers=key.headers)).status_code == 200
    # Revoke behind the app's back (no NOTIFY): the cached entry is still served.
    await session.execute(
        update(ApiKey).where(ApiKey.id == key.key.id).values(revoked_at=datetime.now(UTC))
    )
    await commit(session)
    assert (await client.get("/v1/me", headers=key.headers)).status_code == 200
    # The notification is what drops it.
    message = json.dumps({"topic": "api_key", "prefix": key.key.prefix})
    await session.execute(select(func.pg_notify(CHANNEL, message)))
    await commit(session)
    await _poll_until_status(client, key.headers, 401, seconds=2.0)


async def test_authenticated_request_from_cache_makes_no_database_query(app, client, session):
    tenant = await make_tenant(session)
    key = await make_key(session, tenant, ["run"])
    assert (await client.get("/v1/me", headers=key.headers)).status_code == 200
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sync_engine = app.state.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            assert (await client.get("/v1/me", headers=key.headers)).status_code == 200
    finally:
        event.remove(sync_engine, "before_cursor_execute", count)
    assert statements == []


async def test_expired_key_is_refused(client, session):
    tenant = await make_tenant(session)
    key = await make_key(
        session, tenant, ["run"], expires_at=datetime.now(UTC) + timedelta(seconds=1)
    )
    assert (await client.get("/v1/me", headers=key.headers)).status_code == 200
    await asyncio.sleep(1.1)
    response = await client.get("/v1/me", headers=key.headers)
    assert response.status_code == 401
    assert response.json()["detail"] == "The API key has expired."


async def test_last_used_time_is_written_behind(app, client, session):
    tenant = await make_tenant(session)
    key = await make_key(session, tenant, ["run"])
    before = datetime.now(UTC)
    assert (await client.get("/v1/me", headers=key.headers)).status_code == 200
    await app.state.authenticator.usage.flush()
    last_used = await session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == key.key.id))
    assert last_used is not None
    assert last_used >= before


async def test_cache_is_dropped_when_the_listener_reconnects(app, client, session, pg):
    """Notifications sent while disconnected are lost, so a reconnect must forget every key."""
    tenant = await make_tenant(session)
    key = await make_key(session, tenant, ["run"])
    assert (await client.get("/v1/me", headers=key.headers)).status_code == 200
    cache = app.state.authenticator.cache
    assert cache.get(key.key.prefix) is not None
    database = make_url(app.state.settings.database_url).database
    await pg.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = $1 AND datname = $2",
        LISTENER_APPLICATION_NAME,
        database,
    )
    deadline = time.perf_counter() + 5
    while cache.get(key.key.prefix) is not None or not app.state.listener.connected:
        assert time.perf_counter() < deadline, "listener did not reconnect and reset the cache"
        await asyncio.sleep(0.02)
    assert (await client.get("/v1/me", headers=key.headers)).status_code == 200
