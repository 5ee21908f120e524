"""The prompt pages over HTTP: lists, a prompt, a version, diff, moving a label, rollback,
and who may do what."""

from __future__ import annotations

from sqlalchemy import text

from tests.factories import make_key, make_tenant
from tests.runs.support import TICKET, make_prompt
from tests.ui.support import csrf_of


async def add_version(client, admin, name: str, system: str) -> int:
    body = {**TICKET, "messages": [{"role": "system", "content": system}, TICKET["messages"][-1]]}
    answer = await client.post(f"/v1/prompts/{name}/versions", headers=admin.headers, json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["version"]


async def label_of(client, admin, name: str, label: str = "production") -> int:
    answer = await client.get(f"/v1/prompts/{name}/labels/{label}", headers=admin.headers)
    return answer.json()["version"]


async def test_the_list_shows_prompts_with_labels_and_latest_version(client, admin, as_viewer):
    await make_prompt(client, admin, "triage")
    await make_prompt(client, admin, "refunds")
    await add_version(client, admin, "refunds", "Be brief.")
    page = await as_viewer.client.get("/ui/prompts")
    assert page.status_code == 200
    assert 'href="/ui/prompts/triage"' in page.text
    assert "production → v1" in page.text
    assert ">v2<" in page.text
    searched = await as_viewer.client.get("/ui/prompts?q=refu")
    assert "refunds" in searched.text
    assert 'href="/ui/prompts/triage"' not in searched.text
    # A viewer is not offered what it cannot do.
    assert "New prompt" not in page.text


async def test_context_templates_have_their_own_list(client, admin, as_owner):
    body = {"name": "policy", "kind": "context", "version": {"template": "Refunds in 30 days."}}
    assert (await client.post("/v1/prompts", headers=admin.headers, json=body)).status_code == 201
    await make_prompt(client, admin, "triage")
    page = await as_owner.client.get("/ui/context-templates")
    assert 'href="/ui/prompts/policy"' in page.text
    assert 'href="/ui/prompts/triage"' not in page.text
    assert "New context template" in page.text


async def test_creating_a_prompt_from_the_form(as_editor, client, admin):
    answer = await as_editor.client.post(
        "/ui/prompts-new",
        data={
            "csrf_token": as_editor.csrf,
            "name": "greeter",
            "kind": "chat",
            "description": "Says hello",
            "protected_labels": "production, staging",
        },
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/prompts/greeter/edit"
    made = (await client.get("/v1/prompts/greeter", headers=admin.headers)).json()
    assert made["protected_labels"] == ["production", "staging"]
    assert made["description"] == "Says hello"


async def test_a_bad_or_taken_name_keeps_the_form_and_names_the_problem(as_editor, client, admin):
    await make_prompt(client, admin, "triage")
    bad = await as_editor.client.post(
        "/ui/prompts-new", data={"csrf_token": as_editor.csrf, "name": "Not A Name", "kind": "chat"}
    )
    assert bad.status_code == 422
    assert 'value="Not A Name"' in bad.text
    assert 'aria-invalid="true"' in bad.text
    taken = await as_editor.client.post(
        "/ui/prompts-new", data={"csrf_token": as_editor.csrf, "name": "triage", "kind": "chat"}
    )
    assert taken.status_code == 409
    assert "already exists" in taken.text


async def test_the_prompt_page_shows_versions_labels_and_protection(client, admin, as_owner):
    await make_prompt(client, admin, "triage")
    await add_version(client, admin, "triage", "Answer in French.")
    page = await as_owner.client.get("/ui/prompts/triage")
    assert page.status_code == 200
    assert 'data-version="2"' in page.text
    assert 'data-version="1"' in page.text
    assert 'data-label="production"' in page.text
    assert "protected" in page.text
    assert "deployer" in page.text  # the author of the versions: the API key's name


async def test_the_version_page_links_the_templates_it_includes(client, admin, as_viewer):
    body = {"name": "policy", "kind": "context", "version": {"template": "Refunds in 30 days."}}
    assert (await client.post("/v1/prompts", headers=admin.headers, json=body)).status_code == 201
    messages = [{"role": "system", "content": '{% include "policy" %}'}, TICKET["messages"][-1]]
    await make_prompt(client, admin, "triage", messages=messages)
    page = await as_viewer.client.get("/ui/prompts/triage/versions/1")
    assert page.status_code == 200
    assert 'href="/ui/prompts/policy/versions/1"' in page.text


async def test_diff_shows_both_views(client, admin, as_viewer):
    await make_prompt(client, admin, "triage")
    await add_version(client, admin, "triage", "Answer in French.")
    side = await as_viewer.client.get("/ui/prompts/triage/diff?from=1&to=2")
    assert side.status_code == 200
    assert '<div class="cell add" role="cell"><span class="visually-hidden">added: </span>' in (
        side.text
    )
    assert "Answer in French." in side.text
    unified = await as_viewer.client.get("/ui/prompts/triage/diff?from=1&to=2&view=unified")
    assert '<span class="add">+Answer in French.</span>' in unified.text
    same = await as_viewer.client.get("/ui/prompts/triage/diff?from=2&to=2")
    assert "The two versions are the same." in same.text


async def test_moving_production_needs_the_confirmation_and_rolls_back(client, admin, as_owner):
    await make_prompt(client, admin, "triage")
    await add_version(client, admin, "triage", "Answer in French.")
    confirm = await as_owner.client.get("/ui/prompts/triage/labels/production/move?version=2")
    assert confirm.status_code == 200
    assert "Answer in French." in confirm.text  # the diff from what production holds now
    moved = await as_owner.client.post(
        "/ui/prompts/triage/labels/production/move",
        data={"csrf_token": csrf_of(confirm.text), "version": "2", "expected": "1"},
    )
    assert moved.status_code == 303
    assert await label_of(client, admin, "triage") == 2
    rollback = await as_owner.client.get("/ui/prompts/triage/labels/production/rollback")
    assert rollback.headers["location"].endswith("/move?version=1&rollback=1")
    confirm = await as_owner.client.get(rollback.headers["location"])
    assert "Roll back" in confirm.text
    back = await as_owner.client.post(
        "/ui/prompts/triage/labels/production/move",
        data={"csrf_token": as_owner.csrf, "version": "1", "expected": "2"},
    )
    assert back.status_code == 303
    assert await label_of(client, admin, "triage") == 1
    history = await as_owner.client.get("/ui/prompts/triage/labels/production/history")
    assert history.text.count("<td>owner@acme.example</td>") == 2


async def test_a_stale_confirmation_does_not_move_the_label(client, admin, as_owner):
    await make_prompt(client, admin, "triage")
    await add_version(client, admin, "triage", "v2")
    await add_version(client, admin, "triage", "v3")
    # Someone else moved production to 3 after this page showed it on 1.
    await client.put(
        "/v1/prompts/triage/labels/production",
        headers=admin.headers,
        json={"version": 3, "expected_version": 1},
    )
    stale = await as_owner.client.post(
        "/ui/prompts/triage/labels/production/move",
        data={"csrf_token": as_owner.csrf, "version": "2", "expected": "1"},
    )
    assert stale.status_code == 409
    assert await label_of(client, admin, "triage") == 3


async def test_an_editor_cannot_move_a_protected_label(client, admin, as_editor):
    await make_prompt(client, admin, "triage")
    await add_version(client, admin, "triage", "v2")
    confirm = await as_editor.client.get("/ui/prompts/triage/labels/production/move?version=2")
    assert "only an admin may move it" in confirm.text
    assert 'action="/ui/prompts/triage/labels/production/move"' not in confirm.text
    page = await as_editor.client.get("/ui/prompts/triage")
    assert "/labels/production/move" not in page.text  # not offered
    refused = await as_editor.client.post(
        "/ui/prompts/triage/labels/production/move",
        data={"csrf_token": as_editor.csrf, "version": "2", "expected": "1"},
    )
    assert refused.status_code == 403
    assert await label_of(client, admin, "triage") == 1
    # An unprotected label is the editor's to move.
    staged = await as_editor.client.post(
        "/ui/prompts/triage/labels/staging/move",
        data={"csrf_token": as_editor.csrf, "version": "2", "expected": ""},
    )
    assert staged.status_code == 303
    assert await label_of(client, admin, "triage", "staging") == 2


async def test_a_viewer_reads_but_changes_nothing(client, admin, as_viewer, session):
    await make_prompt(client, admin, "triage")
    await add_version(client, admin, "triage", "v2")
    for url in ("/ui/prompts/triage", "/ui/prompts/triage/versions/2", "/ui/prompts/triage/diff"):
        assert (await as_viewer.client.get(url)).status_code == 200, url
    page = await as_viewer.client.get("/ui/prompts/triage")
    assert "Move…" not in page.text
    assert "New version" not in page.text
    for url, data in (
        ("/ui/prompts-new", {"name": "x", "kind": "chat"}),
        ("/ui/prompts/triage/labels/staging/move", {"version": "2", "expected": ""}),
    ):
        answer = await as_viewer.client.post(url, data={"csrf_token": as_viewer.csrf, **data})
        assert answer.status_code == 403, url
    assert (await as_viewer.client.get("/ui/prompts-new")).status_code == 403
    confirm = await as_viewer.client.get("/ui/prompts/triage/labels/x/move?version=1")
    assert confirm.status_code == 403
    labels = await session.scalar(text("SELECT count(*) FROM prompt_labels"))
    assert labels == 1


async def test_another_tenants_prompt_is_not_found(session, client, as_owner):
    other = await make_tenant(session, "globex")
    key = await make_key(session, other, ["admin"], name="globex-deployer")
    await make_prompt(client, key, "secret-plan")
    for url in (
        "/ui/prompts/secret-plan",
        "/ui/prompts/secret-plan/versions/1",
        "/ui/prompts/secret-plan/diff",
        "/ui/prompts/secret-plan/labels/production/history",
        "/ui/prompts/secret-plan/labels/production/move?version=1",
    ):
        answer = await as_owner.client.get(url)
        assert answer.status_code == 404, url
        assert "secret-plan" not in answer.text or "No prompt named" in answer.text
    moved = await as_owner.client.post(
        "/ui/prompts/secret-plan/labels/staging/move",
        data={"csrf_token": as_owner.csrf, "version": "1", "expected": ""},
    )
    assert moved.status_code == 404
    assert (await as_owner.client.get("/ui/prompts")).text.count("secret-plan") == 0


async def test_malformed_addresses_are_not_found_pages(as_owner):
    for url in ("/ui/prompts/triage/versions/abc", "/ui/prompts/NOT%20A%20NAME", "/ui/nowhere"):
        answer = await as_owner.client.get(url)
        assert answer.status_code == 404, url
        assert answer.headers["content-type"].startswith("text/html")
