"""`POST /v1/prompts/{name}/run`: render, call the model, check the output, record the run."""

from __future__ import annotations

import jsonschema

from promptlogic.demo_prompts import TRIAGE_RESPONSE_FORMAT
from tests.factories import make_key
from tests.fakes import Fail, Reply, Usage
from tests.helpers import assert_names_field, assert_problem
from tests.runs.support import (
    API_KEY,
    VARIABLES,
    events_of,
    make_prompt,
    run,
    stored,
    use_fake,
)


async def test_an_offline_run_answers_json_that_satisfies_the_response_format(
    app, client, admin, runner
):
    await make_prompt(client, admin, response_format=TRIAGE_RESPONSE_FORMAT)
    response = await run(client, runner, {"variables": VARIABLES, "end_user": "u-1"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["provider"] == "offline"
    jsonschema.validate(body["parsed"], TRIAGE_RESPONSE_FORMAT)
    assert body["usage"]["input_tokens"] > 0
    assert body["cost"] == 0
    assert body["versions_used"] == [{"prompt": "triage", "version": 1}]
    record = await stored(app, client, runner, body["id"])
    assert record["status"] == "succeeded"
    assert record["end_user"] == "u-1"
    assert record["inputs"] == VARIABLES


async def test_a_run_calls_the_tenants_provider_with_the_rendered_messages(
    app, client, admin, runner, fake_openai
):
    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai)
    fake_openai.push(Reply("Your parcel is on its way.", usage=Usage(40, 8)))
    response = await run(client, runner, {"variables": VARIABLES})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["output"] == "Your parcel is on its way."
    assert body["provider"] == "fake"
    assert body["usage"] == {"input_tokens": 40, "output_tokens": 8}
    assert body["cost"] > 0
    sent = fake_openai.last_request()
    assert sent.body["model"] == "gpt-4o-mini"
    assert sent.body["messages"] == [
        {"role": "system", "content": "Triage for Acme."},
        {"role": "user", "content": "Where is my parcel?"},
    ]
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert fake_openai.call_count() == 1


async def test_a_provider_that_keeps_failing_answers_502_and_the_failed_run_is_recorded(
    app, client, admin, runner, fake_openai
):
    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai)
    fake_openai.push(Fail(500), Fail(500), Fail(500))
    response = await run(client, runner, {"variables": VARIABLES})
    body = assert_problem(response, 502)
    assert API_KEY not in response.text
    assert fake_openai.call_count() == 3
    await app.state.run_recorder.flush()
    listed = await client.get("/v1/runs", headers=runner.headers, params={"status": "failed"})
    assert [r["prompt"] for r in listed.json()["items"]] == ["triage"]
    assert body["detail"]


async def test_output_that_breaks_the_response_format_fails_the_run_clearly(
    app, client, admin, runner, fake_openai
):
    await make_prompt(client, admin, response_format=TRIAGE_RESPONSE_FORMAT)
    await use_fake(client, admin, fake_openai)
    fake_openai.push(Reply("not json at all"))
    assert (
        "not JSON"
        in assert_problem(await run(client, runner, {"variables": VARIABLES}), 502)["detail"]
    )
    fake_openai.push(Reply({"category": "weather"}))
    response = await run(client, runner, {"variables": VARIABLES})
    problem = assert_problem(response, 502)
    assert "does not satisfy the response format" in problem["detail"]
    # The failed run is recorded, and the answer says which one it is.
    await app.state.run_recorder.flush()
    run_id = response.headers["X-Promptlogic-Run-Id"]
    stored = await client.get(f"/v1/runs/{run_id}", headers=runner.headers)
    assert stored.json()["status"] == "failed"
    assert stored.json()["output"] == '{"category": "weather"}'


async def test_a_response_format_with_local_definitions_checks_the_output(
    client, admin, runner, fake_openai
):
    defined = {
        "$defs": {"priority": {"enum": ["low", "high"]}},
        "type": "object",
        "properties": {"priority": {"$ref": "#/$defs/priority"}},
        "required": ["priority"],
    }
    await make_prompt(client, admin, response_format=defined)
    await use_fake(client, admin, fake_openai)
    fake_openai.push(Reply({"priority": "high"}), Reply({"priority": "urgent"}))
    answer = await run(client, runner, {"variables": VARIABLES})
    assert answer.status_code == 200, answer.text
    assert answer.json()["parsed"] == {"priority": "high"}
    refused = assert_problem(await run(client, runner, {"variables": VARIABLES}), 502)
    assert "does not satisfy the response format" in refused["detail"]


GOOD_TRIAGE = {
    "category": "shipping",
    "priority": "normal",
    "needs_human": False,
    "summary": "Parcel is late.",
}


async def make_repairing_prompt(client, admin) -> None:
    """A prompt with a JSON response format that allows one repair attempt."""
    await make_prompt(
        client,
        admin,
        response_format=TRIAGE_RESPONSE_FORMAT,
        model={"name": "gpt-4o-mini", "repair": True},
    )


