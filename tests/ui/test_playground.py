"""The playground over HTTP: the page, running through the API's pipeline as the signed-in
member (JSON and Server-Sent Events), errors as problem+json, and who may run."""

from __future__ import annotations

import html
import json
import re

from sqlalchemy import func, select

from promptlogic.runs.models import Run
from tests.conftest import client_for
from tests.factories import make_key, make_tenant
from tests.fakes import Fail
from tests.runs.support import API_KEY, VARIABLES, events_of, make_prompt, stored, use_fake

RUN_URL = "/ui/prompts/triage/playground/run"
JSON_CALL = {"Accept": "application/json"}


def headers(csrf: str, accept: str = "application/json") -> dict[str, str]:
    return {"X-CSRF-Token": csrf, "Accept": accept}


def data_attribute(page: str, name: str) -> object:
    """A JSON `data-NAME` attribute of the page, decoded."""
    found = re.search(rf'data-{name}="([^"]*)"', page)
    assert found is not None, name
    return json.loads(html.unescape(found.group(1)))


async def run_count(app) -> int:
    await app.state.run_recorder.flush()
    async with app.state.sessionmaker() as db:
        return await db.scalar(select(func.count()).select_from(Run))


async def test_the_page_offers_versions_labels_the_schema_and_the_provider(
    client, admin, as_editor
):
    await make_prompt(client, admin, "triage")
    second = {
        "messages": [{"role": "user", "content": "{{ ticket }}"}],
        "model": {"name": "gpt-4o", "temperature": 0.5},
        "input_schema": {
            "type": "object",
            "properties": {"ticket": {"type": "string", "examples": ["Lost parcel"]}},
            "required": ["ticket"],
        },
    }
    saved = await client.post("/v1/prompts/triage/versions", headers=admin.headers, json=second)
    assert saved.status_code == 201, saved.text

    # Without a choice: what the API runs by default, the `production` label.
    page = await as_editor.client.get("/ui/prompts/triage/playground")
    assert page.status_code == 200
    assert '<option value="production" selected>production → v1</option>' in page.text
    assert '<option value="2">v2 (latest)</option>' in page.text
    assert 'data-selector-kind="label"' in page.text
    assert 'data-selector-value="production"' in page.text
    # The schema inferred from the template's variables, for the form.
    schema = data_attribute(page.text, "schema")
    assert schema["required"] == ["company", "ticket"]
    assert data_attribute(page.text, "values") == {}
    assert "The offline provider" in page.text
    assert "&#34;name&#34;: &#34;gpt-4o-mini&#34;" in page.text
    assert "/ui/static/playground.js" in page.text

    # A version chosen: its own schema and model settings.
    page = await as_editor.client.get("/ui/prompts/triage/playground?version=2")
    assert page.status_code == 200
    assert '<option value="2" selected>v2 (latest)</option>' in page.text
    assert 'data-selector-kind="version"' in page.text
    assert data_attribute(page.text, "schema")["properties"]["ticket"]["examples"] == [
        "Lost parcel"
    ]
    assert "&#34;temperature&#34;: 0.5" in page.text

    missing = await as_editor.client.get("/ui/prompts/triage/playground?version=9")
    assert missing.status_code == 404
    missing = await as_editor.client.get("/ui/prompts/triage/playground?label=staging")
    assert missing.status_code == 404


async def test_a_prompt_without_production_starts_on_its_latest_version(client, admin, as_editor):
    body = {"name": "fresh", "version": {"messages": [{"role": "user", "content": "Hi {{ x }}"}]}}
    assert (await client.post("/v1/prompts", headers=admin.headers, json=body)).status_code == 201
    page = await as_editor.client.get("/ui/prompts/fresh/playground")
    assert page.status_code == 200
    assert 'data-selector-kind="version"' in page.text
    assert 'data-selector-value="1"' in page.text
    assert "no labels yet" in page.text


