"""The settings pages over HTTP: API keys, provider connections, model prices, usage limits,
members and roles, the audit log; who may see and change them, and what is never shown."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit import service as audit
from promptlogic.audit.service import OPERATOR
from promptlogic.db.engine import commit
from promptlogic.tenancy.models import Tenant
from tests.conftest import client_for
from tests.factories import KeyFixture, make_key, make_run, make_tenant
from tests.ui.conftest import SignedInClient, signed_in
from tests.ui.support import MemberFixture, make_member, sign_in

PROVIDER_KEY = "sk-settings-test-very-secret-0123456789"
HEADER_VALUE = "org-header-value-that-is-secret"
PAGES = [
    "/ui/settings",
    "/ui/settings/api-keys",
    "/ui/settings/providers",
    "/ui/settings/providers/new",
    "/ui/settings/models",
    "/ui/settings/limits",
    "/ui/settings/members",
    "/ui/settings/audit",
]


# Helpers


async def post(signed: SignedInClient, url: str, **data: Any) -> Any:
    return await signed.client.post(url, data={"csrf_token": signed.csrf, **data})


async def rows(app: FastAPI, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Read committed state on a connection of its own (the test's session keeps its objects)."""
    async with app.state.engine.connect() as connection:
        result = await connection.execute(text(sql), params)
        return [dict(row._mapping) for row in result]


async def state_of(app: FastAPI, tenant_id: uuid.UUID) -> dict[str, Any]:
    """Everything the settings pages can change for a tenant, to check nothing did."""
    queries = {
        "audit": "SELECT count(*) AS n FROM audit_events WHERE tenant_id = :t",
        "keys": "SELECT id, revoked_at FROM api_keys WHERE tenant_id = :t ORDER BY id",
        "providers": "SELECT name, kind, base_url, api_key_encrypted, timeout_seconds "
        "FROM provider_connections WHERE tenant_id = :t ORDER BY name",
        "prices": "SELECT model, input_per_million FROM model_prices WHERE tenant_id = :t",
        "limits": "SELECT requests_per_minute, monthly_spend_cap FROM usage_limits "
        "WHERE tenant_id = :t",
        "members": "SELECT user_id, role FROM memberships WHERE tenant_id = :t ORDER BY user_id",
    }
    return {name: await rows(app, sql, t=tenant_id) for name, sql in queries.items()}


async def user_id_of(app: FastAPI, email: str) -> uuid.UUID:
    (found,) = await rows(app, "SELECT id FROM users WHERE email = :e", e=email)
    return found["id"]


async def role_of(app: FastAPI, tenant_id: uuid.UUID, email: str) -> str | None:
    found = await rows(
        app,
        "SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id "
        "WHERE m.tenant_id = :t AND u.email = :e",
        t=tenant_id,
        e=email,
    )
    return found[0]["role"] if found else None


async def last_event(app: FastAPI, tenant_id: uuid.UUID) -> dict[str, Any]:
    events = await rows(
        app, "SELECT * FROM audit_events WHERE tenant_id = :t ORDER BY id DESC LIMIT 1", t=tenant_id
    )
    return events[0]


async def create_key(signed: SignedInClient, name: str = "checkout", **fields: Any) -> Any:
    return await post(signed, "/ui/settings/api-keys", name=name, scopes=["run", "read"], **fields)


def shown_key(html: str) -> str:
    found = re.search(r'id="new-key"[^>]*value="(pl_[0-9a-f]{12}_[a-z2-7]{48})"', html)
    assert found is not None, html
    return found.group(1)


async def add_provider(signed: SignedInClient, name: str = "main", **fields: Any) -> Any:
    values = {
        "name": name,
        "kind": "openai",
        "api_key": PROVIDER_KEY,
        "default_headers": f"X-Org: {HEADER_VALUE}\n\nX-Team: blue",
        "timeout_seconds": "30",
        **fields,
    }
    return await post(signed, "/ui/settings/providers", **values)


@pytest.fixture
async def globex(session: AsyncSession) -> Tenant:
    return await make_tenant(session, "globex")


@pytest.fixture
async def globex_admin(session: AsyncSession, globex: Tenant) -> KeyFixture:
    return await make_key(session, globex, ["admin"], name="globex-deployer")


@pytest.fixture
async def as_admin(
    app: FastAPI, session: AsyncSession, tenant: Tenant, owner: MemberFixture
) -> Any:
    """An admin of acme who is not an owner (acme's owner exists too)."""
    admin_member = await make_member(session, tenant, "admin")
    async with signed_in(app, admin_member) as signed:
        yield signed


# Who may


