"""Rendering over the API: variables, includes, versions used, limits, and propagation."""

from __future__ import annotations

import asyncio
import time

import pytest

from promptlogic.app import create_app
from tests.conftest import client_for, running
from tests.factories import make_key
from tests.helpers import assert_names_field, assert_problem

POLICY = "Refunds within {{ refund_days }} days. Be polite."
TRIAGE = {
    "messages": [
        {"role": "system", "content": 'Policy: {% include "company-policy" %}'},
        {"role": "user", "content": "Ticket from {{ customer }}: {{ ticket }}"},
    ],
    "input_schema": {
        "type": "object",
        "properties": {
            "customer": {"type": "string"},
            "ticket": {"type": "string", "minLength": 1},
            "refund_days": {"type": "integer"},
        },
        "required": ["ticket", "refund_days"],
    },
}
VARIABLES = {"customer": "Ada", "ticket": "Where is my order?", "refund_days": 30}


@pytest.fixture
async def runner(session, tenant):
    return await make_key(session, tenant, ["run", "read"], name="app")


async def post(client, headers, path, body, expected=(200, 201)):
    response = await client.post(path, headers=headers, json=body)
    assert response.status_code in expected, response.text
    return response.json()


async def move(client, headers, name, label, version, expected):
    response = await client.put(
        f"/v1/prompts/{name}/labels/{label}",
        headers=headers,
        json={"version": version, "expected_version": expected},
    )
    assert response.status_code == 200, response.text


async def setup_triage(client, admin) -> None:
    await post(
        client,
        admin.headers,
        "/v1/prompts",
        {"name": "company-policy", "kind": "context", "version": {"template": POLICY}},
    )
    await move(client, admin.headers, "company-policy", "production", 1, None)
    await post(client, admin.headers, "/v1/prompts", {"name": "triage", "version": TRIAGE})
    await move(client, admin.headers, "triage", "production", 1, None)


async def render(client, headers, body, name="triage"):
    return await client.post(f"/v1/prompts/{name}/render", headers=headers, json=body)


async def test_render_fills_variables_and_includes_and_reports_versions(client, admin, runner):
    await setup_triage(client, admin)
    response = await render(client, runner.headers, {"variables": VARIABLES})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["messages"] == [
        {"role": "system", "content": "Policy: Refunds within 30 days. Be polite."},
        {"role": "user", "content": "Ticket from Ada: Where is my order?"},
    ]
    assert body["version"] == 1
    assert body["label"] == "production"
    assert body["versions_used"] == [
        {"prompt": "triage", "version": 1},
        {"prompt": "company-policy", "version": 1},
    ]


async def test_invalid_variables_answer_422_naming_each(client, admin, runner):
    await setup_triage(client, admin)
    response = await render(
        client, runner.headers, {"variables": {"ticket": "", "refund_days": "thirty"}}
    )
    body = assert_problem(response, 422)
    assert_names_field(body, "variables.ticket")
    assert_names_field(body, "variables.refund_days")


async def test_without_a_schema_every_used_variable_is_a_required_string(client, admin, runner):
    await post(
        client,
        admin.headers,
        "/v1/prompts",
        {"name": "greet", "version": {"messages": [{"role": "user", "content": "Hi {{ name }}"}]}},
    )
    ok = await render(
        client, runner.headers, {"version": 1, "variables": {"name": "Ada"}}, name="greet"
    )
    assert ok.json()["messages"][0]["content"] == "Hi Ada"
    missing = await render(client, runner.headers, {"version": 1, "variables": {}}, name="greet")
    assert_names_field(assert_problem(missing, 422), "variables.name")


async def test_render_by_version_or_label_and_404s(client, admin, runner):
    await setup_triage(client, admin)
    changed = {**TRIAGE, "messages": [{"role": "user", "content": "v2 {{ ticket }}"}]}
    await post(client, admin.headers, "/v1/prompts/triage/versions", changed)
    v2 = await render(client, runner.headers, {"version": 2, "variables": VARIABLES})
    assert v2.json()["messages"] == [{"role": "user", "content": "v2 Where is my order?"}]
    assert v2.json()["label"] is None
    prod = await render(client, runner.headers, {"variables": VARIABLES})
    assert prod.json()["version"] == 1
    assert_problem(await render(client, runner.headers, {"label": "staging"}), 404)
    assert_problem(await render(client, runner.headers, {"version": 7}), 404)
    assert_problem(await render(client, runner.headers, {}, name="nope"), 404)
    both = await render(client, runner.headers, {"label": "production", "version": 1})
    assert_problem(both, 422)


async def test_render_needs_run_scope(client, session, tenant, admin):
    await setup_triage(client, admin)
    reader = await make_key(session, tenant, ["read", "write"])
    assert_problem(await render(client, reader.headers, {"variables": VARIABLES}), 403)