async def test_a_run_is_the_apis_run_recorded_as_the_member(app, client, admin, as_editor, editor):
    await make_prompt(client, admin, "triage")
    answer = await as_editor.client.post(
        RUN_URL,
        headers=headers(as_editor.csrf),
        json={"variables": VARIABLES, "label": "production"},
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["status"] == "succeeded"
    assert result["provider"] == "offline"
    assert result["output"].startswith("[offline ")
    assert "Where is my parcel?" in result["output"]
    assert result["version"] == 1
    assert result["label"] == "production"
    assert result["usage"]["input_tokens"] > 0
    assert result["cost"] == 0
    # The answer links to the run's page, which finds the record at once: it was committed
    # before the answer (no waiting on the recorder's next batch).
    page = await as_editor.client.get(f"/ui/runs/{result['id']}")
    assert page.status_code == 200
    assert f'{editor.email} <span class="muted">(user)</span>' in page.text
    record = await stored(app, client, admin, result["id"])
    assert record["principal"]["type"] == "user"
    assert record["principal"]["name"] == editor.email
    assert record["inputs"] == VARIABLES
    assert record["messages"][0] == {"role": "system", "content": "Triage for Acme."}


async def test_a_version_runs_by_number(app, client, admin, as_owner):
    await make_prompt(client, admin, "triage")
    answer = await as_owner.client.post(
        RUN_URL, headers=headers(as_owner.csrf), json={"variables": VARIABLES, "version": 1}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == 1
    assert answer.json()["label"] is None


async def test_streaming_sends_deltas_then_done(app, client, admin, as_editor, editor):
    await make_prompt(client, admin, "triage")
    answer = await as_editor.client.post(
        RUN_URL,
        headers=headers(as_editor.csrf, "text/event-stream"),
        json={"variables": VARIABLES, "label": "production", "stream": True},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = events_of(answer.text)
    names = [name for name, _ in events]
    assert names[-1] == "done"
    assert set(names[:-1]) == {"delta"}
    assert len(names) > 2
    done = events[-1][1]
    assert "".join(data["text"] for _, data in events[:-1]) == done["output"]
    assert done["provider"] == "offline"
    assert done["usage"]["output_tokens"] > 0
    assert (await as_editor.client.get(f"/ui/runs/{done['id']}")).status_code == 200
    record = await stored(app, client, admin, done["id"])
    assert record["principal"] == {
        "type": "user",
        "id": record["principal"]["id"],
        "name": editor.email,
    }
    assert record["output"] == done["output"]


async def test_invalid_variables_are_named(as_editor, client, admin, app):
    await make_prompt(client, admin, "triage")
    for stream, accept in ((False, "application/json"), (True, "text/event-stream")):
        answer = await as_editor.client.post(
            RUN_URL,
            headers=headers(as_editor.csrf, accept),
            json={"variables": {"company": 7}, "label": "production", "stream": stream},
        )
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        fields = {error["field"] for error in answer.json()["errors"]}
        assert {"variables.ticket", "variables.company"} <= fields
    # Not runs: nothing is recorded.
    assert await run_count(app) == 0


async def test_a_bad_request_body_is_problem_json(as_editor, client, admin):
    await make_prompt(client, admin, "triage")
    for body, field in (
        ({"variables": VARIABLES, "label": "production", "version": 1}, "body.version"),
        ({"variables": VARIABLES, "version": 0}, "body.version"),
        ({"variables": VARIABLES, "label": "Not a label"}, "body.label"),
        ({"variables": VARIABLES, "end_user": "x"}, "body.end_user"),
        ({"variables": "not an object"}, "body.variables"),
    ):
        answer = await as_editor.client.post(RUN_URL, headers=headers(as_editor.csrf), json=body)
        assert answer.status_code == 422, body
        assert answer.headers["content-type"] == "application/problem+json"
        assert field in {error["field"] for error in answer.json()["errors"]}, answer.json()


async def test_a_usage_limit_answers_429_with_retry_after(client, admin, as_editor):
    await make_prompt(client, admin, "triage")
    body = {"requests_per_minute": 1, "monthly_spend_cap": None}
    limited = await client.put("/v1/limits", headers=admin.headers, json=body)
    assert limited.status_code == 200, limited.text
    first = await as_editor.client.post(
        RUN_URL, headers=headers(as_editor.csrf), json={"variables": VARIABLES}
    )
    assert first.status_code == 200, first.text
    for accept in ("application/json", "text/event-stream"):
        refused = await as_editor.client.post(
            RUN_URL,
            headers=headers(as_editor.csrf, accept),
            json={"variables": VARIABLES, "stream": accept != "application/json"},
        )
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "1 run per minute" in refused.json()["detail"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 60


async def test_a_viewer_is_not_offered_the_playground_and_cannot_run(app, client, admin, as_viewer):
    await make_prompt(client, admin, "triage")
    prompt_page = await as_viewer.client.get("/ui/prompts/triage")
    assert "/playground" not in prompt_page.text
    page = await as_viewer.client.get("/ui/prompts/triage/playground")
    assert page.status_code == 403
    assert "cannot run prompts" in page.text
    answer = await as_viewer.client.post(
        RUN_URL, headers=headers(as_viewer.csrf), json={"variables": VARIABLES}
    )
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"
    assert await run_count(app) == 0


async def test_a_run_without_the_csrf_token_is_refused(app, client, admin, as_editor):
    await make_prompt(client, admin, "triage")
    for sent in ({}, {"X-CSRF-Token": "forged"}):
        answer = await as_editor.client.post(
            RUN_URL, headers={**JSON_CALL, **sent}, json={"variables": VARIABLES}
        )
        assert answer.status_code == 403
    cross_site = await as_editor.client.post(
        RUN_URL,
        headers={**headers(as_editor.csrf), "Origin": "https://evil.example"},
        json={"variables": VARIABLES},
    )
    assert cross_site.status_code == 403
    assert await run_count(app) == 0


async def test_another_tenants_prompt_is_not_found(app, session, as_editor):
    other = await make_tenant(session, "globex")
    key = await make_key(session, other, ["admin"], name="theirs")
    async with client_for(app) as api:
        await make_prompt(api, key, "secret-sauce")
    page = await as_editor.client.get("/ui/prompts/secret-sauce/playground")
    assert page.status_code == 404
    answer = await as_editor.client.post(
        "/ui/prompts/secret-sauce/playground/run",
        headers=headers(as_editor.csrf),
        json={"variables": VARIABLES},
    )
    assert answer.status_code == 404
    assert await run_count(app) == 0


async def test_a_context_template_has_no_playground(client, admin, as_editor):
    body = {"name": "policy", "kind": "context", "version": {"template": "Refunds in 30 days."}}
    assert (await client.post("/v1/prompts", headers=admin.headers, json=body)).status_code == 201
    page = await as_editor.client.get("/ui/prompts/policy/playground")
    assert page.status_code == 422
    assert "context template" in page.text


async def test_an_earlier_run_opens_with_its_variables(client, admin, as_editor, app):
    await make_prompt(client, admin, "triage")
    await client.post(
        "/v1/prompts/triage/versions",
        headers=admin.headers,
        json={"messages": [{"role": "user", "content": "{{ ticket }}!"}]},
    )
    answer = await as_editor.client.post(
        RUN_URL, headers=headers(as_editor.csrf), json={"variables": VARIABLES, "version": 1}
    )
    run_id = answer.json()["id"]
    await app.state.run_recorder.flush()
    page = await as_editor.client.get(f"/ui/prompts/triage/playground?run={run_id}")
    assert page.status_code == 200
    assert data_attribute(page.text, "values") == VARIABLES
    assert 'data-selector-kind="version"' in page.text
    assert 'data-selector-value="1"' in page.text
    # Another prompt's run (or an unknown one) prefills nothing.
    other = await as_editor.client.get(
        "/ui/prompts/triage/playground?run=00000000-0000-0000-0000-000000000000"
    )
    assert data_attribute(other.text, "values") == {}


async def test_a_provider_failure_is_problem_json_naming_the_failed_run(
    app, client, admin, as_editor, fake_openai
):
    await make_prompt(client, admin, "triage")
    await use_fake(client, admin, fake_openai)
    page = await as_editor.client.get("/ui/prompts/triage/playground")
    assert 'fake <span class="muted">(openai_compatible, the tenant\'s default)' in page.text
    assert API_KEY not in page.text
    fake_openai.push(Fail(400))
    answer = await as_editor.client.post(
        RUN_URL, headers=headers(as_editor.csrf), json={"variables": VARIABLES}
    )
    assert answer.status_code == 502
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"]
    assert API_KEY not in answer.text
    run_id = answer.headers["X-Promptlogic-Run-Id"]
    run_page = await as_editor.client.get(f"/ui/runs/{run_id}")
    assert run_page.status_code == 200
    assert '<span class="badge failed">failed</span>' in run_page.text
    assert API_KEY not in run_page.text


async def test_a_missing_named_provider_is_said_on_the_page(client, admin, as_editor):
    model = {"name": "gpt-4o-mini", "provider": "nosuch"}
    await make_prompt(client, admin, "triage", model=model)
    page = await as_editor.client.get("/ui/prompts/triage/playground")
    assert page.status_code == 200
    assert "nosuch" in page.text.split('id="provider-in-use"')[1].split("</dd>")[0]
    answer = await as_editor.client.post(
        RUN_URL, headers=headers(as_editor.csrf), json={"variables": VARIABLES}
    )
    assert answer.status_code == 422
    assert "model.provider" in {error["field"] for error in answer.json()["errors"]}