@pytest.mark.parametrize("url", PAGES)
async def test_an_owner_sees_every_settings_page(as_owner, url):
    answer = await as_owner.client.get(url)
    assert answer.status_code == 200, answer.text
    assert 'aria-label="Settings"' in answer.text
    assert "<h1" in answer.text
    # The CSP allows no inline style or script: none is written.
    assert "style=" not in answer.text
    assert "<style" not in answer.text
    assert re.search(r"<script(?![^>]*\bsrc=)", answer.text) is None


@pytest.mark.parametrize("role", ["viewer", "editor", "rule_author"])
async def test_a_non_admin_gets_403_on_every_settings_page(app, session, tenant, role):
    member = await make_member(session, tenant, role)
    async with signed_in(app, member) as signed:
        for url in PAGES:
            answer = await signed.client.get(url)
            assert answer.status_code == 403, url
            assert "cannot change settings" in answer.text
            # The layout still works: the menu and the account controls are there.
            home = "/ui/rules" if role == "rule_author" else "/ui/prompts"
            assert f'href="{home}"' in answer.text
            assert "Sign out" in answer.text


async def changing_posts(
    app: FastAPI, session: AsyncSession, tenant: Tenant, owner: MemberFixture, admin: KeyFixture
) -> list[tuple[str, dict[str, Any]]]:
    """A valid request to every settings POST route (on things that exist)."""
    async with signed_in(app, owner) as signed:
        assert (await add_provider(signed, "main")).status_code == 303
        assert (await create_key(signed)).status_code == 201
    viewer_id = await user_id_of(app, f"viewer@{tenant.slug}.example")
    await set_own_price(app, session, tenant)
    return [
        ("/ui/settings/api-keys", {"name": "x", "scopes": ["read"]}),
        (f"/ui/settings/api-keys/{admin.key.id}/revoke", {}),
        ("/ui/settings/providers", {"name": "other", "kind": "offline"}),
        ("/ui/settings/providers/main/edit", {"kind": "offline", "remove_api_key": "1"}),
        ("/ui/settings/providers/main/delete", {}),
        (
            "/ui/settings/models",
            {"model": "gpt-4o", "input_per_million": "1", "output_per_million": "2"},
        ),
        ("/ui/settings/models/remove", {"model": "house-model"}),
        ("/ui/settings/limits", {"requests_per_minute": "5", "monthly_spend_cap": "10"}),
        ("/ui/settings/members", {"email": "new@acme.example", "role": "viewer"}),
        (f"/ui/settings/members/{viewer_id}/role", {"role": "admin"}),
        (f"/ui/settings/members/{viewer_id}/remove", {}),
    ]


async def set_own_price(app: FastAPI, session: AsyncSession, tenant: Tenant) -> None:
    from promptlogic.providers import catalog

    await catalog.set_price(
        session,
        tenant_id=tenant.id,
        model="house-model",
        input_per_million=Decimal("1"),
        output_per_million=Decimal("2"),
        actor=OPERATOR,
    )
    await commit(session)


def test_the_post_list_covers_every_settings_post_route():
    from tests.ui.test_route_access import UNSAFE_ROUTES

    settings_posts = {path for method, path in UNSAFE_ROUTES if path.startswith("/settings")}
    assert settings_posts == {
        "/settings/api-keys",
        "/settings/api-keys/{key_id}/revoke",
        "/settings/providers",
        "/settings/providers/{provider}/edit",
        "/settings/providers/{provider}/delete",
        "/settings/models",
        "/settings/models/remove",
        "/settings/limits",
        "/settings/members",
        "/settings/members/{user_id}/role",
        "/settings/members/{user_id}/remove",
    }


@pytest.mark.parametrize("role", ["viewer", "editor"])
async def test_a_non_admins_posts_are_refused_and_change_nothing(
    app, session, tenant, owner, viewer, admin, role
):
    posts = await changing_posts(app, session, tenant, owner, admin)
    member = viewer if role == "viewer" else await make_member(session, tenant, "editor")
    before = await state_of(app, tenant.id)
    async with signed_in(app, member) as signed:
        for url, data in posts:
            answer = await post(signed, url, **data)
            assert answer.status_code == 403, (url, answer.text[:300])
    assert await state_of(app, tenant.id) == before


async def test_posts_without_the_csrf_token_are_refused_and_change_nothing(
    app, session, tenant, owner, viewer, admin, as_owner
):
    posts = await changing_posts(app, session, tenant, owner, admin)
    before = await state_of(app, tenant.id)
    for url, data in posts:
        answer = await as_owner.client.post(url, data=data)
        assert answer.status_code == 403, (url, answer.text[:300])
        assert "security token" in answer.text
        forged = await as_owner.client.post(url, data={**data, "csrf_token": "forged"})
        assert forged.status_code == 403, url
    assert await state_of(app, tenant.id) == before