async def test_include_with_a_label_and_default_fallback_to_latest(client, admin, runner):
    await post(
        client,
        admin.headers,
        "/v1/prompts",
        {"name": "tone", "kind": "context", "version": {"template": "calm"}},
    )
    await post(client, admin.headers, "/v1/prompts/tone/versions", {"template": "cheerful"})
    await move(client, admin.headers, "tone", "staging", 1, None)
    await post(
        client,
        admin.headers,
        "/v1/prompts",
        {
            "name": "mixed",
            "version": {
                "messages": [
                    {
                        "role": "system",
                        "content": '{% include "tone" %}/{% include "tone@staging" %}',
                    }
                ]
            },
        },
    )
    body = (await render(client, runner.headers, {"version": 1}, name="mixed")).json()
    # No production label on `tone`: the bare include falls back to its latest version.
    assert body["messages"][0]["content"] == "cheerful/calm"
    assert {"prompt": "tone", "version": 2} in body["versions_used"]
    assert {"prompt": "tone", "version": 1} in body["versions_used"]


async def test_saving_refuses_template_errors_with_their_line(client, admin):
    await post(client, admin.headers, "/v1/prompts", {"name": "broken"})
    response = await client.post(
        "/v1/prompts/broken/versions",
        headers=admin.headers,
        json={"messages": [{"role": "user", "content": "fine\n{% if x %}never closed"}]},
    )
    body = assert_problem(response, 422)
    assert_names_field(body, "body.messages.0.content")
    assert "line" in body["errors"][0]["message"]


async def test_saving_refuses_unknown_includes_and_undeclared_variables(client, admin):
    await post(client, admin.headers, "/v1/prompts", {"name": "p"})
    unknown = await client.post(
        "/v1/prompts/p/versions",
        headers=admin.headers,
        json={"messages": [{"role": "user", "content": '{% include "ghost" %}'}]},
    )
    assert "ghost" in assert_problem(unknown, 422)["detail"]
    undeclared = await client.post(
        "/v1/prompts/p/versions",
        headers=admin.headers,
        json={
            "messages": [{"role": "user", "content": "{{ a }} {{ b }}"}],
            "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}},
        },
    )
    body = assert_problem(undeclared, 422)
    assert_names_field(body, "body.input_schema")
    assert "`b`" in body["detail"]
    bad_schema = await client.post(
        "/v1/prompts/p/versions",
        headers=admin.headers,
        json={
            "messages": [{"role": "user", "content": "hi"}],
            "input_schema": {"type": "object", "properties": {"a": {"type": "strung"}}},
        },
    )
    assert_names_field(assert_problem(bad_schema, 422), "body.input_schema")


async def test_include_cycles_are_refused_when_saving(client, admin):
    await post(
        client,
        admin.headers,
        "/v1/prompts",
        {"name": "a", "kind": "context", "version": {"template": "A"}},
    )
    await post(
        client,
        admin.headers,
        "/v1/prompts",
        {"name": "b", "kind": "context", "version": {"template": 'B {% include "a" %}'}},
    )
    cycle = await client.post(
        "/v1/prompts/a/versions", headers=admin.headers, json={"template": 'A {% include "b" %}'}
    )
    assert "cycle" in assert_problem(cycle, 422)["detail"]
    itself = await client.post(
        "/v1/prompts/a/versions", headers=admin.headers, json={"template": 'A {% include "a" %}'}
    )
    assert "cycle" in assert_problem(itself, 422)["detail"]


async def test_a_missing_variable_in_the_template_is_a_422_naming_it(client, admin, runner):
    await post(
        client,
        admin.headers,
        "/v1/prompts",
        {
            "name": "loose",
            "version": {
                "messages": [{"role": "user", "content": "{{ a }}{{ b }}"}],
                "input_schema": {"type": "object", "properties": {"a": {}, "b": {}}},
            },
        },
    )
    response = await render(
        client, runner.headers, {"version": 1, "variables": {"a": "x"}}, name="loose"
    )
    assert "b" in assert_problem(response, 422)["detail"]


@pytest.mark.parametrize(
    ("template", "limit"),
    [
        ("{% for i in range(100000000) %}x{% endfor %}", "range"),
        ("{{ 'a' * 1000000000 }}", "output"),
        ("{% for a in range(5000) %}{% for b in range(5000) %}{{ a }}{% endfor %}{% endfor %}", ""),
    ],
)
async def test_render_limits_answer_422_quickly(client, admin, runner, template, limit):
    await post(
        client,
        admin.headers,
        "/v1/prompts",
        {
            "name": "heavy",
            "version": {
                "messages": [{"role": "user", "content": template}],
                "input_schema": {"type": "object"},
            },
        },
    )
    started = time.perf_counter()
    response = await render(client, runner.headers, {"version": 1}, name="heavy")
    assert time.perf_counter() - started < 2.5
    body = assert_problem(response, 422)
    assert limit in body["detail"].lower()