async def test_a_repair_attempt_asks_once_with_the_problem_and_adds_up_usage(
    app, client, admin, runner, fake_openai
):
    await make_repairing_prompt(client, admin)
    await use_fake(client, admin, fake_openai)
    fake_openai.push(Reply({"category": "weather"}, usage=Usage(100, 10)))
    fake_openai.push(Reply(GOOD_TRIAGE, usage=Usage(130, 20)))
    response = await run(client, runner, {"variables": VARIABLES})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["parsed"] == GOOD_TRIAGE
    assert body["repaired"] is True
    assert body["usage"] == {"input_tokens": 230, "output_tokens": 30}
    assert fake_openai.call_count() == 2
    repair = fake_openai.last_request().body["messages"]
    assert repair[-2] == {"role": "assistant", "content": '{"category": "weather"}'}
    assert "does not satisfy the response format" in repair[-1]["content"]
    assert "repair" not in fake_openai.last_request().body  # ours, not the provider's
    record = await stored(app, client, runner, body["id"])
    assert record["repaired"] is True
    assert record["usage"] == {"input_tokens": 230, "output_tokens": 30}


async def test_a_failed_repair_fails_the_run_after_exactly_two_calls(
    app, client, admin, runner, fake_openai
):
    await make_repairing_prompt(client, admin)
    await use_fake(client, admin, fake_openai)
    fake_openai.push(Reply("not json"), Reply({"category": "still wrong"}))
    problem = assert_problem(await run(client, runner, {"variables": VARIABLES}), 502)
    assert "does not satisfy the response format" in problem["detail"]
    assert fake_openai.call_count() == 2


async def test_without_repair_an_invalid_output_costs_one_call(client, admin, runner, fake_openai):
    await make_prompt(client, admin, response_format=TRIAGE_RESPONSE_FORMAT)
    await use_fake(client, admin, fake_openai)
    fake_openai.push(Reply({"category": "weather"}), Reply(GOOD_TRIAGE))
    assert_problem(await run(client, runner, {"variables": VARIABLES}), 502)
    assert fake_openai.call_count() == 1


async def test_a_streamed_run_is_repaired_after_a_repair_event(
    app, client, admin, runner, fake_openai
):
    await make_repairing_prompt(client, admin)
    await use_fake(client, admin, fake_openai)
    fake_openai.push(Reply("oops"), Reply(GOOD_TRIAGE))
    response = await run(client, runner, {"variables": VARIABLES, "stream": True})
    names = [name for name, _ in events_of(response.text)]
    assert "repair" in names
    assert names.index("repair") < len(names) - 1
    name, done = events_of(response.text)[-1]
    assert name == "done"
    assert done["parsed"] == GOOD_TRIAGE
    assert done["repaired"] is True
    assert fake_openai.call_count() == 2


async def test_a_run_says_why_the_model_stopped(client, admin, runner, fake_openai):
    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai)
    fake_openai.push(Reply("Your parcel", finish_reason="length"))
    body = (await run(client, runner, {"variables": VARIABLES})).json()
    assert body["finish_reason"] == "length"
    fake_openai.push(Reply("Your parcel is coming."))
    assert (await run(client, runner, {"variables": VARIABLES})).json()["finish_reason"] == "stop"


async def test_run_needs_run_scope_and_valid_input(client, session, tenant, admin, runner):
    await make_prompt(client, admin)
    reader = await make_key(session, tenant, ["read", "write"])
    assert_problem(await run(client, reader, {"variables": VARIABLES}), 403)
    missing = await run(client, runner, {"variables": {"company": "Acme"}})
    assert_names_field(assert_problem(missing, 422), "variables.ticket")
    both = await run(client, runner, {"variables": VARIABLES, "label": "production", "version": 1})
    assert_problem(both, 422)
    assert_problem(await run(client, runner, {"variables": VARIABLES}, name="ghost"), 404)


async def test_a_streamed_run_sends_deltas_then_one_done_event_and_is_recorded(
    app, client, admin, runner, fake_openai
):
    from tests.fakes import Stream

    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai)
    fake_openai.push(Stream(["Your ", "parcel ", "is coming."], usage=Usage(30, 5)))
    response = await run(client, runner, {"variables": VARIABLES, "stream": True})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = events_of(response.text)
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert "".join(deltas) == "Your parcel is coming."
    name, done = events[-1]
    assert name == "done"
    assert done["output"] == "Your parcel is coming."
    assert done["usage"] == {"input_tokens": 30, "output_tokens": 5}
    record = await stored(app, client, runner, done["id"])
    assert record["status"] == "succeeded"
    assert record["time_to_first_token_ms"] is not None


async def test_a_stream_that_breaks_mid_way_ends_with_an_error_event_and_a_failed_run(
    app, client, admin, runner, fake_openai
):
    from tests.fakes import Stream

    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai)
    fake_openai.push(Stream(["Your ", "parcel ", "is coming."], break_after=1))
    response = await run(client, runner, {"variables": VARIABLES, "stream": True})
    events = events_of(response.text)
    assert events[0] == ("delta", {"text": "Your "})
    name, error = events[-1]
    assert name == "error"
    assert error["status"] == 502
    assert API_KEY not in response.text
    record = await stored(app, client, runner, error["id"])
    assert record["status"] == "failed"
    assert fake_openai.call_count() == 1  # no retry once text was sent