async def test_another_tenants_things_are_not_found_and_stay_as_they_are(
    app, session, client, globex, globex_admin, as_owner
):
    created = await client.post(
        "/v1/providers",
        headers=globex_admin.headers,
        json={"name": "globex-ai", "kind": "openai", "api_key": PROVIDER_KEY},
    )
    assert created.status_code == 201, created.text
    globex_owner = await make_member(session, globex, "owner", email="boss@globex.example")
    globex_member = await make_member(session, globex, "viewer", email="staff@globex.example")
    boss_id = await user_id_of(app, globex_owner.email)
    staff_id = await user_id_of(app, globex_member.email)
    before = await state_of(app, globex.id)

    key_id = globex_admin.key.id
    for url, data in [
        (f"/ui/settings/api-keys/{key_id}/revoke", {}),
        ("/ui/settings/providers/globex-ai/edit", {"kind": "offline", "remove_api_key": "1"}),
        ("/ui/settings/providers/globex-ai/delete", {}),
        (f"/ui/settings/members/{staff_id}/role", {"role": "admin"}),
        (f"/ui/settings/members/{staff_id}/remove", {}),
        (f"/ui/settings/members/{boss_id}/role", {"role": "viewer"}),
        (f"/ui/settings/members/{boss_id}/remove", {}),
    ]:
        answer = await post(as_owner, url, **data)
        assert answer.status_code == 404, (url, answer.text[:300])
    assert (await as_owner.client.get("/ui/settings/providers/globex-ai/edit")).status_code == 404
    assert await state_of(app, globex.id) == before
    # Nor does another tenant's data show on any page.
    for url in PAGES:
        shown = (await as_owner.client.get(url)).text
        assert "globex" not in shown, url
    me = await client.get("/v1/me", headers=globex_admin.headers)
    assert me.status_code == 200


# API keys


async def test_a_new_key_is_shown_once_and_then_only_its_prefix(app, client, tenant, as_owner):
    answer = await create_key(as_owner, "checkout service")
    assert answer.status_code == 201, answer.text
    assert "it will not be shown again" in answer.text
    plaintext = shown_key(answer.text)
    assert answer.text.count(plaintext) == 1
    assert "no-store" in answer.headers["cache-control"]
    assert "set-cookie" not in answer.headers  # not in a flash message either

    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {plaintext}"})
    assert me.status_code == 200, me.text
    assert me.json()["scopes"] == ["run", "read"]
    assert me.json()["key"]["name"] == "checkout service"

    prefix = plaintext.split("_")[1]
    secret = plaintext.split("_")[2]
    for url in PAGES:
        assert secret not in (await as_owner.client.get(url)).text, url
    listed = (await as_owner.client.get("/ui/settings/api-keys")).text
    assert f"pl_{prefix}_…" in listed
    assert "checkout service" in listed
    assert f"by {as_owner_email(tenant)}" in listed
    event = await last_event(app, tenant.id)
    assert event["action"] == "api_key.create"
    assert event["actor_type"] == "user"
    assert event["actor_name"] == as_owner_email(tenant)


def as_owner_email(tenant: Tenant) -> str:
    return f"owner@{tenant.slug}.example"


async def test_an_expiry_is_read_as_utc(app, tenant, as_owner):
    answer = await create_key(as_owner, "temporary", expires_at="2099-05-01T10:30")
    assert answer.status_code == 201, answer.text
    (row,) = await rows(app, "SELECT expires_at FROM api_keys WHERE name = 'temporary'")
    assert row["expires_at"] == datetime(2099, 5, 1, 10, 30, tzinfo=UTC)
    assert "2099-05-01 10:30 UTC" in (await as_owner.client.get("/ui/settings/api-keys")).text


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": "ci", "scopes": []}, "Scopes", "choose one or more"),
        (
            {"name": "ci", "scopes": ["root"]},
            "Scopes",
            "'run', 'read', 'rules', 'write' or 'admin'",
        ),
        ({"name": "  ", "scopes": ["read"]}, "Name", "at least 1 character"),
        ({"name": "ci", "scopes": ["read"], "expires_at": "2001-01-01T00:00"}, "Expires", "future"),
        ({"name": "ci", "scopes": ["read"], "expires_at": "soon"}, "Expires", "datetime"),
    ],
)
async def test_a_bad_key_form_says_which_field_and_creates_nothing(
    app, tenant, as_owner, fields, field, message
):
    answer = await post(as_owner, "/ui/settings/api-keys", **fields)
    assert answer.status_code == 422, answer.text
    alert = html.unescape(answer.text.split('role="alert"')[1].split("</div>")[0])
    assert f"<li>{field}: " in alert
    assert message in alert
    assert 'aria-invalid="true"' in answer.text
    assert await rows(app, "SELECT id FROM api_keys WHERE tenant_id = :t", t=tenant.id) == []


