"""Prompts as data over the API: versions, labels, history, diff, and their rules."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import make_key
from tests.helpers import assert_names_field, assert_problem, cursor_of, walk_pages

TRIAGE = {
    "messages": [
        {"role": "system", "content": "You triage support tickets for {{ company }}."},
        {"role": "user", "content": "Ticket: {{ ticket }}"},
    ],
    "model": {"name": "gpt-4o-mini", "temperature": 0.2},
    "commit_message": "first cut",
}


@pytest.fixture
async def writer(session, tenant):
    return await make_key(session, tenant, ["write"], name="editor")


async def create(client, headers, name="triage", version=None, **fields) -> dict[str, Any]:
    body = {"name": name, **fields}
    if version is not None:
        body["version"] = version
    response = await client.post("/v1/prompts", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def new_version(client, headers, name="triage", **changes) -> dict[str, Any]:
    response = await client.post(
        f"/v1/prompts/{name}/versions", headers=headers, json={**TRIAGE, **changes}
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


async def move(client, headers, label, version, expected, name="triage"):
    return await client.put(
        f"/v1/prompts/{name}/labels/{label}",
        headers=headers,
        json={"version": version, "expected_version": expected},
    )


# Prompts and versions


async def test_creating_a_prompt_with_a_first_version(client, writer):
    body = await create(client, writer.headers, version=TRIAGE, description="Routes tickets")
    assert body["name"] == "triage"
    assert body["kind"] == "chat"
    assert body["latest_version"] == 1
    assert body["labels"] == {}
    assert body["protected_labels"] == ["production"]
    assert body["version"]["version"] == 1
    assert body["version"]["messages"] == TRIAGE["messages"]
    assert body["version"]["author"] == "editor"
    assert len(body["version"]["content_hash"]) == 64


async def test_versions_are_numbered_and_identical_content_creates_nothing(client, writer):
    await create(client, writer.headers, version=TRIAGE)
    changed = [{"role": "user", "content": "Ticket {{ ticket }} from {{ company }}"}]
    second = await client.post(
        "/v1/prompts/triage/versions", headers=writer.headers, json={**TRIAGE, "messages": changed}
    )
    assert second.status_code == 201
    assert second.json()["version"] == 2
    again = await client.post(
        "/v1/prompts/triage/versions",
        headers=writer.headers,
        json={**TRIAGE, "messages": changed, "commit_message": "same content"},
    )
    assert again.status_code == 200
    assert again.json()["version"] == 2
    listed = (await client.get("/v1/prompts/triage/versions", headers=writer.headers)).json()
    assert [v["version"] for v in listed["items"]] == [2, 1]


async def test_a_version_is_immutable_and_readable_by_number(client, writer):
    await create(client, writer.headers, version=TRIAGE)
    await new_version(client, writer.headers, model={"name": "gpt-4o", "temperature": 0})
    first = (await client.get("/v1/prompts/triage/versions/1", headers=writer.headers)).json()
    assert first["model"] == {
        "name": "gpt-4o-mini",
        "temperature": 0.2,
        "fallbacks": [],
        "provider": None,
        "max_tokens": None,
        "repair": False,
    }
    missing = await client.get("/v1/prompts/triage/versions/9", headers=writer.headers)
    assert_problem(missing, 404)


async def test_prompt_names_are_unique_per_tenant_and_validated(client, writer):
    await create(client, writer.headers)
    assert_problem(
        await client.post("/v1/prompts", headers=writer.headers, json={"name": "triage"}), 409
    )
    for bad in ["Triage", "has space", "", "-lead", "x" * 101, "a/b"]:
        response = await client.post("/v1/prompts", headers=writer.headers, json={"name": bad})
        assert_names_field(assert_problem(response, 422), "body.name")


async def test_chat_and_context_prompts_hold_the_right_content(client, writer):
    await create(client, writer.headers, name="policy", kind="context")
    bad = await client.post(
        "/v1/prompts/policy/versions", headers=writer.headers, json={"messages": TRIAGE["messages"]}
    )
    assert_problem(bad, 422)
    await create(client, writer.headers, name="chatty")
    bad = await client.post(
        "/v1/prompts/chatty/versions", headers=writer.headers, json={"template": "Hello"}
    )
    assert_problem(bad, 422)


async def test_reading_needs_read_scope_and_writing_needs_write(client, session, tenant, writer):
    await create(client, writer.headers, version=TRIAGE)
    runner = await make_key(session, tenant, ["run"])
    reader = await make_key(session, tenant, ["read"])
    assert_problem(await client.get("/v1/prompts", headers=runner.headers), 403)
    assert (await client.get("/v1/prompts", headers=reader.headers)).status_code == 200
    response = await client.post("/v1/prompts/triage/versions", headers=reader.headers, json=TRIAGE)
    assert_problem(response, 403)
    assert_problem(await move(client, reader.headers, "staging", 1, None), 403)


async def test_listing_paginates_searches_and_hides_archived(client, writer):
    for name in ["alpha", "bravo", "charlie", "delta"]:
        await create(client, writer.headers, name=name, description=f"about {name}")
    items, pages = await walk_pages(client, "/v1/prompts", writer.headers, limit=3)
    assert [p["name"] for p in items] == ["alpha", "bravo", "charlie", "delta"]
    assert pages == 2
    found = (await client.get("/v1/prompts", headers=writer.headers, params={"q": "char"})).json()
    assert [p["name"] for p in found["items"]] == ["charlie"]
    assert (await client.delete("/v1/prompts/bravo", headers=writer.headers)).status_code == 204
    listed = (await client.get("/v1/prompts", headers=writer.headers)).json()
    assert "bravo" not in [p["name"] for p in listed["items"]]
    archived = await client.get("/v1/prompts/bravo", headers=writer.headers)
    assert archived.json()["archived"] is True


async def test_patch_changes_description_and_protected_labels(client, admin):
    await create(client, admin.headers)
    response = await client.patch(
        "/v1/prompts/triage",
        headers=admin.headers,
        json={"description": "new", "protected_labels": ["prod", "eu"]},
    )
    assert response.status_code == 200
    assert response.json()["description"] == "new"
    assert response.json()["protected_labels"] == ["eu", "prod"]
    unknown = await client.patch("/v1/prompts/triage", headers=admin.headers, json={"x": 1})
    assert_problem(unknown, 422)


# Labels


async def test_moving_a_label_deploys_and_moving_back_rolls_back(client, admin):
    await create(client, admin.headers, version=TRIAGE)
    await new_version(
        client,
        admin.headers,
        commit_message="v2",
        messages=[{"role": "user", "content": "v2 {{ ticket }}"}],
    )
    assert (await move(client, admin.headers, "production", 1, None)).status_code == 200
    deployed = await move(client, admin.headers, "production", 2, 1)
    assert deployed.status_code == 200
    assert deployed.json()["version"] == 2
    assert deployed.headers["etag"] == '"2"'
    rolled_back = await move(client, admin.headers, "production", 1, 2)
    assert rolled_back.json()["version"] == 1
    history = (
        await client.get("/v1/prompts/triage/labels/production/history", headers=admin.headers)
    ).json()["items"]
    assert [(h["from_version"], h["to_version"]) for h in history] == [(2, 1), (1, 2), (None, 1)]
    assert {h["actor"] for h in history} == {"deployer"}
    prompt = (await client.get("/v1/prompts/triage", headers=admin.headers)).json()
    assert prompt["labels"] == {"production": 1}


async def test_moving_label_with_stale_expected_version_conflicts(client, writer):
    await create(client, writer.headers, version=TRIAGE)
    await new_version(
        client, writer.headers, messages=[{"role": "user", "content": "{{ ticket }}"}]
    )
    assert (await move(client, writer.headers, "staging", 1, None)).status_code == 200
    stale = await move(client, writer.headers, "staging", 2, None)
    assert_problem(stale, 409)
    assert "points at version 1" in stale.json()["detail"]
    assert_problem(await move(client, writer.headers, "staging", 2, 2), 409)
    label = await client.get("/v1/prompts/triage/labels/staging", headers=writer.headers)
    assert label.json()["version"] == 1


async def test_if_match_carries_the_expected_version(client, writer):
    await create(client, writer.headers, version=TRIAGE)
    await new_version(
        client, writer.headers, messages=[{"role": "user", "content": "{{ ticket }}"}]
    )
    await move(client, writer.headers, "staging", 1, None)
    etag = (await client.get("/v1/prompts/triage/labels/staging", headers=writer.headers)).headers[
        "etag"
    ]
    moved = await client.put(
        "/v1/prompts/triage/labels/staging",
        headers={**writer.headers, "If-Match": etag},
        json={"version": 2},
    )
    assert moved.status_code == 200
    stale = await client.put(
        "/v1/prompts/triage/labels/staging",
        headers={**writer.headers, "If-Match": etag},
        json={"version": 1},
    )
    assert_problem(stale, 409)
    neither = await client.put(
        "/v1/prompts/triage/labels/staging", headers=writer.headers, json={"version": 1}
    )
    assert_problem(neither, 428)


async def test_protected_label_needs_admin(client, writer, admin):
    await create(client, writer.headers, version=TRIAGE)
    refused = await move(client, writer.headers, "production", 1, None)
    assert_problem(refused, 403)
    assert (await move(client, admin.headers, "production", 1, None)).status_code == 200
    # Not protected any more: an editor may move it.
    await client.patch("/v1/prompts/triage", headers=admin.headers, json={"protected_labels": []})
    await new_version(
        client, writer.headers, messages=[{"role": "user", "content": "{{ ticket }}"}]
    )
    assert (await move(client, writer.headers, "production", 2, 1)).status_code == 200


async def test_only_admin_may_change_protection_or_archive_a_deployed_prompt(client, writer, admin):
    await create(client, writer.headers, version=TRIAGE)
    unprotect = await client.patch(
        "/v1/prompts/triage", headers=writer.headers, json={"protected_labels": []}
    )
    assert_problem(unprotect, 403)
    assert (await move(client, admin.headers, "production", 1, None)).status_code == 200
    assert_problem(await client.delete("/v1/prompts/triage", headers=writer.headers), 403)
    prompt = (await client.get("/v1/prompts/triage", headers=writer.headers)).json()
    assert prompt["protected_labels"] == ["production"]
    assert prompt["archived"] is False
    # A description is anyone's to change, and an admin may archive.
    described = await client.patch(
        "/v1/prompts/triage", headers=writer.headers, json={"description": "updated"}
    )
    assert described.status_code == 200
    assert (await client.delete("/v1/prompts/triage", headers=admin.headers)).status_code == 204


async def test_label_rules(client, writer):
    await create(client, writer.headers, version=TRIAGE)
    assert_problem(await move(client, writer.headers, "latest", 1, None), 422)
    assert_problem(await move(client, writer.headers, "staging", 5, None), 404)
    assert_problem(await move(client, writer.headers, "Bad Label", 1, None), 422)
    latest = await client.get("/v1/prompts/triage/labels/latest", headers=writer.headers)
    assert latest.json()["version"] == 1
    assert_problem(await client.get("/v1/prompts/triage/labels/nope", headers=writer.headers), 404)


async def test_label_moves_are_audited(client, admin):
    await create(client, admin.headers, version=TRIAGE)
    await move(client, admin.headers, "production", 1, None)
    events = (
        await client.get("/v1/audit", headers=admin.headers, params={"action": "prompt.label.move"})
    ).json()["items"]
    assert events[0]["before"] == {"label": "production", "version": None}
    assert events[0]["after"] == {"label": "production", "version": 1}
    assert events[0]["actor"]["name"] == "deployer"


# Diff


async def test_diff_shows_message_and_settings_changes(client, writer):
    await create(client, writer.headers, version=TRIAGE)
    await new_version(
        client,
        writer.headers,
        messages=[TRIAGE["messages"][0], {"role": "user", "content": "Ticket: {{ ticket }}!"}],
        model={"name": "gpt-4o"},
    )
    diff = (
        await client.get(
            "/v1/prompts/triage/diff", headers=writer.headers, params={"from": 1, "to": 2}
        )
    ).json()
    assert diff["from"] == 1
    assert diff["to"] == 2
    assert [m["index"] for m in diff["messages"]] == [1]
    assert "-Ticket: {{ ticket }}" in diff["messages"][0]["diff"]
    assert "+Ticket: {{ ticket }}!" in diff["messages"][0]["diff"]
    assert [s["field"] for s in diff["settings"]] == ["model"]
    assert diff["settings"][0]["to"]["name"] == "gpt-4o"


async def test_concurrent_creates_of_one_name_make_one_prompt(app, admin):
    import asyncio

    from tests.conftest import client_for

    async def attempt() -> int:
        async with client_for(app) as http:
            response = await http.post("/v1/prompts", headers=admin.headers, json={"name": "race"})
            return response.status_code

    statuses = await asyncio.gather(*(attempt() for _ in range(6)))
    assert sorted(statuses) == [201, 409, 409, 409, 409, 409]


async def test_concurrent_versions_and_label_moves_serialize(app, client, admin):
    import asyncio

    from tests.conftest import client_for

    await create(client, admin.headers, version=TRIAGE)

    async def version(i: int) -> int:
        async with client_for(app) as http:
            body = {**TRIAGE, "messages": [{"role": "user", "content": f"v{i} {{{{ ticket }}}}"}]}
            response = await http.post(
                "/v1/prompts/triage/versions", headers=admin.headers, json=body
            )
            assert response.status_code == 201, response.text
            return response.json()["version"]

    numbers = await asyncio.gather(*(version(i) for i in range(8)))
    assert sorted(numbers) == list(range(2, 10))

    async def deploy(target: int) -> int:
        async with client_for(app) as http:
            response = await move(http, admin.headers, "production", target, None)
            return response.status_code

    statuses = await asyncio.gather(*(deploy(n) for n in range(2, 8)))
    assert sorted(statuses) == [200, 409, 409, 409, 409, 409]


async def test_out_of_range_numbers_and_odd_preconditions_answer_422(client, writer):
    await create(client, writer.headers, version=TRIAGE)
    too_big = await move(client, writer.headers, "staging", 2**31, None)
    assert_names_field(assert_problem(too_big, 422), "body.version")
    for etag in ['"²"', '"0"', f'"{2**31}"', "abc"]:
        response = await client.put(
            "/v1/prompts/triage/labels/staging",
            headers={**writer.headers, "If-Match": etag.encode()},
            json={"version": 1},
        )
        assert_names_field(assert_problem(response, 422), "header.If-Match")
    for values in [[2**40], [-(2**40)], [0]]:
        response = await client.get(
            "/v1/prompts/triage/versions",
            headers=writer.headers,
            params={"cursor": cursor_of(values)},
        )
        assert_names_field(assert_problem(response, 422), "query.cursor")
    for values in [["a\u0000"], ["\ud800"]]:
        response = await client.get(
            "/v1/prompts", headers=writer.headers, params={"cursor": cursor_of(values)}
        )
        assert_names_field(assert_problem(response, 422), "query.cursor")


async def test_diff_of_huge_messages_summarizes_instead_of_stalling(client, writer):
    import time

    huge = "\n".join(f"{i % 97:02x}" for i in range(15000))
    await create(client, writer.headers, version={"messages": [{"role": "user", "content": huge}]})
    await new_version(
        client,
        writer.headers,
        messages=[{"role": "user", "content": huge[::-1]}],
        input_schema=None,
    )
    started = time.perf_counter()
    response = await client.get(
        "/v1/prompts/triage/diff", headers=writer.headers, params={"from": 1, "to": 2}
    )
    assert time.perf_counter() - started < 1
    assert "too long to diff line by line" in response.json()["messages"][0]["diff"]


async def test_a_costly_schema_is_checked_off_the_event_loop(app, client, writer):
    import asyncio
    import json
    import time

    body = json.dumps(
        {
            "name": "costly",
            "version": {
                "messages": [{"role": "user", "content": "hi"}],
                "response_format": {"allOf": [{}] * 20000},
            },
        }
    )
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    started = time.perf_counter()
    response = await client.post(
        "/v1/prompts", headers={**writer.headers, "content-type": "application/json"}, content=body
    )
    elapsed = time.perf_counter() - started
    ticking.cancel()
    assert response.status_code in (201, 422), response.text
    assert elapsed < 2.5
    assert max(gaps) < 0.3, "the event loop stalled while the schema was checked"
