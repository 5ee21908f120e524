"""The evals pages over HTTP: datasets (cases, import, export, a case from a run, a stale edit),
starting an eval and reading its results, the chart, the comparison, the gate on the label-move
confirmation, and who may do what. Evals run in this process, against the fake upstream, which
echoes the last user message (`echo: <ticket>`)."""

from __future__ import annotations

import itertools
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

from promptlogic.evals.models import EvalRun
from promptlogic.evals.runner import run_eval
from promptlogic.runs.pipeline import RunServices
from promptlogic.ui.routes.evals import build_chart
from tests.evals.test_eval_runs import dataset, start
from tests.evals.test_gates import BETTER, WORSE
from tests.factories import make_key, make_tenant
from tests.runs.support import VARIABLES, make_prompt, run, stored, use_fake
from tests.ui.test_prompt_pages import label_of

CASES_JSONL = (
    b'{"inputs": {"company": "Acme", "ticket": "Where is my parcel?"}, '
    b'"expected": "echo: Where is my parcel?", "tags": ["parcel"]}\n'
    b'{"expected": "no inputs"}\n'
    b'{"inputs": {"company": "Acme", "ticket": "Refund me."}, "expected": "echo: Refund me."}\n'
    b"not json at all\n"
)
CASES_CSV = (
    b"ticket,company,expected,tags\n"
    b"Hello?,Acme,something else,greeting|p2\n"
    b"Too,many,cells,here,really\n"
)


async def new_dataset(signed, name: str = "tickets") -> None:
    made = await signed.client.post(
        "/ui/datasets-new", data={"csrf_token": signed.csrf, "name": name, "description": "T"}
    )
    assert made.status_code == 303, made.text
    assert made.headers["location"] == f"/ui/datasets/{name}"


async def add_case(signed, name: str, inputs: dict, expected: str = "", **fields: str):
    data = {"csrf_token": signed.csrf, "inputs": json.dumps(inputs), "expected": expected}
    return await signed.client.post(f"/ui/datasets/{name}/cases", data={**data, **fields})


async def import_file(signed, name: str, filename: str, content: bytes, file_format="auto"):
    return await signed.client.post(
        f"/ui/datasets/{name}/import",
        data={"csrf_token": signed.csrf, "format": file_format},
        files={"file": (filename, content, "application/octet-stream")},
    )


def case_ids(html: str) -> list[str]:
    return re.findall(r'data-case="([0-9a-f-]{36})"', html)