async def test_a_revoked_key_no_longer_authenticates(app, client, tenant, admin, as_owner):
    target = await make_key_via_ui(as_owner, "doomed")
    headers = {"Authorization": f"Bearer {target}"}
    assert (await client.get("/v1/me", headers=headers)).status_code == 200  # now cached
    (row,) = await rows(app, "SELECT id FROM api_keys WHERE name = 'doomed'")

    answer = await post(as_owner, f"/ui/settings/api-keys/{row['id']}/revoke")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/settings/api-keys"
    assert (await client.get("/v1/me", headers=headers)).status_code == 401
    assert (await client.get("/v1/me", headers=admin.headers)).status_code == 200
    listed = (await as_owner.client.get("/ui/settings/api-keys")).text
    assert "Revoked the key “doomed”" in listed
    doomed_row = listed.split(f'data-key="{row["id"]}"')[1].split("</tr>")[0]
    assert "revoked" in doomed_row
    assert "/revoke" not in doomed_row  # nothing more to offer
    assert (await last_event(app, tenant.id))["action"] == "api_key.revoke"
    missing = await post(as_owner, f"/ui/settings/api-keys/{uuid.uuid4()}/revoke")
    assert missing.status_code == 404


async def make_key_via_ui(signed: SignedInClient, name: str) -> str:
    answer = await create_key(signed, name)
    assert answer.status_code == 201, answer.text
    return shown_key(answer.text)


# Provider connections


async def test_a_providers_key_and_header_values_are_never_shown(app, client, admin, as_owner):
    answer = await add_provider(as_owner, "main", is_default="1")
    assert answer.status_code == 303, answer.text
    api = (await client.get("/v1/providers/main", headers=admin.headers)).json()
    assert api["has_api_key"] is True
    assert api["header_names"] == ["X-Org", "X-Team"]
    assert api["timeout_seconds"] == 30
    assert api["is_default"] is True

    listed = (await as_owner.client.get("/ui/settings/providers")).text
    assert "Added the provider connection “main”" in listed
    assert "X-Org" in listed
    assert "…" + PROVIDER_KEY[-4:] in listed
    edit = (await as_owner.client.get("/ui/settings/providers/main/edit")).text
    assert "Leave empty to keep the current key" in edit
    assert re.search(r'<input id="api_key" name="api_key" type="password"[^>]*>', edit)
    assert 'value="' not in re.search(r'<input id="api_key"[^>]*>', edit).group(0)
    for url in [*PAGES, "/ui/settings/providers/main/edit"]:
        shown = (await as_owner.client.get(url)).text
        assert PROVIDER_KEY not in shown, url
        assert HEADER_VALUE not in shown, url


async def test_editing_keeps_the_stored_key_unless_a_new_one_is_given(
    app, client, admin, tenant, as_owner
):
    assert (await add_provider(as_owner, "main")).status_code == 303
    (before,) = await rows(app, "SELECT * FROM provider_connections WHERE name = 'main'")
    kept = await post(
        as_owner,
        "/ui/settings/providers/main/edit",
        kind="openai",
        base_url="https://llm.example.com/v1",
        timeout_seconds="45",
    )
    assert kept.status_code == 303, kept.text
    (after,) = await rows(app, "SELECT * FROM provider_connections WHERE name = 'main'")
    assert after["api_key_encrypted"] == before["api_key_encrypted"]
    assert after["headers_encrypted"] == before["headers_encrypted"]
    assert after["base_url"] == "https://llm.example.com/v1"
    assert after["timeout_seconds"] == 45

    replaced = await post(
        as_owner,
        "/ui/settings/providers/main/edit",
        kind="openai_compatible",
        base_url="https://llm.example.com/v1",
        api_key="sk-another-key-for-this-test-9876",
        timeout_seconds="45",
        remove_headers="1",
    )
    assert replaced.status_code == 303, replaced.text
    api = (await client.get("/v1/providers/main", headers=admin.headers)).json()
    assert api["api_key_last4"] == "9876"
    assert api["header_names"] == []
    assert api["kind"] == "openai_compatible"
    event = await last_event(app, tenant.id)
    assert event["action"] == "provider.update"
    assert event["after"]["secrets_replaced"] == ["api_key", "default_headers"]
    assert PROVIDER_KEY not in str(event)

    removed = await post(
        as_owner,
        "/ui/settings/providers/main/edit",
        kind="openai_compatible",
        base_url="https://llm.example.com/v1",
        timeout_seconds="45",
        remove_api_key="1",
    )
    assert removed.status_code == 303, removed.text
    api = (await client.get("/v1/providers/main", headers=admin.headers)).json()
    assert api["has_api_key"] is False


