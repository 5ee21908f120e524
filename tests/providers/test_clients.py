"""Which connection a run uses, and the pooled client per connection across workers."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import event

from promptlogic.app import create_app
from promptlogic.errors import InvalidInput
from promptlogic.providers.clients import ProviderRegistry
from tests.conftest import client_for, make_settings, running

OPENAI = {"kind": "openai", "api_key": "sk-test-0123456789abcdef"}


async def add(client, admin, name, **fields):
    response = await client.post(
        "/v1/providers", headers=admin.headers, json={"name": name, **OPENAI, **fields}
    )
    assert response.status_code == 201, response.text


def registry_with_env(app, **env) -> ProviderRegistry:
    env = {"openai_api_key": None, "openai_base_url": None, **env}  # not the machine's
    settings = make_settings(app.state.settings.database_url, **env)
    return ProviderRegistry(app.state.sessionmaker, app.state.secret_box, settings)


async def test_resolution_prefers_named_then_default_then_environment_then_offline(
    app, client, tenant, admin
):
    registry = registry_with_env(app)
    assert (await registry.resolve_connection(tenant.id, None)).source == "offline"
    with_env = registry_with_env(app, openai_api_key="sk-env-0123456789")
    env = await with_env.resolve_connection(tenant.id, None)
    assert (env.source, env.kind, env.api_key) == ("environment", "openai", "sk-env-0123456789")
    await add(client, admin, "main", is_default=True)
    await add(client, admin, "local", kind="openai_compatible", base_url="http://127.0.0.1:9/v1")
    with_env = registry_with_env(app, openai_api_key="sk-env-0123456789")  # not subscribed
    default = await with_env.resolve_connection(tenant.id, None)
    assert (default.source, default.name, default.api_key) == (
        "default",
        "main",
        OPENAI["api_key"],
    )
    named = await with_env.resolve_connection(tenant.id, "local")
    assert (named.source, named.name, named.base_url) == ("named", "local", "http://127.0.0.1:9/v1")


async def test_a_missing_named_provider_is_a_422_naming_model_provider(app, tenant):
    with pytest.raises(InvalidInput) as caught:
        await app.state.providers.resolve_connection(tenant.id, "nope")
    assert caught.value.errors[0]["field"] == "model.provider"
    assert "nope" in caught.value.detail


async def test_a_cached_resolution_makes_no_database_query(app, client, tenant, admin):
    await add(client, admin, "main")
    providers = app.state.providers
    await providers.resolve_connection(tenant.id, "main")
    statements: list[str] = []
    sync_engine = app.state.engine.sync_engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(sync_engine, "before_cursor_execute", listener)
    try:
        for _ in range(5):
            await providers.resolve_connection(tenant.id, "main")
    finally:
        event.remove(sync_engine, "before_cursor_execute", listener)
    assert statements == []


async def test_client_is_reused_and_configured_without_sdk_retries(app, client, tenant, admin):
    await add(client, admin, "main", timeout_seconds=12.5, default_headers={"X-Team": "red"})
    providers = app.state.providers
    connection = await providers.resolve_connection(tenant.id, "main")
    first = providers.client_for(connection)
    again = providers.client_for(await providers.resolve_connection(tenant.id, "main"))
    assert again is first
    assert first.max_retries == 0
    assert first.timeout == 12.5
    assert first.default_headers["X-Team"] == "red"
    assert first.api_key == OPENAI["api_key"]
    assert str(first.base_url).rstrip("/") == "https://api.openai.com/v1"


async def test_azure_connections_get_an_azure_client(app, client, tenant, admin):
    await add(
        client,
        admin,
        "azure",
        kind="azure_openai",
        base_url="https://example.openai.azure.com",
        api_version="2024-10-21",
    )
    providers = app.state.providers
    built = providers.client_for(await providers.resolve_connection(tenant.id, "azure"))
    assert type(built).__name__ == "AsyncAzureOpenAI"
    assert built.max_retries == 0


async def test_patch_rebuilds_the_client_on_this_and_another_worker(app, client, tenant, admin):
    await add(client, admin, "main")
    async with running(create_app(app.state.settings)) as other_app, client_for(other_app):
        here, there = app.state.providers, other_app.state.providers
        before_here = here.client_for(await here.resolve_connection(tenant.id, "main"))
        before_there = there.client_for(await there.resolve_connection(tenant.id, "main"))
        response = await client.patch(
            "/v1/providers/main", headers=admin.headers, json={"timeout_seconds": 5}
        )
        assert response.status_code == 200
        after_here = here.client_for(await here.resolve_connection(tenant.id, "main"))
        assert after_here is not before_here
        assert after_here.timeout == 5
        deadline = time.perf_counter() + 2
        while True:  # the other worker learns through NOTIFY
            after_there = there.client_for(await there.resolve_connection(tenant.id, "main"))
            if after_there is not before_there or time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.01)
        assert after_there is not before_there
        assert after_there.timeout == 5
    assert before_there.is_closed()  # the other worker shut down: every client closed


async def test_deleting_a_connection_falls_back_for_runs_without_a_name(app, client, tenant, admin):
    await add(client, admin, "main", is_default=True)
    providers = app.state.providers
    assert (await providers.resolve_connection(tenant.id, None)).name == "main"
    assert (await client.delete("/v1/providers/main", headers=admin.headers)).status_code == 204
    fallback = await providers.resolve_connection(tenant.id, None)
    assert fallback.source in ("environment", "offline")
    with pytest.raises(InvalidInput):
        await providers.resolve_connection(tenant.id, "main")


async def test_offline_connections_resolve_to_the_offline_provider(app, client, tenant, admin):
    response = await client.post(
        "/v1/providers", headers=admin.headers, json={"name": "dry-run", "kind": "offline"}
    )
    assert response.status_code == 201, response.text
    providers = app.state.providers
    connection = await providers.resolve_connection(tenant.id, "dry-run")
    provider = providers.provider_for(connection)
    completion = await provider.complete([{"role": "user", "content": "hi"}], {"name": "m"})
    assert completion.provider == "offline"