async def test_label_moved_on_one_instance_is_served_by_another_within_100ms(
    app, client, admin, runner
):
    await setup_triage(client, admin)
    changed = {**TRIAGE, "messages": [{"role": "user", "content": "v2 {{ ticket }}"}]}
    await post(client, admin.headers, "/v1/prompts/triage/versions", changed)
    async with running(create_app(app.state.settings)) as other_app, client_for(other_app) as other:
        first = await render(other, runner.headers, {"variables": VARIABLES})
        assert first.json()["version"] == 1  # now cached on the other instance
        await move(client, admin.headers, "triage", "production", 2, 1)
        moved_at = time.perf_counter()
        while True:
            served = (await render(other, runner.headers, {"variables": VARIABLES})).json()
            if served["version"] == 2:
                break
            assert time.perf_counter() - moved_at < 0.1, "the other instance still serves v1"
            await asyncio.sleep(0.002)


async def test_rendering_from_cache_makes_no_database_query(app, client, admin, runner):
    from sqlalchemy import event

    await setup_triage(client, admin)
    assert (await render(client, runner.headers, {"variables": VARIABLES})).status_code == 200
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(3):
            assert (
                await render(client, runner.headers, {"variables": VARIABLES})
            ).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert statements == []


async def test_a_listener_reconnect_drops_every_cached_plan(app, client, admin, runner, pg):
    from sqlalchemy import make_url

    from promptlogic.db.notify import LISTENER_APPLICATION_NAME

    await setup_triage(client, admin)
    assert (await render(client, runner.headers, {"variables": VARIABLES})).status_code == 200
    assert len(app.state.plan_cache) >= 1
    database = make_url(app.state.settings.database_url).database
    await pg.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = $1 AND datname = $2",
        LISTENER_APPLICATION_NAME,
        database,
    )
    deadline = time.perf_counter() + 5
    while len(app.state.plan_cache) or not app.state.listener.connected:
        assert time.perf_counter() < deadline, "the plan survived a lost listener"
        await asyncio.sleep(0.02)
    assert (await render(client, runner.headers, {"variables": VARIABLES})).status_code == 200


async def test_text_a_template_builds_but_json_cannot_carry_comes_out_replaced(
    client, admin, runner
):
    await post(
        client,
        admin.headers,
        "/v1/prompts",
        {
            "name": "odd",
            "version": {
                "messages": [{"role": "user", "content": '{{ "%c" % 55296 }}|{{ "%c" % 0 }}'}],
                "input_schema": {"type": "object"},
            },
        },
    )
    response = await render(client, runner.headers, {"version": 1}, name="odd")
    assert response.status_code == 200, response.text
    assert response.json()["messages"][0]["content"] == "\ufffd|\ufffd"


async def test_a_fan_out_of_labelled_includes_saves_and_renders_quickly(client, admin, runner):
    labels = [f"l{i}" for i in range(12)]

    async def context(name: str, template: str) -> None:
        await post(
            client,
            admin.headers,
            "/v1/prompts",
            {"name": name, "kind": "context", "version": {"template": template}},
        )
        for label in labels:
            await move(client, admin.headers, name, label, 1, None)

    await context("leaf", "x")
    await context("mid", "".join(f'{{% include "leaf@{label}" %}}' for label in labels))
    await context("top", "".join(f'{{% include "mid@{label}" %}}' for label in labels))
    fan = "".join(f'{{% include "top@{label}" %}}' for label in labels)
    started = time.perf_counter()
    await post(
        client,
        admin.headers,
        "/v1/prompts",
        {"name": "root", "version": {"messages": [{"role": "user", "content": fan}]}},
    )
    assert time.perf_counter() - started < 2
    rendered = await render(client, runner.headers, {"version": 1}, name="root")
    assert rendered.json()["messages"][0]["content"] == "x" * 12**3


async def test_more_than_fifty_different_includes_are_refused(client, admin):
    labels = [f"l{i}" for i in range(51)]
    await post(
        client,
        admin.headers,
        "/v1/prompts",
        {"name": "many", "kind": "context", "version": {"template": "x"}},
    )
    for label in labels:
        await move(client, admin.headers, "many", label, 1, None)
    fan = "".join(f'{{% include "many@{label}" %}}' for label in labels)
    response = await client.post(
        "/v1/prompts",
        headers=admin.headers,
        json={"name": "wide", "version": {"messages": [{"role": "user", "content": fan}]}},
    )
    assert "more than 50 different includes" in assert_problem(response, 422)["detail"]


async def test_an_archived_context_template_is_neither_included_nor_served(client, admin, runner):
    await setup_triage(client, admin)
    assert (
        await client.delete("/v1/prompts/company-policy", headers=admin.headers)
    ).status_code == 204
    response = await render(client, runner.headers, {"variables": VARIABLES})
    assert "archived" in assert_problem(response, 422)["detail"]
    saving = await client.post(
        "/v1/prompts",
        headers=admin.headers,
        json={
            "name": "new",
            "version": {
                "messages": [{"role": "user", "content": '{% include "company-policy" %}'}]
            },
        },
    )
    assert "archived" in assert_problem(saving, 422)["detail"]