@pytest.mark.parametrize(
    ("fields", "field", "status"),
    [
        ({"kind": "openai_compatible", "api_key": PROVIDER_KEY}, "Base URL", 422),
        ({"kind": "openai", "api_key": ""}, "API key", 422),
        ({"base_url": "https://user:pw@llm.example.com"}, "Base URL", 422),
        ({"timeout_seconds": "0"}, "Timeout", 422),
        ({"name": "Not A Name"}, "Name", 422),
        ({"default_headers": f"{HEADER_VALUE} without a colon"}, "Default headers", 422),
        ({"default_headers": f"Bad Header: {HEADER_VALUE}"}, "Default headers", 422),
        ({"kind": "azure_openai", "base_url": "https://a.example.com"}, "API version", 422),
    ],
)
async def test_a_bad_provider_form_names_the_field_and_never_echoes_secrets(
    app, tenant, as_owner, fields, field, status
):
    answer = await add_provider(as_owner, **{"name": "main", **fields})
    assert answer.status_code == status, answer.text
    assert f"<li>{field}: " in answer.text
    assert PROVIDER_KEY not in answer.text
    assert HEADER_VALUE not in answer.text
    assert (await state_of(app, tenant.id))["providers"] == []


async def test_a_taken_provider_name_is_a_conflict(app, tenant, as_owner):
    assert (await add_provider(as_owner, "main")).status_code == 303
    again = await add_provider(as_owner, "main", kind="offline", api_key="", default_headers="")
    assert again.status_code == 409
    assert "<li>Name: A provider named `main` already exists.</li>" in again.text
    assert len((await state_of(app, tenant.id))["providers"]) == 1


async def test_a_failed_edit_keeps_the_form_and_changes_nothing(app, tenant, as_owner):
    assert (await add_provider(as_owner, "main")).status_code == 303
    before = await state_of(app, tenant.id)
    answer = await post(
        as_owner,
        "/ui/settings/providers/main/edit",
        kind="azure_openai",
        base_url="https://a.example.com",
        api_key="sk-typed-but-refused-0123456789",
        timeout_seconds="30",
    )
    assert answer.status_code == 422
    assert "<li>API version: required for kind `azure_openai`</li>" in answer.text
    assert "sk-typed-but-refused-0123456789" not in answer.text
    assert '<option value="azure_openai" selected>' in answer.text
    assert "A key is stored" in answer.text
    assert await state_of(app, tenant.id) == before


async def test_deleting_a_provider(app, client, admin, tenant, as_owner):
    assert (await add_provider(as_owner, "main")).status_code == 303
    answer = await post(as_owner, "/ui/settings/providers/main/delete")
    assert answer.status_code == 303
    assert (await client.get("/v1/providers/main", headers=admin.headers)).status_code == 404
    assert (await last_event(app, tenant.id))["action"] == "provider.delete"
    listed = (await as_owner.client.get("/ui/settings/providers")).text
    assert "Deleted the provider connection “main”" in listed
    again = await post(as_owner, "/ui/settings/providers/main/delete")
    assert again.status_code == 404


# Model prices


async def test_setting_and_removing_a_price(app, client, admin, tenant, as_owner):
    catalog_price = await api_price(client, admin, "gpt-4o-mini")
    answer = await post(
        as_owner,
        "/ui/settings/models",
        model="gpt-4o-mini",
        input_per_million="0.5",
        output_per_million="1.25",
    )
    assert answer.status_code == 303, answer.text
    assert await api_price(client, admin, "gpt-4o-mini") == (0.5, 1.25, "tenant")
    listed = (await as_owner.client.get("/ui/settings/models")).text
    row = listed.split('data-model="gpt-4o-mini"')[1].split("</tr>")[0]
    assert "$0.5" in row
    assert "$1.25" in row
    assert "your price" in row
    assert "Remove your price" in row
    assert (await last_event(app, tenant.id))["action"] == "model_price.set"

    removed = await post(as_owner, "/ui/settings/models/remove", model="gpt-4o-mini")
    assert removed.status_code == 303
    assert await api_price(client, admin, "gpt-4o-mini") == catalog_price
    again = await post(as_owner, "/ui/settings/models/remove", model="gpt-4o-mini")
    assert again.status_code == 404


async def api_price(client, admin, model: str) -> tuple[float, float, str]:
    listed = await client.get("/v1/models", headers=admin.headers, params={"limit": 200})
    entry = next(item for item in listed.json()["items"] if item["name"] == model)
    return entry["input_per_million"], entry["output_per_million"], entry["source"]


