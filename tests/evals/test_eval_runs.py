"""Eval runs: a version on a dataset's revision, scored by evaluators, through the run path
(the real SDK against the fake upstream, which echoes the last user message by default)."""

from __future__ import annotations

import asyncio
import uuid

from promptlogic.evals.runner import run_eval
from promptlogic.jobs.worker import WorkerOptions, run_worker
from promptlogic.runs.pipeline import RunServices
from tests.factories import make_key, make_tenant
from tests.fakes.openai_server import Reply, Usage
from tests.helpers import assert_problem
from tests.runs.support import make_prompt, use_fake

TICKETS = [
    ("Where is my parcel?", "echo: Where is my parcel?"),
    ("Refund me.", "echo: Refund me."),
    ("Hello?", "something else"),
]
EXACT = [{"type": "exact"}]


async def dataset(client, key, name="tickets", cases=TICKETS) -> None:
    made = await client.post("/v1/datasets", headers=key.headers, json={"name": name})
    assert made.status_code == 201, made.text
    added = await client.post(
        f"/v1/datasets/{name}/cases",
        headers=key.headers,
        json=[{"inputs": {"company": "Acme", "ticket": t}, "expected": e} for t, e in cases],
    )
    assert added.status_code == 201, added.text


async def start(client, key, **body):
    payload = {"prompt": "triage", "dataset": "tickets", "evaluators": EXACT, **body}
    return await client.post("/v1/evals", headers=key.headers, json=payload)


