"""Every UI route's access rules, found by walking the UI app's routes (so a new page cannot
forget them): no session → sign in; a viewer changes nothing; a rule author reaches nothing
outside the rules area; no CSRF token → refused; another tenant's prompt → not found."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount

from promptlogic.app import create_app
from tests.conftest import client_for, make_settings
from tests.factories import make_key, make_tenant
from tests.runs.support import make_prompt

# Any signed-in member may sign out and switch tenants; anyone may sign in.
OPEN = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/"),
    ("POST", "/logout"),
    ("POST", "/tenant"),
}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
OTHER_TENANTS_PROMPT = "secret-plan"


def _flattened(routes: list[Any]) -> list[Any]:
    """Routes, with included routers (FastAPI keeps them whole) opened, at any depth; the UI
    includes them without a prefix."""
    found = []
    for entry in routes:
        included = getattr(entry, "original_router", None)
        found += _flattened(included.routes) if included is not None else [entry]
    return found


def ui_routes() -> list[tuple[str, str]]:
    """(method, path) of every UI route, paths relative to /ui."""
    app = create_app(make_settings("postgresql+asyncpg://unused/unused"))
    mount = next(r for r in app.routes if isinstance(r, Mount) and r.path == "/ui")
    return sorted(
        (method, route.path)
        for route in _flattened(mount.app.routes)  # type: ignore[attr-defined]
        if isinstance(route, APIRoute)
        for method in route.methods
        if method != "HEAD"
    )


ROUTES = ui_routes()
GUARDED = [route for route in ROUTES if route not in OPEN]
UNSAFE_ROUTES = [route for route in GUARDED if route[0] in UNSAFE]
OUTSIDE_RULES = [route for route in GUARDED if not re.match(r"/rules(/|$)", route[1])]


def fill(path: str, name: str = OTHER_TENANTS_PROMPT) -> str:
    """A concrete URL for a route: the prompt `name`, `production`, version 1, unknown ids."""
    values = {"name": name, "label": "production", "number": "1"}

    def value(match: re.Match[str]) -> str:
        return values.get(match[1], str(uuid.uuid4()))

    return "/ui" + re.sub(r"\{(\w+)(?::\w+)?\}", value, path)


def test_the_walk_finds_the_pages():
    assert ("GET", "/prompts") in ROUTES
    assert ("POST", "/settings/members/{user_id}/role") in UNSAFE_ROUTES
    assert ("POST", "/prompts/{name}/labels/{label}/move") in UNSAFE_ROUTES
    assert ("GET", "/rules/prompt/{name}") in GUARDED
    assert ("GET", "/rules") not in OUTSIDE_RULES
    assert ("POST", "/evals-new") in UNSAFE_ROUTES
    assert ("POST", "/datasets/{dataset}/import") in UNSAFE_ROUTES


@pytest.mark.parametrize(("method", "path"), GUARDED)
async def test_without_a_session_nothing_is_shown_or_done(app, clean, method, path):
    async with client_for(app) as client:
        answer = await client.request(method, fill(path))
    if method == "GET":
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/ui/login?next=")
    else:
        assert answer.status_code == 401


@pytest.mark.parametrize(("method", "path"), UNSAFE_ROUTES)
async def test_a_viewer_changes_nothing(as_viewer, client, admin, method, path):
    await make_prompt(client, admin, "triage")
    answer = await as_viewer.client.request(
        method, fill(path, "triage"), data={"csrf_token": as_viewer.csrf}
    )
    assert answer.status_code == 403, answer.text[:300]


@pytest.mark.parametrize(("method", "path"), OUTSIDE_RULES)
async def test_a_rule_author_reaches_nothing_outside_the_rules_area(
    as_rule_author, client, admin, method, path
):
    await make_prompt(client, admin, "triage")
    answer = await as_rule_author.client.request(
        method, fill(path, "triage"), data={"csrf_token": as_rule_author.csrf}
    )
    assert answer.status_code == 403, answer.text[:300]


@pytest.mark.parametrize(("method", "path"), UNSAFE_ROUTES)
async def test_no_csrf_token_no_change(as_owner, client, admin, method, path):
    await make_prompt(client, admin, "triage")
    answer = await as_owner.client.request(method, fill(path, "triage"), data={"x": "1"})
    assert answer.status_code == 403, answer.text[:300]


@pytest.mark.parametrize(("method", "path"), [r for r in GUARDED if "{name}" in r[1]])
async def test_another_tenants_prompt_is_not_found(as_owner, session, client, method, path):
    other = await make_tenant(session, "globex")
    key = await make_key(session, other, ["admin"], name="globex-deployer")
    await make_prompt(client, key, OTHER_TENANTS_PROMPT)
    headers = {"X-CSRF-Token": as_owner.csrf}
    url = fill(path) + "?version=1&label=production"
    if path.endswith(("/preview", "/run")):
        headers["Accept"] = "application/json"
        answer = await as_owner.client.request(method, url, headers=headers, json={"variables": {}})
    else:
        answer = await as_owner.client.request(method, url, headers=headers, data={"version": "1"})
    assert answer.status_code == 404, answer.text[:300]