async def test_a_new_model_can_be_priced_and_its_form_prefilled(app, as_owner):
    answer = await post(
        as_owner,
        "/ui/settings/models",
        model="house-model",
        input_per_million="3",
        output_per_million="15",
    )
    assert answer.status_code == 303, answer.text
    listed = (await as_owner.client.get("/ui/settings/models")).text
    assert 'href="/ui/settings/models?model=house-model&amp;input=3&amp;output=15#price-form"' in (
        listed
    )
    form = (await as_owner.client.get("/ui/settings/models?model=house-model&input=3")).text
    assert 'name="model" required maxlength="200" value="house-model"' in form


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"input_per_million": "-1"}, "Input per million tokens"),
        ({"input_per_million": "cheap"}, "Input per million tokens"),
        ({"output_per_million": "0.1234567"}, "Output per million tokens"),
        ({"output_per_million": ""}, "Output per million tokens"),
        ({"model": "no spaces please"}, "Model"),
    ],
)
async def test_a_bad_price_says_which_field_and_saves_nothing(app, tenant, as_owner, fields, field):
    values = {"model": "gpt-4o", "input_per_million": "1", "output_per_million": "2", **fields}
    answer = await post(as_owner, "/ui/settings/models", **values)
    assert answer.status_code == 422, answer.text
    assert f"<li>{field}: " in answer.text
    assert f'value="{values["model"]}"' in answer.text
    assert (await state_of(app, tenant.id))["prices"] == []


# Usage limits


async def test_limits_show_what_was_spent_and_can_be_changed(
    app, client, session, tenant, admin, as_owner
):
    await make_run(session, tenant, cost=Decimal("1.25"))
    shown = (await as_owner.client.get("/ui/settings/limits")).text
    assert "<dd data-spent>$1.25</dd>" in shown
    assert "no limit" in shown

    answer = await post(
        as_owner, "/ui/settings/limits", requests_per_minute="120", monthly_spend_cap="50.5"
    )
    assert answer.status_code == 303, answer.text
    api = (await client.get("/v1/limits", headers=admin.headers)).json()
    assert api["requests_per_minute"] == 120
    assert api["monthly_spend_cap"] == 50.5
    shown = (await as_owner.client.get("/ui/settings/limits")).text
    assert "Saved the usage limits." in shown
    assert "<dd data-spent>$1.25 of $50.5</dd>" in shown
    assert 'value="120"' in shown
    assert f"by {as_owner_email(tenant)}" in shown

    cleared = await post(
        as_owner, "/ui/settings/limits", requests_per_minute="", monthly_spend_cap=""
    )
    assert cleared.status_code == 303
    api = (await client.get("/v1/limits", headers=admin.headers)).json()
    assert api["requests_per_minute"] is None
    assert api["monthly_spend_cap"] is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"requests_per_minute": "0"}, "Requests per minute"),
        ({"requests_per_minute": "lots"}, "Requests per minute"),
        ({"monthly_spend_cap": "-5"}, "Monthly spending cap"),
    ],
)
async def test_bad_limits_say_which_field_and_save_nothing(app, tenant, as_owner, fields, field):
    answer = await post(
        as_owner,
        "/ui/settings/limits",
        **{"requests_per_minute": "", "monthly_spend_cap": ""} | fields,
    )
    assert answer.status_code == 422, answer.text
    assert f"<li>{field}: " in answer.text
    assert (await state_of(app, tenant.id))["limits"] == []


# Members and roles


async def test_members_are_listed_with_role_and_since(as_owner, viewer, tenant):
    shown = (await as_owner.client.get("/ui/settings/members")).text
    row = shown.split(f'data-member="{viewer.email}"')[1].split("</tr>")[0]
    assert '<span class="badge">viewer</span>' in row
    assert "UTC" in row
    owner_row = shown.split(f'data-member="{as_owner_email(tenant)}"')[1].split("</tr>")[0]
    assert "(you)" in owner_row
    assert "The only owner: make someone else an owner first." in owner_row
    assert "<form" not in owner_row  # what would be refused is not offered


async def test_a_new_member_gets_a_password_shown_once(app, tenant, as_owner):
    answer = await post(
        as_owner, "/ui/settings/members", email="  New.Person@Acme.example ", role="editor"
    )
    assert answer.status_code == 201, answer.text
    assert "it will not be shown again" in answer.text
    found = re.search(r'id="new-password"[^>]*value="([^"]+)"', answer.text)
    assert found is not None
    password = found.group(1)
    assert 'data-member="new.person@acme.example"' in answer.text
    assert await role_of(app, tenant.id, "new.person@acme.example") == "editor"
    event = await last_event(app, tenant.id)
    assert event["action"] == "membership.create"
    assert password not in str(event)

    listed = (await as_owner.client.get("/ui/settings/members")).text
    assert password not in listed
    assert 'data-member="new.person@acme.example"' in listed
    async with client_for(app) as browser:
        person = MemberFixture("new.person@acme.example", password, "editor")
        await sign_in(browser, person)