async def cases_api(client, admin, name: str = "tickets") -> list[dict]:
    answer = await client.get(f"/v1/datasets/{name}/cases", headers=admin.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


async def process(app, tenant, eval_id: str) -> None:
    """Run a queued eval here, as a worker would."""
    await run_eval(RunServices.of(app.state), tenant.id, uuid.UUID(eval_id))
    await app.state.run_recorder.flush()


async def start_in_ui(signed, **fields: str):
    data = {
        "csrf_token": signed.csrf,
        "prompt": "triage",
        "target": "1",
        "dataset": "tickets",
        "evaluators": '[{"type": "exact"}]',
        "repeat": "1",
        "concurrency": "2",
        **fields,
    }
    return await signed.client.post("/ui/evals-new", data=data)


def eval_id_of(answer) -> str:
    assert answer.status_code == 303, answer.text[:500]
    found = re.fullmatch(r"/ui/evals/([0-9a-f-]{36})", answer.headers["location"])
    assert found is not None, answer.headers["location"]
    return found.group(1)


async def triage_with_tickets(client, admin, fake_openai) -> None:
    """`triage` v1 on production, the fake as provider, and `tickets`: 2 of 3 cases pass v1."""
    await use_fake(client, admin, fake_openai)
    await make_prompt(client, admin, "triage")
    await dataset(client, admin)


async def add_versions(client, admin) -> None:
    """v2 (worse: no case passes) and v3 (as good as v1)."""
    for version in (WORSE, BETTER):
        added = await client.post(
            "/v1/prompts/triage/versions", headers=admin.headers, json=version
        )
        assert added.status_code == 201, added.text


# Datasets


async def test_datasets_are_created_listed_and_named_once(as_owner, client, admin):
    await new_dataset(as_owner)
    listed = await as_owner.client.get("/ui/datasets")
    assert listed.status_code == 200
    assert 'data-dataset="tickets"' in listed.text
    assert 'href="/ui/datasets/tickets"' in listed.text
    taken = await as_owner.client.post(
        "/ui/datasets-new", data={"csrf_token": as_owner.csrf, "name": "tickets"}
    )
    assert taken.status_code == 409
    assert "already exists" in taken.text
    bad = await as_owner.client.post(
        "/ui/datasets-new", data={"csrf_token": as_owner.csrf, "name": "Not A Name"}
    )
    assert bad.status_code == 422
    assert 'value="Not A Name"' in bad.text
    assert 'aria-invalid="true"' in bad.text


async def test_adding_a_case_and_a_wrong_one_kept_as_typed(as_editor, client, admin):
    await new_dataset(as_editor)
    wrong = await as_editor.client.post(
        "/ui/datasets/tickets/cases",
        data={"csrf_token": as_editor.csrf, "inputs": '{"ticket": ', "expected": "x"},
    )
    assert wrong.status_code == 422
    assert "not valid JSON" in wrong.text
    assert "{&#34;ticket&#34;: </textarea>" in wrong.text  # what was typed, kept
    not_object = await add_case(as_editor, "tickets", [1, 2])  # type: ignore[arg-type]
    assert not_object.status_code == 422
    assert "must be a JSON object" in not_object.text

    added = await add_case(
        as_editor,
        "tickets",
        {"ticket": "Where is my parcel?"},
        '{"priority": "low"}',
        expected_json="on",
        tags="parcel | p1",
        notes="From the FAQ",
    )
    assert added.status_code == 303, added.text
    text = await add_case(as_editor, "tickets", {"ticket": "Hi"}, "echo: Hi")
    assert text.status_code == 303
    cases = await cases_api(client, admin)
    assert cases[0]["expected"] == {"priority": "low"}
    assert cases[0]["tags"] == ["parcel", "p1"]
    assert cases[0]["notes"] == "From the FAQ"
    assert cases[1]["expected"] == "echo: Hi"
    page = await as_editor.client.get("/ui/datasets/tickets")
    assert "revision 2" in page.text
    assert case_ids(page.text) == [case["case_id"] for case in cases]


async def test_import_writes_the_good_lines_and_lists_the_bad(as_owner, client, admin):
    await new_dataset(as_owner)
    answer = await import_file(as_owner, "tickets", "cases.jsonl", CASES_JSONL)
    assert answer.status_code == 200, answer.text
    assert 'data-written="2"' in answer.text
    assert "the dataset is at revision 1" in answer.text
    assert 'data-line="2"' in answer.text  # no inputs
    assert 'data-line="4"' in answer.text  # not JSON
    assert "is required" in answer.text
    assert "is not valid JSON" in answer.text

    answer = await import_file(as_owner, "tickets", "more.csv", CASES_CSV)
    assert 'data-written="1"' in answer.text
    assert 'data-line="3"' in answer.text
    assert "the header names 4 columns" in answer.text
    cases = await cases_api(client, admin)
    assert len(cases) == 3
    assert cases[2]["inputs"] == {"ticket": "Hello?", "company": "Acme"}
    assert cases[2]["tags"] == ["greeting", "p2"]

    nothing = await import_file(as_owner, "tickets", "bad.jsonl", b"[]\n")
    assert 'data-written="0"' in nothing.text
    assert "the revision stays 2" in nothing.text
    not_utf8 = await import_file(as_owner, "tickets", "bad.csv", b"ticket\n\xff\xfe\n")
    assert not_utf8.status_code == 422
    assert "not UTF-8" in not_utf8.text


async def test_export_gives_back_what_import_reads(as_viewer, as_owner, client, admin):
    await new_dataset(as_owner)
    await import_file(as_owner, "tickets", "cases.jsonl", CASES_JSONL)
    jsonl = await as_viewer.client.get("/ui/datasets/tickets/export?format=jsonl")
    assert jsonl.status_code == 200
    assert jsonl.headers["content-disposition"] == 'attachment; filename="tickets-r1.jsonl"'
    lines = [json.loads(line) for line in jsonl.text.splitlines()]
    assert [line["inputs"]["ticket"] for line in lines] == ["Where is my parcel?", "Refund me."]
    csv = await as_viewer.client.get("/ui/datasets/tickets/export?format=csv&revision=1")
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "company,ticket,expected,tags,notes"
    again = await import_file(as_owner, "tickets", "back.csv", csv.content)
    assert 'data-written="2"' in again.text
    assert len(await cases_api(client, admin)) == 4
    beyond = await as_viewer.client.get("/ui/datasets/tickets/export?revision=9")
    assert beyond.status_code == 422


async def test_a_stale_case_edit_conflicts_and_keeps_what_was_typed(as_owner, client, admin):
    await new_dataset(as_owner)
    await add_case(as_owner, "tickets", {"ticket": "Hi"}, "echo: Hi")
    case_id = (await cases_api(client, admin))[0]["case_id"]
    form = await as_owner.client.get(f"/ui/datasets/tickets/cases/{case_id}")
    assert form.status_code == 200
    assert 'name="revision" value="1"' in form.text
    # Someone else adds a case after this page showed revision 1.
    await client.post(
        "/v1/datasets/tickets/cases", headers=admin.headers, json={"inputs": {"ticket": "Yo"}}
    )
    typed = {
        "csrf_token": as_owner.csrf,
        "revision": "1",
        "inputs": '{"ticket": "Hi there"}',
        "expected": "echo: Hi there",
        "tags": "mine",
        "notes": "my notes",
    }
    stale = await as_owner.client.post(f"/ui/datasets/tickets/cases/{case_id}", data=typed)
    assert stale.status_code == 409
    assert "data-conflict" in stale.text
    assert "echo: Hi there</textarea>" in stale.text
    assert 'value="mine"' in stale.text
    assert 'name="revision" value="2"' in stale.text  # saving again is a deliberate overwrite
    assert (await cases_api(client, admin))[0]["expected"] == "echo: Hi"

    saved = await as_owner.client.post(
        f"/ui/datasets/tickets/cases/{case_id}", data={**typed, "revision": "2"}
    )
    assert saved.status_code == 303, saved.text
    case = (await cases_api(client, admin))[0]
    assert (case["case_id"], case["expected"], case["tags"]) == (
        case_id,
        "echo: Hi there",
        ["mine"],
    )

    deleted = await as_owner.client.post(
        f"/ui/datasets/tickets/cases/{case_id}/delete",
        data={"csrf_token": as_owner.csrf, "revision": "3"},
    )
    assert deleted.status_code == 303
    assert [c["case_id"] for c in await cases_api(client, admin)] != [case_id]
    assert case_id not in [c["case_id"] for c in await cases_api(client, admin)]


async def test_a_run_becomes_a_case_with_its_output_expected(
    app, as_editor, client, admin, fake_openai
):
    await use_fake(client, admin, fake_openai)
    await make_prompt(client, admin, "triage")
    await new_dataset(as_editor)
    run_id = (await run(client, admin, {"variables": VARIABLES})).json()["id"]
    await stored(app, client, admin, run_id)
    detail = await as_editor.client.get(f"/ui/runs/{run_id}")
    assert f'href="/ui/datasets-from-run?run={run_id}"' in detail.text
    form = await as_editor.client.get(f"/ui/datasets-from-run?run={run_id}")
    assert form.status_code == 200
    assert '<option value="tickets"' in form.text
    unchosen = await as_editor.client.post(
        "/ui/datasets-from-run", data={"csrf_token": as_editor.csrf, "run": run_id}
    )
    assert unchosen.status_code == 422
    assert "choose a dataset" in unchosen.text
    added = await as_editor.client.post(
        "/ui/datasets-from-run",
        data={
            "csrf_token": as_editor.csrf,
            "run": run_id,
            "dataset": "tickets",
            "expected": "output",
            "tags": "from-prod",
        },
    )
    assert added.status_code == 303, added.text
    (case,) = await cases_api(client, admin)
    assert case["inputs"] == VARIABLES
    assert case["expected"] == "echo: Where is my parcel?"
    assert case["source_run_id"] == run_id
    assert case["tags"] == ["from-prod"]


# Eval runs


async def test_starting_an_eval_and_reading_its_results(
    app, tenant, as_editor, client, admin, fake_openai
):
    await triage_with_tickets(client, admin, fake_openai)
    form = await as_editor.client.get("/ui/evals-new?prompt=triage")
    assert form.status_code == 200
    assert "[{&#34;type&#34;: &#34;exact&#34;}]</textarea>" in form.text  # the default
    eval_id = eval_id_of(await start_in_ui(as_editor))

    queued = await as_editor.client.get(f"/ui/evals/{eval_id}")
    assert 'data-status="queued"' in queued.text
    assert f'data-poll="/ui/evals/{eval_id}/progress"' in queued.text
    assert "evals.js" in queued.text
    assert "Cancel eval" in queued.text
    progress = await as_editor.client.get(f"/ui/evals/{eval_id}/progress")
    assert progress.json() == {"status": "queued", "completed": 0, "total": 3, "finished": False}

    await process(app, tenant, eval_id)

    done = await as_editor.client.get(f"/ui/evals/{eval_id}")
    assert 'data-status="succeeded"' in done.text
    assert "data-poll" not in done.text
    assert "Cancel eval" not in done.text
    assert re.search(r"data-pass-rate><strong>66.7%</strong>", done.text)
    assert done.text.count("data-result=") == 3
    assert "echo: Hello?" in done.text  # the failing case's output…
    assert "something else" in done.text  # …and the reason names what was expected
    assert done.text.count('href="/ui/runs/') == 3
    assert "style=" not in done.text
    assert re.search(r"<script(?![^>]*\bsrc=)", done.text) is None
    progress = await as_editor.client.get(f"/ui/evals/{eval_id}/progress")
    assert progress.json()["finished"] is True
    listed = await as_editor.client.get("/ui/evals")
    assert f'data-eval="{eval_id}"' in listed.text


async def test_a_wrong_eval_form_names_the_fields(as_owner, client, admin, fake_openai):
    await triage_with_tickets(client, admin, fake_openai)
    for fields, field, message in (
        ({"evaluators": "[{"}, "evaluators", "not valid JSON"),
        ({"evaluators": '{"type": "exact"}'}, "evaluators", "must be a JSON list"),
        ({"evaluators": '[{"type": "json_field"}]'}, "evaluators", "path"),
        ({"repeat": "lots"}, "repeat", "whole number"),
        ({"repeat": "21"}, "repeat", "less than or equal to 20"),
        ({"dataset": "nope"}, "form", "No dataset named `nope`"),
        ({"target": "9"}, "form", "9"),
        ({"target": "99999999999"}, "target", "is not a version"),
        ({"target": "Not a label"}, "target", "should match pattern"),
    ):
        answer = await start_in_ui(as_owner, **fields)
        assert answer.status_code == 422, (fields, answer.status_code)
        assert message in answer.text, (fields, message)
        if field != "form":
            assert f'id="eval-{field}"' in answer.text
            assert f'aria-describedby="{field}-error"' in answer.text, fields
    kept = await start_in_ui(as_owner, evaluators="[{")
    assert "[{</textarea>" in kept.text


async def test_cancelling_an_eval(app, tenant, as_owner, client, admin, fake_openai):
    await triage_with_tickets(client, admin, fake_openai)
    eval_id = eval_id_of(await start_in_ui(as_owner))
    url = f"/ui/evals/{eval_id}/cancel"
    cancelled = await as_owner.client.post(url, data={"csrf_token": as_owner.csrf})
    assert cancelled.status_code == 303
    await process(app, tenant, eval_id)
    page = await as_owner.client.get(f"/ui/evals/{eval_id}")
    assert 'data-status="cancelled"' in page.text
    assert fake_openai.call_count() == 0
    again = await as_owner.client.post(url, data={"csrf_token": as_owner.csrf})
    assert again.status_code == 303
    assert "already ended" in (await as_owner.client.get(again.headers["location"])).text


async def finished_evals(app, tenant, signed, versions) -> dict[int, str]:
    """An eval of each version of `triage` on `tickets`, started in the UI and run here."""
    ids = {}
    for version in versions:
        ids[version] = eval_id_of(await start_in_ui(signed, target=str(version)))
        await process(app, tenant, ids[version])
    return ids


async def test_the_chart_draws_each_finished_eval_by_version(
    app, tenant, as_viewer, as_owner, client, admin, fake_openai
):
    await triage_with_tickets(client, admin, fake_openai)
    await add_versions(client, admin)
    ids = await finished_evals(app, tenant, as_owner, (1, 2))
    eval_id_of(await start_in_ui(as_owner, target="3"))  # queued: not drawn

    page = await as_viewer.client.get("/ui/evals?prompt=triage")

    assert page.status_code == 200
    chart = page.text.split('<figure class="eval-chart" data-chart="tickets">')[1]
    chart = chart.split("</figure>")[0]
    assert '<svg viewBox="0 0 760 260" role="img"' in chart
    points = re.findall(r'data-version="(\d)" data-pass-rate="([0-9.]+)"', chart)
    assert points == [("1", "0.6667"), ("2", "0.0")]
    assert f'href="/ui/evals/{ids[1]}"' in chart
    assert 'class="series pass"' in chart
    y_of = dict(re.findall(r'cy="([0-9.]+)" r="5" data-version="(\d)"', chart))
    assert float(next(y for y, v in y_of.items() if v == "2")) > float(
        next(y for y, v in y_of.items() if v == "1")
    )  # v2's pass rate is drawn lower
    assert "style=" not in page.text
    assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None
    assert "The figures as a table" in page.text
    empty = await as_viewer.client.get("/ui/evals?prompt=nothing-here")
    assert "data-no-chart" in empty.text


def test_a_crowded_chart_writes_only_the_versions_there_is_room_for():
    start_time = datetime(2026, 1, 1, tzinfo=UTC)
    runs = [
        EvalRun(
            version=1 + index // 2,
            dataset_revision=1,
            summary={"pass_rate": index / 40, "cost": 0.001 * index},
            created_at=start_time + timedelta(minutes=index),
            finished_at=start_time + timedelta(minutes=index, seconds=30),
        )
        for index in range(40)
    ]
    chart = build_chart("tickets", list(reversed(runs)))
    assert [point.pass_rate for point in chart.points] == [
        i / 40 for i in range(40)
    ]  # oldest first
    written = [point.x for point in chart.points if point.labelled]
    assert all(b - a >= 28 for a, b in itertools.pairwise(written))
    assert len(written) >= 10
    assert chart.cost_ticks[-1] == (chart.top, "$0.05")  # a round top above $0.039
    assert chart.points[0].y == chart.bottom
    assert chart.points[0].cost_y == chart.bottom


async def test_the_comparison_highlights_regressions(
    app, tenant, as_owner, client, admin, fake_openai
):
    await triage_with_tickets(client, admin, fake_openai)
    await add_versions(client, admin)
    ids = await finished_evals(app, tenant, as_owner, (1, 2))
    picker = await as_owner.client.get(f"/ui/evals/{ids[2]}")
    assert f'<option value="{ids[1]}">' in picker.text

    page = await as_owner.client.get(f"/ui/evals-compare?base={ids[1]}&head={ids[2]}")

    assert page.status_code == 200
    changes = re.findall(r'data-change="(\w+)"', page.text)
    assert changes == ["regressed", "regressed", "same"]  # regressions first
    assert page.text.count('<tr class="regressed"') == 2
    assert "2 regressed" in page.text
    assert "\u221266.7 points" in page.text  # a minus sign
    assert "echo: Where is my parcel?" in page.text  # the base's output beside the head's
    assert "Ticket: Where is my parcel? for Acme" in page.text
    assert "data-different-datasets" not in page.text
    swapped = await as_owner.client.get(f"/ui/evals-compare?base={ids[2]}&head={ids[1]}")
    assert re.findall(r'data-change="(\w+)"', swapped.text) == ["improved", "improved", "same"]


# The gate on the move confirmation


async def test_the_gate_on_the_move_confirmation_refuses_the_worse_version(
    app, tenant, as_owner, as_viewer, client, admin, fake_openai
):
    await triage_with_tickets(client, admin, fake_openai)
    await add_versions(client, admin)
    gate = {"dataset": "tickets", "evaluators": [{"type": "exact"}], "min_pass_rate": 0.6}
    answer = await client.put(
        "/v1/prompts/triage/gates/production", headers=admin.headers, json=gate
    )
    assert answer.status_code == 200, answer.text

    # No eval yet: the confirmation says what the move lacks and offers to start it.
    lacking = await as_owner.client.get("/ui/prompts/triage/labels/production/move?version=3")
    assert "data-gate" in lacking.text
    assert "at least 60%" in lacking.text
    assert "data-gate-failures" in lacking.text
    assert "version 3: no finished eval" in lacking.text
    assert "/ui/evals-new?prompt=triage&amp;target=3&amp;dataset=tickets" in lacking.text

    await finished_evals(app, tenant, as_owner, (1, 2, 3))

    worse = await as_owner.client.get("/ui/prompts/triage/labels/production/move?version=2")
    assert 'data-check="gate.pass_rate"' in worse.text
    assert 'data-check="gate.regressions"' in worse.text
    assert "Move production to v2</button>" in worse.text  # the button stays
    refused = await as_owner.client.post(
        "/ui/prompts/triage/labels/production/move",
        data={"csrf_token": as_owner.csrf, "version": "2", "expected": "1"},
    )
    assert refused.status_code == 409
    assert "data-gate-refused" in refused.text
    assert "version 2: pass rate 0.00% is under 60.00%" in refused.text
    assert "2 cases regressed against version 1" in refused.text
    assert await label_of(client, admin, "triage") == 1

    better = await as_owner.client.get("/ui/prompts/triage/labels/production/move?version=3")
    assert "data-gate-passes" in better.text
    moved = await as_owner.client.post(
        "/ui/prompts/triage/labels/production/move",
        data={"csrf_token": as_owner.csrf, "version": "3", "expected": "1"},
    )
    assert moved.status_code == 303
    assert await label_of(client, admin, "triage") == 3

    detail = await as_viewer.client.get("/ui/prompts/triage")
    assert 'data-gate="production"' in detail.text
    assert 'href="#gate-production"' in detail.text
    assert "none allowed" in detail.text


# Who may do what


async def test_another_tenants_datasets_and_evals_are_not_found(
    app, session, as_owner, client, fake_openai
):
    other = await make_tenant(session, "globex")
    key = await make_key(session, other, ["admin"], name="globex-deployer")
    await triage_with_tickets(client, key, fake_openai)
    eval_id = (await start(client, key, version=1)).json()["id"]
    case_id = (await cases_api(client, key))[0]["case_id"]
    run_id = (await run(client, key, {"variables": VARIABLES})).json()["id"]
    await stored(app, client, key, run_id)
    for url in (
        "/ui/datasets/tickets",
        f"/ui/datasets/tickets/cases/{case_id}",
        "/ui/datasets/tickets/export",
        f"/ui/evals/{eval_id}",
        f"/ui/evals/{eval_id}/progress",
        f"/ui/evals-compare?base={eval_id}&head={eval_id}",
        f"/ui/datasets-from-run?run={run_id}",
    ):
        answer = await as_owner.client.get(url)
        assert answer.status_code == 404, url
    data = {"csrf_token": as_owner.csrf}
    for url in (f"/ui/evals/{eval_id}/cancel", "/ui/datasets/tickets/delete"):
        answer = await as_owner.client.post(url, data=data)
        assert answer.status_code == 404, url
    taken = await as_owner.client.post(
        "/ui/datasets-from-run", data={**data, "run": run_id, "dataset": "tickets"}
    )
    assert taken.status_code == 404  # the run is not this tenant's
    assert "tickets" not in (await as_owner.client.get("/ui/datasets")).text.split("<h1>")[1]
    assert eval_id not in (await as_owner.client.get("/ui/evals")).text


async def test_a_viewer_reads_but_is_offered_no_change(
    app, tenant, as_viewer, as_owner, client, admin, fake_openai
):
    await triage_with_tickets(client, admin, fake_openai)
    eval_id = eval_id_of(await start_in_ui(as_owner))
    case_id = (await cases_api(client, admin))[0]["case_id"]
    pages = {
        "/ui/datasets": ("New dataset",),
        "/ui/datasets/tickets": ("Add case", "Import", "Delete dataset", "Start an eval"),
        f"/ui/datasets/tickets/cases/{case_id}": ("Save case", "Delete case"),
        "/ui/evals": ("Start an eval",),
        f"/ui/evals/{eval_id}": ("Cancel eval",),
    }
    for url, offers in pages.items():
        answer = await as_viewer.client.get(url)
        assert answer.status_code == 200, url
        for offer in offers:
            assert offer not in answer.text, (url, offer)
    assert "Cancel eval" in (await as_owner.client.get(f"/ui/evals/{eval_id}")).text
    assert (await as_viewer.client.get("/ui/evals-new")).status_code == 403
    refused = await start_in_ui(as_viewer)
    assert refused.status_code == 403
    cancel = await as_viewer.client.post(
        f"/ui/evals/{eval_id}/cancel", data={"csrf_token": as_viewer.csrf}
    )
    assert cancel.status_code == 403
    added = await add_case(as_viewer, "tickets", {"ticket": "Hi"})
    assert added.status_code == 403
    assert len(await cases_api(client, admin)) == 3


async def test_a_rule_author_sees_no_evals(as_rule_author):
    for url in ("/ui/evals", "/ui/datasets", "/ui/evals-compare"):
        assert (await as_rule_author.client.get(url)).status_code == 403, url
    home = await as_rule_author.client.get("/ui/rules")
    assert 'href="/ui/evals"' not in home.text