async def finish(app, client, key, eval_id: str) -> dict:
    """Run the queued eval in this process (as a worker would) and read it back."""
    tenant_id = uuid.UUID((await client.get("/v1/me", headers=key.headers)).json()["tenant"]["id"])
    await run_eval(RunServices.of(app.state), tenant_id, uuid.UUID(eval_id))
    await app.state.run_recorder.flush()
    answer = await client.get(f"/v1/evals/{eval_id}", headers=key.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def setup(client, admin, fake_openai) -> None:
    await use_fake(client, admin, fake_openai)
    await make_prompt(client, admin, "triage")
    await dataset(client, admin)


async def test_an_eval_scores_every_case_and_sums_up(app, client, admin, fake_openai):
    await setup(client, admin, fake_openai)
    started = await start(client, admin, label="production")
    assert started.status_code == 202, started.text
    queued = started.json()
    assert (queued["status"], queued["version"], queued["label"]) == ("queued", 1, "production")
    assert queued["progress"] == {"completed": 0, "total": 3}
    assert queued["dataset_revision"] == 1

    done = await finish(app, client, admin, queued["id"])

    assert done["status"] == "succeeded"
    assert done["progress"] == {"completed": 3, "total": 3}
    summary = done["summary"]
    assert (summary["results"], summary["passed"]) == (3, 2)
    assert summary["pass_rate"] == round(2 / 3, 4)
    assert summary["latency_ms"]["p50"] is not None
    failed = [r for r in done["results"] if not r["passed"]]
    assert len(failed) == 1
    assert failed[0]["output"] == "echo: Hello?"
    assert "something else" in failed[0]["scores"][0]["reason"]
    assert all(r["input_tokens"] and r["run_id"] for r in done["results"])
    run = await client.get(f"/v1/runs/{failed[0]['run_id']}", headers=admin.headers)
    assert run.json()["metadata"]["eval"] == queued["id"]


async def test_repeats_are_counted_and_their_variance_reported(app, client, admin, fake_openai):
    await setup(client, admin, fake_openai)
    started = await start(client, admin, version=1, repeat=3, concurrency=2)
    done = await finish(app, client, admin, started.json()["id"])
    assert done["progress"] == {"completed": 9, "total": 9}
    assert done["summary"]["results"] == 9
    assert done["summary"]["score_variance"] == 0.0  # the fake answers the same every time
    assert fake_openai.call_count() == 9


async def test_a_killed_eval_resumes_without_redoing_finished_cases(
    app, client, admin, fake_openai
):
    await setup(client, admin, fake_openai)
    fake_openai.set_default(Reply(delay=0.3))
    eval_id = (await start(client, admin, version=1, concurrency=1)).json()["id"]
    tenant_id = uuid.UUID(
        (await client.get("/v1/me", headers=admin.headers)).json()["tenant"]["id"]
    )
    worker = asyncio.create_task(run_eval(RunServices.of(app.state), tenant_id, uuid.UUID(eval_id)))
    for _ in range(100):  # until one result is stored
        await asyncio.sleep(0.05)
        progress = (await client.get(f"/v1/evals/{eval_id}", headers=admin.headers)).json()
        if progress["progress"]["completed"] >= 1:
            break
    worker.cancel()  # the worker dies mid-run
    await asyncio.gather(worker, return_exceptions=True)
    interrupted = (await client.get(f"/v1/evals/{eval_id}", headers=admin.headers)).json()
    assert interrupted["status"] == "running"
    kept = interrupted["progress"]["completed"]
    assert 1 <= kept < 3
    calls_before = fake_openai.call_count()

    done = await finish(app, client, admin, eval_id)

    assert done["status"] == "succeeded"
    assert done["progress"] == {"completed": 3, "total": 3}
    assert len({r["case_id"] for r in done["results"]}) == 3
    assert fake_openai.call_count() - calls_before == 3 - kept  # finished cases not redone


async def test_the_worker_runs_queued_evals(app, client, admin, fake_openai, database_url):
    await setup(client, admin, fake_openai)
    eval_id = (await start(client, admin)).json()["id"]
    services = RunServices.of(app.state)
    await run_worker(
        app.state.sessionmaker,
        None,  # type: ignore[arg-type] - no ingestion here
        database_url,
        WorkerOptions(sweep=False),
        drain=True,
        services=services,
    )
    answer = await client.get(f"/v1/evals/{eval_id}", headers=admin.headers)
    assert answer.json()["status"] == "succeeded"


async def test_two_versions_compared_case_by_case(app, client, admin, fake_openai):
    await setup(client, admin, fake_openai)
    first = await finish(app, client, admin, (await start(client, admin, version=1)).json()["id"])
    second_version = {
        "messages": [{"role": "user", "content": "Ticket: {{ ticket }} for {{ company }}"}],
        "model": {"name": "gpt-4o-mini"},
    }
    added = await client.post(
        "/v1/prompts/triage/versions", headers=admin.headers, json=second_version
    )
    assert added.status_code == 201, added.text
    second = await finish(app, client, admin, (await start(client, admin, version=2)).json()["id"])

    compared = await client.get(
        f"/v1/evals/{second['id']}/compare", headers=admin.headers, params={"base": first["id"]}
    )

    assert compared.status_code == 200, compared.text
    body = compared.json()
    assert (body["regressed"], body["improved"], body["same"]) == (2, 0, 1)
    assert body["deltas"]["pass_rate"] == round(0 - first["summary"]["pass_rate"], 6)
    assert body["same_dataset"] is True


async def test_a_cancelled_eval_runs_nothing(app, client, admin, fake_openai):
    await setup(client, admin, fake_openai)
    eval_id = (await start(client, admin)).json()["id"]
    cancelled = await client.post(f"/v1/evals/{eval_id}:cancel", headers=admin.headers)
    assert cancelled.json()["status"] == "cancelled"
    done = await finish(app, client, admin, eval_id)
    assert done["status"] == "cancelled"
    assert fake_openai.call_count() == 0
    again = await client.post(f"/v1/evals/{eval_id}:cancel", headers=admin.headers)
    assert_problem(again, 409)


async def test_draft_rules_apply_to_every_case(app, client, admin, fake_openai):
    await use_fake(client, admin, fake_openai)
    await make_prompt(
        client,
        admin,
        "triage",
        messages=[
            {
                "role": "user",
                "content": "{{ ticket }}{% for rule in rules %} / {{ rule.text }}{% endfor %}",
            }
        ],
        context=[{"name": "rules", "source": "rules"}],
    )
    await dataset(client, admin, cases=[("Hi", "echo: Hi / Be brief.")])
    started = await start(client, admin, rules={"changes": [{"text": "Be brief."}]}, version=1)
    assert started.status_code == 202, started.text
    done = await finish(app, client, admin, started.json()["id"])
    assert done["summary"]["passed"] == 1
    listed = await client.get("/v1/rules", headers=admin.headers)
    assert listed.json()["items"] == []  # the draft was never saved


async def test_bad_evals_are_refused_naming_the_field(client, admin, fake_openai, session, tenant):
    await setup(client, admin, fake_openai)
    await client.post("/v1/datasets", headers=admin.headers, json={"name": "empty"})
    cases = {
        "body": {"version": 1, "label": "production"},
        "body.evaluators": {"evaluators": []},
        "body.repeat": {"repeat": 21},
        "body.dataset": {"dataset": "empty"},
    }
    for field, body in cases.items():
        answer = await start(client, admin, **body)
        errors = assert_problem(answer, 422, where=field).get("errors", [])
        assert any(error["field"].startswith(field) for error in errors), (field, errors)
    assert_problem(await start(client, admin, dataset="nope"), 404)
    assert_problem(await start(client, admin, prompt="nope"), 404)
    assert_problem(await start(client, admin, version=9), 404)
    reader = await make_key(session, tenant, ["read"], name="reader")
    assert_problem(await start(client, reader), 403)
    assert fake_openai.call_count() == 0


async def test_another_tenants_eval_is_unknown(app, client, admin, fake_openai, session):
    await setup(client, admin, fake_openai)
    eval_id = (await start(client, admin)).json()["id"]
    other = await make_tenant(session, "other")
    stranger = await make_key(session, other, ["admin"])
    for path in (f"/v1/evals/{eval_id}", f"/v1/evals/{eval_id}/results"):
        assert_problem(await client.get(path, headers=stranger.headers), 404)
    assert_problem(await client.post(f"/v1/evals/{eval_id}:cancel", headers=stranger.headers), 404)
    compared = await client.get(
        f"/v1/evals/{eval_id}/compare", headers=stranger.headers, params={"base": eval_id}
    )
    assert_problem(compared, 404)
    assert (await client.get("/v1/evals", headers=stranger.headers)).json()["items"] == []
    mine = await client.get(f"/v1/evals/{eval_id}", headers=admin.headers)
    assert mine.json()["status"] == "queued"


async def test_a_spending_cap_ends_the_eval_with_the_reason(app, client, admin, fake_openai):
    await setup(client, admin, fake_openai)
    price = {"input_per_million": 100, "output_per_million": 0}
    await client.put("/v1/models/gpt-4o-mini", headers=admin.headers, json=price)
    fake_openai.set_default(Reply(usage=Usage(1000, 0)))  # 0.1 USD a run
    limits = {"requests_per_minute": None, "monthly_spend_cap": 0.1}
    assert (await client.put("/v1/limits", headers=admin.headers, json=limits)).is_success

    done = await finish(
        app, client, admin, (await start(client, admin, concurrency=1)).json()["id"]
    )

    assert done["status"] == "failed"
    assert "monthly spend cap" in done["error"]
    assert done["progress"]["completed"] == 1  # the run within the cap is kept
    assert fake_openai.call_count() == 1


async def test_an_eval_does_not_outlive_its_authors_key(
    app, client, admin, fake_openai, session, tenant
):
    await setup(client, admin, fake_openai)
    key = await make_key(session, tenant, ["run", "read"], name="ci")
    eval_id = (await start(client, key)).json()["id"]
    assert (await client.delete(f"/v1/api-keys/{key.key.id}", headers=admin.headers)).is_success

    done = await finish(app, client, admin, eval_id)

    assert done["status"] == "failed"
    assert done["error"] == "the API key that started it was revoked"
    assert fake_openai.call_count() == 0


async def test_revoking_the_key_stops_a_running_eval(
    app, client, admin, fake_openai, session, tenant
):
    await setup(client, admin, fake_openai)
    fake_openai.set_default(Reply(delay=0.3))
    key = await make_key(session, tenant, ["run", "read"], name="ci")
    eval_id = (await start(client, key, concurrency=1)).json()["id"]
    worker = asyncio.create_task(run_eval(RunServices.of(app.state), tenant.id, uuid.UUID(eval_id)))
    for _ in range(100):  # until one result is stored
        await asyncio.sleep(0.05)
        shown = (await client.get(f"/v1/evals/{eval_id}", headers=admin.headers)).json()
        if shown["progress"]["completed"] >= 1:
            break
    assert (await client.delete(f"/v1/api-keys/{key.key.id}", headers=admin.headers)).is_success
    assert await worker == "failed"

    done = (await client.get(f"/v1/evals/{eval_id}", headers=admin.headers)).json()
    assert done["error"] == "the API key that started it was revoked"
    assert done["progress"]["completed"] < 3
    assert fake_openai.call_count() < 3