async def test_adding_someone_with_an_account_keeps_their_password(
    app, session, globex, as_owner, tenant
):
    await make_member(session, globex, "viewer", email="shared@example.com")
    answer = await post(as_owner, "/ui/settings/members", email="shared@example.com", role="viewer")
    assert answer.status_code == 303, answer.text
    listed = (await as_owner.client.get("/ui/settings/members")).text
    assert "they sign in with their own password" in listed
    assert 'id="new-password"' not in listed
    assert await role_of(app, tenant.id, "shared@example.com") == "viewer"


@pytest.mark.parametrize(
    ("email", "role", "status", "message"),
    [
        ("viewer@acme.example", "editor", 409, "<li>Email: viewer@acme.example is already"),
        ("not an email", "viewer", 422, "<li>Email: not an email address</li>"),
        ("someone@acme.example", "superuser", 422, "<li>Role: must be one of"),
    ],
)
async def test_adding_a_member_can_fail(
    app, tenant, viewer, as_owner, email, role, status, message
):
    before = await state_of(app, tenant.id)
    answer = await post(as_owner, "/ui/settings/members", email=email, role=role)
    assert answer.status_code == status, answer.text
    assert message in answer.text
    assert f'value="{email}"' in answer.text
    assert await state_of(app, tenant.id) == before


async def test_changing_a_role_is_audited_and_applies_at_once(app, tenant, viewer, as_owner):
    async with signed_in(app, viewer) as as_viewer:
        assert (await as_viewer.client.get("/ui/settings")).status_code == 403
        viewer_id = await user_id_of(app, viewer.email)
        answer = await post(as_owner, f"/ui/settings/members/{viewer_id}/role", role="admin")
        assert answer.status_code == 303, answer.text
        assert await role_of(app, tenant.id, viewer.email) == "admin"
        assert (await as_viewer.client.get("/ui/settings")).status_code == 200
        event = await last_event(app, tenant.id)
        assert event["action"] == "membership.update"
        assert event["target_id"] == str(viewer_id)
        assert event["before"] == {"email": viewer.email, "role": "viewer"}
        assert event["after"] == {"email": viewer.email, "role": "admin"}
        assert event["actor_name"] == as_owner_email(tenant)

        await post(as_owner, f"/ui/settings/members/{viewer_id}/role", role="viewer")
        assert (await as_viewer.client.get("/ui/settings")).status_code == 403


async def test_the_last_owner_cannot_be_demoted_or_removed(app, tenant, owner, as_owner):
    owner_id = await user_id_of(app, owner.email)
    before = await state_of(app, tenant.id)
    demoted = await post(as_owner, f"/ui/settings/members/{owner_id}/role", role="admin")
    assert demoted.status_code == 409
    assert "last owner" in demoted.text
    removed = await post(as_owner, f"/ui/settings/members/{owner_id}/remove")
    assert removed.status_code == 409
    assert "last owner" in removed.text
    assert await state_of(app, tenant.id) == before


async def test_with_a_second_owner_an_owner_may_step_down(app, session, tenant, owner, as_owner):
    second = await make_member(session, tenant, "owner", email="second@acme.example")
    second_id = await user_id_of(app, second.email)
    owner_id = await user_id_of(app, owner.email)
    answer = await post(as_owner, f"/ui/settings/members/{second_id}/role", role="editor")
    assert answer.status_code == 303
    await post(as_owner, f"/ui/settings/members/{second_id}/role", role="owner")
    assert await role_of(app, tenant.id, second.email) == "owner"
    answer = await post(as_owner, f"/ui/settings/members/{owner_id}/role", role="admin")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/settings/members"  # still an admin
    assert await role_of(app, tenant.id, owner.email) == "admin"
    # Stepping down further leaves the settings: back to the prompts.
    answer = await post(as_owner, f"/ui/settings/members/{owner_id}/role", role="viewer")
    assert answer.headers["location"] == "/ui/prompts"
    assert "is now viewer" in (await as_owner.client.get("/ui/prompts")).text


