"""`promptlogic eval` for product CI: the installed command, run as a subprocess against the
test app served over real HTTP, with its evals run in this process while it waits (as a worker
would). The fake upstream echoes `echo: <ticket>`, which 2 of the 3 cases expect."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from promptlogic.cli.evals import _parse_evaluator
from promptlogic.evals.runner import run_eval
from promptlogic.runs.pipeline import RunServices
from tests.evals.test_eval_runs import dataset
from tests.evals.test_gates import BETTER
from tests.live import serving
from tests.runs.support import make_prompt, use_fake

COMMAND = Path(sys.executable).with_name("promptlogic")
EXACT = ["--dataset", "tickets", "--evaluator", "exact"]
FAST = ["--poll", "0.1"]


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


async def cli(url: str | None, token: str | None, *args: str) -> Ran:
    """`promptlogic eval ARGS` with only these two settings in its environment; the key must
    appear in none of its output, whatever happens."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PROMPTLOGIC_")}
    env.update({"PROMPTLOGIC_URL": url or "", "PROMPTLOGIC_API_KEY": token or ""})
    process = await asyncio.create_subprocess_exec(
        str(COMMAND),
        "eval",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    ran = Ran(process.returncode or 0, out.decode(), err.decode())
    if token:
        assert token not in ran.out + ran.err
    return ran


@pytest.fixture
async def live(app, client) -> AsyncIterator[str]:
    """The test app on a real port (tables cleaned first, by `client`)."""
    async with serving(app) as url:
        yield url


@contextlib.asynccontextmanager
async def worker(app, client, key) -> AsyncIterator[None]:
    """Runs each eval queued meanwhile, in this process, as `promptlogic worker` would."""
    me = await client.get("/v1/me", headers=key.headers)
    tenant_id = uuid.UUID(me.json()["tenant"]["id"])
    seen: set[str] = set()

    async def loop() -> None:
        while True:
            page = await client.get("/v1/evals", headers=key.headers)
            for item in page.json()["items"]:
                if item["status"] == "queued" and item["id"] not in seen:
                    seen.add(item["id"])
                    await run_eval(RunServices.of(app.state), tenant_id, uuid.UUID(item["id"]))
            await asyncio.sleep(0.05)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def setup(client, admin, fake_openai) -> None:
    await use_fake(client, admin, fake_openai)
    await make_prompt(client, admin, "triage")
    await dataset(client, admin)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_the_bar_met_exits_0_with_a_summary_table(app, client, admin, fake_openai, live):
    await setup(client, admin, fake_openai)
    async with worker(app, client, admin):
        ran = await cli(
            live, admin.token, "triage", "--label", "production", *EXACT, "--min-pass", "0.6", *FAST
        )
    assert ran.code == 0, ran
    assert "66.7% (2 of 3), bar 60.0% from --min-pass: met" in ran.out
    assert "triage v1 (production)" in ran.out
    assert "1. exact" in ran.out
    eval_id = ran.out.split()[1]
    assert f"{live}/v1/evals/{eval_id}" in ran.out
    assert "failed cases (first 1):" in ran.out
    assert "something else" in ran.out  # the reason the third case failed
    assert f"eval {eval_id}: queued, 0 of 3 runs" in ran.err  # progress, in a CI log
    stored = await client.get(f"/v1/evals/{eval_id}", headers=admin.headers)
    assert stored.json()["status"] == "succeeded"


async def test_the_bar_missed_exits_1(app, client, admin, fake_openai, live):
    await setup(client, admin, fake_openai)
    async with worker(app, client, admin):
        below = await cli(
            live, admin.token, "triage", "--version", "1", *EXACT, "--min-pass", "0.9", *FAST
        )
        default = await cli(live, admin.token, "triage", *EXACT, *FAST)
    assert below.code == 1, below
    assert "bar 90.0% from --min-pass: NOT MET" in below.out
    assert "eval below the bar: 66.7% passed, 90.0% needed" in below.err
    assert default.code == 1, default  # by default every case must pass
    assert "bar 100.0% from the default" in default.out


async def test_json_prints_the_eval_and_nothing_else(app, client, admin, fake_openai, live):
    await setup(client, admin, fake_openai)
    async with worker(app, client, admin):
        ran = await cli(
            live,
            admin.token,
            "triage",
            *EXACT,
            "--min-pass",
            "0.5",
            "--json",
            "-e",
            "contains:value=echo",
            "--repeat",
            "2",
            *FAST,
        )
    assert ran.code == 0, ran
    body = json.loads(ran.out)
    assert body["status"] == "succeeded"
    assert body["evaluators"][1]["value"] == "echo"
    assert body["repeat"] == 2
    assert body["summary"]["pass_rate"] == round(2 / 3, 4)
    assert body["summary"]["results"] == 6
    assert ran.err == ""  # no progress lines in a log with --json


async def test_the_gate_supplies_evaluators_dataset_and_bar(app, client, admin, fake_openai, live):
    await setup(client, admin, fake_openai)
    gate = {
        "dataset": "tickets",
        "evaluators": [{"type": "contains", "value": "echo:"}],
        "min_pass_rate": 1.0,
        "no_regressions": False,
    }
    put = await client.put("/v1/prompts/triage/gates/production", headers=admin.headers, json=gate)
    assert put.status_code == 200, put.text
    added = await client.post(
        "/v1/prompts/triage/versions",
        headers=admin.headers,
        json=BETTER,
    )
    assert added.status_code == 201, added.text

    async with worker(app, client, admin):
        ran = await cli(live, admin.token, "triage", "--version", "2", "--json", *FAST)

    assert ran.code == 0, ran
    body = json.loads(ran.out)
    assert (body["version"], body["dataset"]) == (2, "tickets")
    assert body["evaluators"] == put.json()["evaluators"]
    assert body["summary"]["pass_rate"] == 1.0
    # Run with exactly the gate's evaluators, the eval is one the gated move counts.
    moved = await client.put(
        "/v1/prompts/triage/labels/production",
        headers=admin.headers,
        json={"version": 2, "expected_version": 1},
    )
    assert moved.status_code == 200, moved.text


async def test_the_gates_bar_is_reported(app, client, admin, fake_openai, live):
    await setup(client, admin, fake_openai)
    gate = {"dataset": "tickets", "evaluators": [{"type": "exact"}], "min_pass_rate": 0.9}
    put = await client.put("/v1/prompts/triage/gates/staging", headers=admin.headers, json=gate)
    assert put.status_code == 200, put.text
    async with worker(app, client, admin):
        ran = await cli(live, admin.token, "triage", "--gate", "staging", *FAST)
    assert ran.code == 1, ran
    assert "bar 90.0% from the staging gate: NOT MET" in ran.out


async def test_without_evaluators_or_gate_exits_2(client, admin, fake_openai, live):
    await setup(client, admin, fake_openai)
    ran = await cli(live, admin.token, "triage", "--dataset", "tickets")
    assert ran.code == 2, ran
    assert "no evaluators given" in ran.err
    assert "Label `production` of `triage` has no gate." in ran.err
    assert ran.out == ""


async def test_a_refused_request_exits_2_with_the_servers_problem(client, admin, fake_openai, live):
    await setup(client, admin, fake_openai)
    unknown = await cli(live, admin.token, "triage", "--dataset", "nope", "-e", "exact")
    assert unknown.code == 2, unknown
    assert "error: No dataset named `nope`. (404)" in unknown.err
    invalid = await cli(
        live,
        admin.token,
        "triage",
        "--dataset",
        "tickets",
        "-e",
        "regex:pattern=(",
        "-e",
        'exact:case_sensitive="no"',
    )
    assert invalid.code == 2, invalid
    assert "body.evaluators.0" in invalid.err
    assert "is not a valid regular expression" in invalid.err
    assert "body.evaluators.1" in invalid.err
    wrong_key = await cli(live, "pl_not-a-key-0123456789", "triage", *EXACT)
    assert wrong_key.code == 2, wrong_key
    assert "(401)" in wrong_key.err
    assert (await client.get("/v1/evals", headers=admin.headers)).json()["items"] == []


async def test_a_slow_eval_times_out_with_3_and_is_cancelled(client, admin, fake_openai, live):
    await setup(client, admin, fake_openai)
    ran = await cli(live, admin.token, "triage", *EXACT, "--timeout", "1", "--poll", "0.2")
    assert ran.code == 3, ran
    assert "not finished within 1 s; cancelled it" in ran.err
    assert "cancelled" in ran.out
    evals = (await client.get("/v1/evals", headers=admin.headers)).json()["items"]
    assert [item["status"] for item in evals] == ["cancelled"]


def losing_the_first_start(app: Any) -> Any:
    """`app` behind a gateway that loses its answer to the first POST /v1/evals (the eval is
    started all the same) and answers 502 instead."""
    lost: list[bool] = []

    async def gateway(scope: Any, receive: Any, send: Any) -> None:
        first_start = scope["type"] == "http" and (scope["method"], scope["path"]) == (
            "POST",
            "/v1/evals",
        )
        if not first_start or lost:
            await app(scope, receive, send)
            return
        lost.append(True)

        async def drop(message: Any) -> None:
            return None

        await app(scope, receive, drop)
        await send({"type": "http.response.start", "status": 502, "headers": []})
        await send({"type": "http.response.body", "body": b"bad gateway"})

    return gateway


async def test_a_start_whose_answer_is_lost_is_retried_without_a_second_eval(
    app, client, admin, fake_openai
):
    await setup(client, admin, fake_openai)
    async with serving(losing_the_first_start(app)) as url, worker(app, client, admin):
        ran = await cli(url, admin.token, "triage", *EXACT, "--min-pass", "0.6", *FAST)
    assert ran.code == 0, ran
    evals = (await client.get("/v1/evals", headers=admin.headers)).json()["items"]
    assert [item["id"] for item in evals] == [ran.out.split()[1]]


async def test_missing_settings_exit_2():
    no_url = await cli(None, "pl_secret-key-0123456789", "triage", *EXACT)
    assert no_url.code == 2, no_url
    assert "PROMPTLOGIC_URL not set" in no_url.err
    no_key = await cli("http://127.0.0.1:9", None, "triage", *EXACT)
    assert no_key.code == 2, no_key
    assert "PROMPTLOGIC_API_KEY not set" in no_key.err
    both = await cli("http://127.0.0.1:9", "pl_x", "triage", "--version", "1", "--label", "x")
    assert both.code == 2, both
    assert "not both" in both.err


async def test_an_unreachable_server_exits_4():
    url = f"http://127.0.0.1:{closed_port()}"
    ran = await cli(url, "pl_secret-key-0123456789", "triage", *EXACT, *FAST)
    assert ran.code == 4, ran
    assert f"cannot reach {url}" in ran.err
    assert ran.out == ""


def test_evaluator_flags_read_as_json_values_or_text():
    assert _parse_evaluator("exact") == {"type": "exact"}
    assert _parse_evaluator("json_field:path=priority") == {
        "type": "json_field",
        "path": "priority",
    }
    assert _parse_evaluator("latency:max_ms=3000,weight=0.5") == {
        "type": "latency",
        "max_ms": 3000,
        "weight": 0.5,
    }
    assert _parse_evaluator('contains:value="42",case_sensitive=true') == {
        "type": "contains",
        "value": "42",
        "case_sensitive": True,
    }
    assert _parse_evaluator("contains:value=NaN") == {"type": "contains", "value": "NaN"}
    regex = '{"type": "regex", "pattern": "a,b", "flags": ["i"]}'
    assert _parse_evaluator(regex) == json.loads(regex)