async def test_a_streamed_run_with_bad_input_is_an_ordinary_422(client, admin, runner):
    await make_prompt(client, admin)
    response = await run(client, runner, {"variables": {}, "stream": True})
    assert_names_field(assert_problem(response, 422), "variables.company")


async def test_a_repeated_idempotency_key_replays_the_answer_without_a_second_call(
    client, admin, runner, fake_openai
):
    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai)
    fake_openai.push(Reply("first answer"))
    headers = {**runner.headers, "Idempotency-Key": "order-1042"}
    body = {"variables": VARIABLES}
    first = await client.post("/v1/prompts/triage/run", headers=headers, json=body)
    second = await client.post("/v1/prompts/triage/run", headers=headers, json=body)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert fake_openai.call_count() == 1
    other = await client.post(
        "/v1/prompts/triage/run",
        headers=headers,
        json={"variables": {**VARIABLES, "ticket": "other"}},
    )
    assert_names_field(assert_problem(other, 422), "header.Idempotency-Key")


async def test_the_same_key_while_the_first_run_is_running_is_a_409(
    app, admin, runner, fake_openai, client
):
    import asyncio

    from tests.conftest import client_for

    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai)
    fake_openai.push(Reply("slow", delay=1.0))
    headers = {**runner.headers, "Idempotency-Key": "slow-1"}

    async def attempt():
        async with client_for(app) as http:
            return await http.post(
                "/v1/prompts/triage/run", headers=headers, json={"variables": VARIABLES}
            )

    first = asyncio.create_task(attempt())
    for _ in range(200):  # the model call has begun, so the key is claimed
        if fake_openai.call_count() == 1:
            break
        await asyncio.sleep(0.01)
    second = await attempt()
    assert_problem(second, 409)
    assert (await first).status_code == 200
    assert fake_openai.call_count() == 1


async def test_a_failed_run_releases_its_key_for_a_retry(client, admin, runner, fake_openai):
    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai)
    fake_openai.push(Fail(400))
    headers = {**runner.headers, "Idempotency-Key": "retry-me"}
    failed = await client.post(
        "/v1/prompts/triage/run", headers=headers, json={"variables": VARIABLES}
    )
    assert_problem(failed, 502)
    fake_openai.push(Reply("second try"))
    retried = await client.post(
        "/v1/prompts/triage/run", headers=headers, json={"variables": VARIABLES}
    )
    assert retried.json()["output"] == "second try"


async def test_idempotency_keys_belong_to_one_tenant_and_must_be_printable(
    client, session, admin, runner
):
    from tests.factories import make_tenant

    await make_prompt(client, admin)
    headers = {**runner.headers, "Idempotency-Key": "shared-key"}
    mine = await client.post(
        "/v1/prompts/triage/run", headers=headers, json={"variables": VARIABLES}
    )
    assert mine.status_code == 200, mine.text
    other_tenant = await make_tenant(session, "other")
    other_admin = await make_key(session, other_tenant, ["admin"])
    await make_prompt(client, other_admin)
    theirs = await client.post(
        "/v1/prompts/triage/run",
        headers={**other_admin.headers, "Idempotency-Key": "shared-key"},
        json={"variables": VARIABLES},
    )
    assert theirs.status_code == 200, theirs.text
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    bad = await client.post(
        "/v1/prompts/triage/run",
        headers={**runner.headers, "Idempotency-Key": "  "},
        json={"variables": VARIABLES},
    )
    assert_names_field(assert_problem(bad, 422), "header.Idempotency-Key")


EVIL_FORMAT = {
    "type": "object",
    "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}},
    "required": ["code"],
}
EVIL_OUTPUT = {"code": "a" * 40 + "!"}  # backtracks for far longer than a render may take


async def test_an_output_too_costly_to_check_fails_the_run_and_is_recorded(
    app, client, admin, runner, fake_openai
):
    await make_prompt(client, admin, response_format=EVIL_FORMAT)
    await use_fake(client, admin, fake_openai)
    fake_openai.set_default(Reply(EVIL_OUTPUT))
    whole = await run(client, runner, {"variables": VARIABLES})
    problem = assert_problem(whole, 422)
    assert "render_seconds" in problem["detail"]
    record = await stored(app, client, runner, whole.headers["X-Promptlogic-Run-Id"])
    assert record["status"] == "failed"
    assert record["error"]["type"] == problem["type"].rsplit("/", 1)[-1]
    streamed = await run(client, runner, {"variables": VARIABLES, "stream": True})
    name, error = events_of(streamed.text)[-1]
    assert name == "error"
    assert error["status"] == 422
    assert (await stored(app, client, runner, error["id"]))["status"] == "failed"