async def test_only_an_owner_may_make_change_or_remove_an_owner(
    app, session, tenant, owner, viewer, as_admin
):
    owner_id = await user_id_of(app, owner.email)
    viewer_id = await user_id_of(app, viewer.email)
    shown = (await as_admin.client.get("/ui/settings/members")).text
    assert '<option value="owner"' not in shown  # not offered
    owner_row = shown.split(f'data-member="{owner.email}"')[1].split("</tr>")[0]
    assert "<form" not in owner_row
    assert "Only an owner may change an owner." in owner_row

    before = await state_of(app, tenant.id)
    for url, data in [
        (f"/ui/settings/members/{viewer_id}/role", {"role": "owner"}),
        (f"/ui/settings/members/{owner_id}/role", {"role": "viewer"}),
        (f"/ui/settings/members/{owner_id}/remove", {}),
        ("/ui/settings/members", {"email": "boss@acme.example", "role": "owner"}),
    ]:
        answer = await post(as_admin, url, **data)
        assert answer.status_code == 403, (url, answer.text[:300])
        assert "Only an owner may" in answer.text
    assert await state_of(app, tenant.id) == before
    # What an admin may do, it may.
    answer = await post(as_admin, f"/ui/settings/members/{viewer_id}/role", role="editor")
    assert answer.status_code == 303


async def test_a_removed_member_is_signed_out_of_the_tenant_at_once(
    app, session, tenant, globex, viewer, editor, as_owner
):
    await make_member(session, globex, "viewer", email=editor.email)
    async with signed_in(app, viewer) as as_viewer, signed_in(app, editor) as as_editor:
        for member in (viewer, editor):
            user_id = await user_id_of(app, member.email)
            answer = await post(as_owner, f"/ui/settings/members/{user_id}/remove")
            assert answer.status_code == 303, answer.text
            event = await last_event(app, tenant.id)
            assert event["action"] == "membership.delete"
            assert event["before"] == {"email": member.email, "role": member.role}
            assert await role_of(app, tenant.id, member.email) is None

        # Only in acme: the next page asks to sign in, and a change is refused.
        answer = await as_viewer.client.get("/ui/prompts")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/ui/login")
        assert (await post(as_viewer, "/ui/settings/limits")).status_code == 401
        # Also in globex: carries on there, with globex's role.
        answer = await as_editor.client.get("/ui/prompts")
        assert answer.status_code == 200
        assert "Tenant globex" in answer.text
        assert 'class="role">viewer<' in answer.text
    listed = (await as_owner.client.get("/ui/settings/members")).text
    assert "Removed editor@acme.example from Tenant acme." in listed
    assert f'data-member="{viewer.email}"' not in listed


# The audit log


async def test_the_audit_log_shows_events_newest_first_with_their_changes(app, as_owner, tenant):
    await post(as_owner, "/ui/settings/limits", requests_per_minute="10", monthly_spend_cap="")
    await post(as_owner, "/ui/settings/limits", requests_per_minute="20", monthly_spend_cap="")
    await create_key(as_owner, "ci")
    shown = (await as_owner.client.get("/ui/settings/audit")).text
    assert shown.index("<code>api_key.create</code>") < shown.index("<code>usage_limits.set</code>")
    assert "<summary>Before and after</summary>" in shown
    assert "&#34;requests_per_minute&#34;: 10" in shown
    assert "&#34;requests_per_minute&#34;: 20" in shown
    assert as_owner_email(tenant) in shown
    assert "(user)" in shown

    filtered = (await as_owner.client.get("/ui/settings/audit?action=api_key.create")).text
    assert "<code>api_key.create</code>" in filtered
    assert "<code>usage_limits.set</code>" not in filtered
    by_target = (await as_owner.client.get("/ui/settings/audit?target_type=usage_limits")).text
    assert by_target.count("<code>usage_limits.set</code>") == 2
    none = (await as_owner.client.get("/ui/settings/audit?action=nothing.happened")).text
    assert "No events match these filters." in none


async def test_the_audit_log_pages_through_older_events(app, session, tenant, as_owner):
    for number in range(55):
        await audit.record(
            session,
            tenant_id=tenant.id,
            actor=OPERATOR,
            action="model_price.set",
            target_type="model",
            target_id=f"model-{number}",
        )
    await commit(session)
    first = (await as_owner.client.get("/ui/settings/audit?action=model_price.set")).text
    assert "<code>model-54</code>" in first
    assert "<code>model-4</code>" not in first
    older = re.search(r'href="(/ui/settings/audit\?[^"]+)">Older events', first)
    assert older is not None
    second = (await as_owner.client.get(older.group(1).replace("&amp;", "&"))).text
    assert "<code>model-4</code>" in second
    assert "<code>model-0</code>" in second
    assert "<code>model-54</code>" not in second
    assert "Older events" not in second
    bad = await as_owner.client.get("/ui/settings/audit?cursor=nonsense")
    assert bad.status_code == 422
