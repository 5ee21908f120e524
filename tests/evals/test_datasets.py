"""Datasets through the API: CRUD, cases in revisions, If-Match, cases from runs, scopes,
tenant isolation, and the service functions the eval runner calls."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from promptlogic.demo_prompts import TRIAGE_RESPONSE_FORMAT
from promptlogic.errors import NotFound
from promptlogic.evals import datasets
from promptlogic.evals.dataset_schemas import MAX_CASES_PER_REQUEST, MAX_JSON_BYTES
from tests.factories import KeyFixture, make_key, make_run, make_tenant
from tests.helpers import assert_names_field, assert_problem, walk_pages
from tests.runs.support import VARIABLES, make_prompt, run

SECRET = "card 4111-1111-1111-1111"  # a case's content that must never reach the audit


@pytest.fixture
async def writer(session, tenant) -> KeyFixture:
    return await make_key(session, tenant, ["write"], name="curator")


@pytest.fixture
async def reader(session, tenant) -> KeyFixture:
    return await make_key(session, tenant, ["read"], name="viewer")


async def make_dataset(client, key, name="support", **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/datasets", headers=key.headers, json={"name": name, **body})
    assert response.status_code == 201, response.text
    return response.json()


async def add(client, key, body: Any, name="support") -> dict[str, Any]:
    response = await client.post(f"/v1/datasets/{name}/cases", headers=key.headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def cases(client, key, name="support", **params: Any) -> list[dict[str, Any]]:
    items, _ = await walk_pages(
        client, f"/v1/datasets/{name}/cases", key.headers, limit=200, params=params
    )
    return items


def case(question: str, **fields: Any) -> dict[str, Any]:
    return {"inputs": {"question": question}, **fields}


def questions(items: list[dict[str, Any]]) -> list[str]:
    return [item["inputs"]["question"] for item in items]


async def table_counts(session) -> tuple[Any, ...]:
    row = await session.execute(
        text(
            "SELECT (SELECT count(*) FROM datasets), (SELECT coalesce(sum(revision), 0) FROM "
            "datasets), (SELECT count(*) FROM dataset_cases), (SELECT count(*) FROM "
            "dataset_cases WHERE removed_revision IS NOT NULL), (SELECT count(*) FROM audit_events)"
        )
    )
    return tuple(row.one())


# Datasets


async def test_a_new_dataset_is_empty_at_revision_0_and_its_name_is_unique(client, writer):
    created = await make_dataset(client, writer, description="Tickets we must get right")
    assert created["name"] == "support"
    assert created["description"] == "Tickets we must get right"
    assert (created["revision"], created["case_count"]) == (0, 0)
    assert created["created_at"] == created["updated_at"]
    again = await client.post("/v1/datasets", headers=writer.headers, json={"name": "support"})
    assert_problem(again, 409)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Support Set"}, "body.name"),
        ({"name": ""}, "body.name"),
        ({"name": "x" * 101}, "body.name"),
        ({"name": "ok", "description": "d" * 2001}, "body.description"),
        ({"name": "ok", "revision": 3}, "body.revision"),
        ({}, "body.name"),
    ],
)
async def test_a_bad_dataset_body_is_a_422_naming_the_field(client, writer, body, field):
    response = await client.post("/v1/datasets", headers=writer.headers, json=body)
    assert_names_field(assert_problem(response, 422), field)


async def test_datasets_are_listed_by_name_with_revision_and_case_count(client, writer):
    for name in ("gamma", "alpha", "beta"):
        await make_dataset(client, writer, name)
    await add(client, writer, [case("a"), case("b")], name="beta")
    items, pages = await walk_pages(client, "/v1/datasets", writer.headers, limit=2)
    assert pages == 2
    assert [(i["name"], i["revision"], i["case_count"]) for i in items] == [
        ("alpha", 0, 0),
        ("beta", 1, 2),
        ("gamma", 0, 0),
    ]


async def test_get_answers_the_revision_as_etag_and_patch_changes_only_the_description(
    client, writer
):
    await make_dataset(client, writer)
    await add(client, writer, case("a"))
    response = await client.get("/v1/datasets/support", headers=writer.headers)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"1"'
    before = response.json()
    assert (before["revision"], before["case_count"]) == (1, 1)
    patched = await client.patch(
        "/v1/datasets/support", headers=writer.headers, json={"description": "v2"}
    )
    assert patched.status_code == 200, patched.text
    after = patched.json()
    assert after["description"] == "v2"
    assert (after["revision"], after["case_count"]) == (1, 1)
    assert after["updated_at"] > before["updated_at"]
    bad = await client.patch("/v1/datasets/support", headers=writer.headers, json={"name": "x"})
    assert_names_field(assert_problem(bad, 422), "body.name")


async def test_deleting_a_dataset_deletes_every_revision_of_its_cases(client, writer, session):
    await make_dataset(client, writer)
    added = await add(client, writer, [case("a"), case("b")])
    case_id = added["items"][0]["case_id"]
    await client.patch(
        f"/v1/datasets/support/cases/{case_id}", headers=writer.headers, json={"notes": "x"}
    )
    response = await client.delete("/v1/datasets/support", headers=writer.headers)
    assert response.status_code == 204, response.text
    assert_problem(await client.get("/v1/datasets/support", headers=writer.headers), 404)
    assert_problem(await client.delete("/v1/datasets/support", headers=writer.headers), 404)
    assert await session.scalar(text("SELECT count(*) FROM dataset_cases")) == 0
    await make_dataset(client, writer)  # the name is free again, and the new one is empty
    assert await cases(client, writer) == []


# Adding cases


async def test_one_case_or_a_list_is_added_in_one_revision(client, writer):
    await make_dataset(client, writer)
    one = await add(
        client,
        writer,
        case("Where is my parcel?", expected="It ships today.", tags=["parcel"], notes="n"),
    )
    assert one["revision"] == 1
    (first,) = one["items"]
    assert first == {
        "case_id": first["case_id"],
        "inputs": {"question": "Where is my parcel?"},
        "expected": "It ships today.",
        "tags": ["parcel"],
        "notes": "n",
        "source_run_id": None,
        "added_revision": 1,
    }
    many = await add(
        client,
        writer,
        [case("b", expected={"priority": "high"}), case("c", expected=[1, 2]), case("d")],
    )
    assert many["revision"] == 2
    assert [item["added_revision"] for item in many["items"]] == [2, 2, 2]
    assert [item["expected"] for item in many["items"]] == [{"priority": "high"}, [1, 2], None]
    assert len({item["case_id"] for item in [first, *many["items"]]}) == 4
    response = await client.get("/v1/datasets/support", headers=writer.headers)
    assert (response.json()["revision"], response.json()["case_count"]) == (2, 4)


async def test_repeated_tags_are_kept_once(client, writer):
    await make_dataset(client, writer)
    added = await add(client, writer, case("a", tags=["x", "y", "x"]))
    assert added["items"][0]["tags"] == ["x", "y"]


BAD_CASES = [
    ({"expected": "no inputs"}, "inputs"),
    ({"inputs": ["not", "an", "object"]}, "inputs"),
    ({"inputs": {"q": "x" * MAX_JSON_BYTES}}, "inputs"),
    (case("a", expected="x" * (MAX_JSON_BYTES + 1)), "expected"),
    (case("a", tags=["t"] * 21), "tags"),
    (case("a", tags=["t" * 51]), "tags.0"),
    (case("a", tags=["a|b"]), "tags.0"),
    (case("a", tags=[" padded"]), "tags.0"),
    (case("a", tags="one,two"), "tags"),
    (case("a", notes="n" * 2001), "notes"),
    (case("a", notes=5), "notes"),
    (case("a", input={"typo": True}), "input"),
]


@pytest.mark.parametrize(("bad", "field"), BAD_CASES)
async def test_a_bad_case_in_a_list_is_a_422_naming_it_and_nothing_is_written(
    client, writer, session, bad, field
):
    await make_dataset(client, writer)
    body = [case("a"), case("b"), case("c"), bad]
    response = await client.post("/v1/datasets/support/cases", headers=writer.headers, json=body)
    problem = assert_problem(response, 422)
    assert_names_field(problem, f"body.3.{field}")
    assert all(error["field"].startswith("body.3") for error in problem["errors"])
    single = await client.post("/v1/datasets/support/cases", headers=writer.headers, json=bad)
    assert_names_field(assert_problem(single, 422), f"body.{field}")
    assert await session.scalar(text("SELECT count(*) FROM dataset_cases")) == 0
    assert await session.scalar(text("SELECT revision FROM datasets")) == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "at least one"),
        ([case("a")] * (MAX_CASES_PER_REQUEST + 1), ":import"),
        ("just text", "case object"),
        ([case("a"), "not a case"], "object"),
    ],
)
async def test_a_body_that_is_not_cases_is_a_422(client, writer, body, message):
    await make_dataset(client, writer)
    response = await client.post("/v1/datasets/support/cases", headers=writer.headers, json=body)
    problem = assert_problem(response, 422)
    assert message in problem["detail"]


async def test_numbers_json_cannot_carry_are_refused(client, writer):
    await make_dataset(client, writer)
    response = await client.post(
        "/v1/datasets/support/cases",
        headers={**writer.headers, "Content-Type": "application/json"},
        content=b'{"inputs": {"ratio": NaN}}',
    )
    assert_names_field(assert_problem(response, 422), "body.inputs")


async def test_a_dataset_holds_at_most_max_cases(client, writer, session, monkeypatch):
    monkeypatch.setattr(datasets, "MAX_CASES", 3)
    await make_dataset(client, writer)
    await add(client, writer, [case("a"), case("b")])
    response = await client.post(
        "/v1/datasets/support/cases", headers=writer.headers, json=[case("c"), case("d")]
    )
    assert "limit of 3" in assert_problem(response, 422)["detail"]
    await add(client, writer, case("c"))
    assert await session.scalar(text("SELECT revision FROM datasets")) == 2


# Listing and revisions


async def test_cases_are_listed_in_added_order_and_an_edit_keeps_a_case_in_its_place(
    client, writer
):
    await make_dataset(client, writer)
    await add(client, writer, [case(f"q{n}") for n in range(5)])
    await add(client, writer, case("q5"))
    listed = await cases(client, writer)
    await client.patch(
        f"/v1/datasets/support/cases/{listed[1]['case_id']}",
        headers=writer.headers,
        json={"inputs": {"question": "q1 edited"}},
    )
    items, pages = await walk_pages(client, "/v1/datasets/support/cases", writer.headers, limit=2)
    assert pages == 3
    assert questions(items) == ["q0", "q1 edited", "q2", "q3", "q4", "q5"]


async def test_an_earlier_revision_still_has_its_cases_as_they_were(
    client, writer, session, tenant
):
    await make_dataset(client, writer)
    first = await add(client, writer, [case("a", expected="A"), case("b"), case("c")])
    a, b, c = (item["case_id"] for item in first["items"])
    await client.patch(
        f"/v1/datasets/support/cases/{a}", headers=writer.headers, json={"expected": "A2"}
    )
    await client.delete(f"/v1/datasets/support/cases/{b}", headers=writer.headers)
    await add(client, writer, case("d"))

    at_1 = await cases(client, writer, revision=1)
    assert [(i["case_id"], i["expected"], i["added_revision"]) for i in at_1] == [
        (a, "A", 1),
        (b, None, 1),
        (c, None, 1),
    ]
    now = await client.get("/v1/datasets/support/cases", headers=writer.headers)
    assert now.json()["revision"] == 4
    assert [(i["inputs"]["question"], i["expected"]) for i in now.json()["items"]] == [
        ("a", "A2"),
        ("c", None),
        ("d", None),
    ]
    assert questions(await cases(client, writer, revision=0)) == []
    old = await client.get(
        f"/v1/datasets/support/cases/{b}", headers=writer.headers, params={"revision": 1}
    )
    assert old.status_code == 200, old.text
    assert (old.json()["inputs"], old.headers["etag"]) == ({"question": "b"}, '"1"')
    gone = await client.get(f"/v1/datasets/support/cases/{b}", headers=writer.headers)
    assert_problem(gone, 404)

    dataset = await datasets.get_dataset(session, tenant_id=tenant.id, name="support")
    for revision, expected in [(1, "a b c"), (2, "a b c"), (3, "a c"), (4, "a c d")]:
        rows = await datasets.cases_at(
            session, tenant_id=tenant.id, dataset_id=dataset.id, revision=revision
        )
        assert [row.inputs["question"] for row in rows] == expected.split()
    at_2 = await datasets.cases_at(session, tenant_id=tenant.id, dataset_id=dataset.id, revision=2)
    assert at_2[0].expected == "A2"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/datasets/support/cases",
        "/v1/datasets/support:export",
        "/v1/datasets/support/cases/00000000-0000-7000-8000-000000000000",
    ],
)
async def test_a_revision_beyond_the_current_one_is_a_422_naming_it(client, writer, path):
    await make_dataset(client, writer)
    await add(client, writer, case("a"))
    response = await client.get(path, headers=writer.headers, params={"revision": 2})
    assert_names_field(assert_problem(response, 422), "query.revision")
    negative = await client.get(path, headers=writer.headers, params={"revision": -1})
    assert_names_field(assert_problem(negative, 422), "query.revision")


async def test_a_cursor_keeps_to_the_revision_of_the_first_page(client, writer):
    await make_dataset(client, writer)
    await add(client, writer, [case(f"q{n}") for n in range(4)])
    first = (
        await client.get("/v1/datasets/support/cases", headers=writer.headers, params={"limit": 2})
    ).json()
    await add(client, writer, case("later"))
    second = await client.get(
        "/v1/datasets/support/cases",
        headers=writer.headers,
        params={"limit": 2, "cursor": first["next_cursor"]},
    )
    body = second.json()
    assert (body["revision"], questions(body["items"]), body["next_cursor"]) == (
        1,
        ["q2", "q3"],
        None,
    )
    mixed = await client.get(
        "/v1/datasets/support/cases",
        headers=writer.headers,
        params={"cursor": first["next_cursor"], "revision": 2},
    )
    assert_names_field(assert_problem(mixed, 422), "query.cursor")


# Changing cases


async def test_patching_a_case_makes_a_new_revision_and_keeps_its_id(client, writer):
    await make_dataset(client, writer)
    added = await add(client, writer, case("a", expected="A", tags=["t"], notes="n"))
    case_id = added["items"][0]["case_id"]
    url = f"/v1/datasets/support/cases/{case_id}"
    response = await client.patch(url, headers=writer.headers, json={"tags": ["u"]})
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    assert response.json() == {**added["items"][0], "tags": ["u"], "added_revision": 2}
    removed = await client.patch(url, headers=writer.headers, json={"expected": None})
    assert removed.json()["expected"] is None
    assert removed.headers["etag"] == '"3"'
    same = await client.patch(url, headers=writer.headers, json={"notes": "n"})
    assert same.status_code == 200
    assert same.headers["etag"] == '"3"', "a change to nothing makes no revision"
    bad = await client.patch(url, headers=writer.headers, json={"inputs": "x"})
    assert_names_field(assert_problem(bad, 422), "body.inputs")
    unknown = await client.patch(
        f"/v1/datasets/support/cases/{uuid.uuid4()}", headers=writer.headers, json={"notes": "x"}
    )
    assert_problem(unknown, 404)
    not_an_id = await client.get("/v1/datasets/support/cases/nope", headers=writer.headers)
    assert_names_field(assert_problem(not_an_id, 422), "path.case_id")


async def test_a_stale_if_match_is_a_409_and_changes_nothing(client, writer, session):
    await make_dataset(client, writer)
    added = await add(client, writer, [case("a"), case("b")])
    a, b = (item["case_id"] for item in added["items"])
    headers = {**writer.headers, "If-Match": '"1"'}
    ok = await client.patch(f"/v1/datasets/support/cases/{a}", headers=headers, json={"notes": "1"})
    assert ok.status_code == 200, ok.text
    stale = await client.patch(
        f"/v1/datasets/support/cases/{b}", headers=headers, json={"notes": "2"}
    )
    assert "revision 2" in assert_problem(stale, 409)["detail"]
    gone = await client.delete(f"/v1/datasets/support/cases/{b}", headers=headers)
    assert_problem(gone, 409)
    fresh = await client.delete(
        f"/v1/datasets/support/cases/{b}", headers={**writer.headers, "If-Match": '"2"'}
    )
    assert fresh.status_code == 204, fresh.text
    assert fresh.headers["etag"] == '"3"'
    bad = await client.delete(
        f"/v1/datasets/support/cases/{a}", headers={**writer.headers, "If-Match": "latest"}
    )
    assert_names_field(assert_problem(bad, 422), "header.If-Match")


async def test_two_patches_with_the_same_if_match_one_wins_and_one_conflicts(client, writer):
    await make_dataset(client, writer)
    added = await add(client, writer, [case("a"), case("b")])
    headers = {**writer.headers, "If-Match": '"1"'}
    responses = await asyncio.gather(
        *(
            client.patch(
                f"/v1/datasets/support/cases/{item['case_id']}",
                headers=headers,
                json={"notes": f"by {n}"},
            )
            for n, item in enumerate(added["items"])
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    dataset = (await client.get("/v1/datasets/support", headers=writer.headers)).json()
    assert dataset["revision"] == 2


async def test_a_deleted_case_is_gone_from_the_current_revision_only(client, writer):
    await make_dataset(client, writer)
    added = await add(client, writer, [case("a"), case("b")])
    url = f"/v1/datasets/support/cases/{added['items'][0]['case_id']}"
    assert (await client.delete(url, headers=writer.headers)).status_code == 204
    assert_problem(await client.delete(url, headers=writer.headers), 404)
    assert_problem(await client.patch(url, headers=writer.headers, json={"notes": "x"}), 404)
    assert questions(await cases(client, writer)) == ["b"]
    assert questions(await cases(client, writer, revision=1)) == ["a", "b"]


# From a run


async def test_a_case_from_a_run_takes_its_inputs_and_parsed_output(app, client, admin, writer):
    await make_prompt(client, admin, response_format=TRIAGE_RESPONSE_FORMAT)
    result = (await run(client, admin, {"variables": VARIABLES})).json()
    await app.state.run_recorder.flush()
    await make_dataset(client, writer)
    response = await client.post(
        "/v1/datasets/support/cases:from-run",
        headers=writer.headers,
        json={"run_id": result["id"], "tags": ["from-prod"], "notes": "good answer"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["etag"] == '"1"'
    created = response.json()
    assert created["inputs"] == VARIABLES
    assert created["expected"] == result["parsed"]
    assert isinstance(created["expected"], dict)
    assert created["source_run_id"] == result["id"]
    assert (created["tags"], created["notes"]) == (["from-prod"], "good answer")
    assert (await cases(client, writer)) == [created]


async def test_a_case_from_a_run_without_parsed_output_expects_its_text(app, client, admin, writer):
    await make_prompt(client, admin)
    result = (await run(client, admin, {"variables": VARIABLES})).json()
    await app.state.run_recorder.flush()
    await make_dataset(client, writer)
    url = "/v1/datasets/support/cases:from-run"
    texted = await client.post(url, headers=writer.headers, json={"run_id": result["id"]})
    assert texted.status_code == 201, texted.text
    assert texted.json()["expected"] == result["output"]
    assert isinstance(result["output"], str)
    bare = await client.post(
        url, headers=writer.headers, json={"run_id": result["id"], "expected": "none"}
    )
    assert bare.json()["expected"] is None
    assert bare.json()["inputs"] == VARIABLES


async def test_a_failed_run_can_only_be_added_without_expected(client, session, tenant, writer):
    failed = await make_run(
        session, tenant, status="failed", output=None, parsed=None, error={"type": "timeout"}
    )
    await make_dataset(client, writer)
    url = "/v1/datasets/support/cases:from-run"
    response = await client.post(url, headers=writer.headers, json={"run_id": str(failed.id)})
    assert_names_field(assert_problem(response, 422), "body.expected")
    response = await client.post(
        url, headers=writer.headers, json={"run_id": str(failed.id), "expected": "none"}
    )
    assert response.status_code == 201, response.text
    bad = await client.post(url, headers=writer.headers, json={"run_id": "x", "expected": "all"})
    problem = assert_problem(bad, 422)
    assert_names_field(problem, "body.run_id")
    assert_names_field(problem, "body.expected")


# Scopes, tenants, audit


async def test_reading_needs_read_and_changing_needs_write(client, session, tenant, writer, reader):
    await make_dataset(client, writer)
    added = await add(client, writer, case("a"))
    case_url = f"/v1/datasets/support/cases/{added['items'][0]['case_id']}"
    for path in ("/v1/datasets", "/v1/datasets/support", "/v1/datasets/support/cases", case_url):
        assert (await client.get(path, headers=reader.headers)).status_code == 200, path
    export = await client.get("/v1/datasets/support:export", headers=reader.headers)
    assert export.status_code == 200
    writes = [
        ("POST", "/v1/datasets", {"name": "other"}),
        ("PATCH", "/v1/datasets/support", {"description": "x"}),
        ("DELETE", "/v1/datasets/support", None),
        ("POST", "/v1/datasets/support/cases", case("b")),
        ("POST", "/v1/datasets/support:import", case("b")),
        ("POST", "/v1/datasets/support/cases:from-run", {"run_id": str(uuid.uuid4())}),
        ("PATCH", case_url, {"notes": "x"}),
        ("DELETE", case_url, None),
    ]
    runner = await make_key(session, tenant, ["run"], name="runner")
    for method, path, body in writes:
        refused = await client.request(method, path, headers=reader.headers, json=body)
        assert_problem(refused, 403, where=f"{method} {path}")
    refused = await client.get("/v1/datasets", headers=runner.headers)
    assert_problem(refused, 403)
    assert len(await cases(client, writer)) == 1


async def test_another_tenants_dataset_case_and_run_answer_404_and_change_nothing(
    client, session, tenant, writer
):
    await make_dataset(client, writer, "ours")
    other = await make_tenant(session, "globex")
    theirs_key = await make_key(session, other, ["write"], name="theirs")
    await make_dataset(client, theirs_key, "theirs")
    their_case = (await add(client, theirs_key, case(SECRET), name="theirs"))["items"][0]
    their_run = await make_run(session, other)
    ours = (await add(client, writer, case("ours"), name="ours"))["items"][0]
    before = await table_counts(session)

    their_case_url = f"/v1/datasets/theirs/cases/{their_case['case_id']}"
    our_url_with_their_case = f"/v1/datasets/ours/cases/{their_case['case_id']}"
    calls = [
        ("GET", "/v1/datasets/theirs", None),
        ("PATCH", "/v1/datasets/theirs", {"description": "mine now"}),
        ("DELETE", "/v1/datasets/theirs", None),
        ("GET", "/v1/datasets/theirs/cases", None),
        ("POST", "/v1/datasets/theirs/cases", case("x")),
        ("POST", "/v1/datasets/theirs:import", case("x")),
        ("GET", "/v1/datasets/theirs:export", None),
        ("GET", their_case_url, None),
        ("PATCH", their_case_url, {"notes": "x"}),
        ("DELETE", their_case_url, None),
        ("GET", our_url_with_their_case, None),
        ("PATCH", our_url_with_their_case, {"notes": "x"}),
        ("DELETE", our_url_with_their_case, None),
        ("POST", "/v1/datasets/ours/cases:from-run", {"run_id": str(their_run.id)}),
    ]
    for method, path, body in calls:
        response = await client.request(method, path, headers=writer.headers, json=body)
        where = f"{method} {path}"
        assert_problem(response, 404, where=where)
        assert SECRET not in response.text, where
    listed = await client.get("/v1/datasets", headers=writer.headers)
    assert [item["name"] for item in listed.json()["items"]] == ["ours"]
    assert await table_counts(session) == before
    assert [c["case_id"] for c in await cases(client, writer, name="ours")] == [ours["case_id"]]


async def test_changes_are_audited_with_ids_and_counts_never_contents(client, session, writer):
    await make_dataset(client, writer)
    added = await add(client, writer, [case(SECRET, expected=SECRET, notes=SECRET)] * 2)
    case_id = added["items"][0]["case_id"]
    url = f"/v1/datasets/support/cases/{case_id}"
    await client.patch(url, headers=writer.headers, json={"notes": SECRET + "!"})
    await client.delete(url, headers=writer.headers)
    upload = json.dumps(case(SECRET)) + "\nnot json\n"
    await client.post(
        "/v1/datasets/support:import",
        headers={**writer.headers, "Content-Type": "application/x-ndjson"},
        content=upload,
    )
    await client.patch("/v1/datasets/support", headers=writer.headers, json={"description": "d"})
    await client.delete("/v1/datasets/support", headers=writer.headers)
    rows = await session.execute(
        text(
            "SELECT action, target_id, before, after FROM audit_events "
            "WHERE action LIKE 'dataset.%' ORDER BY id"
        )
    )
    events = [(row.action, row.target_id, row.before, row.after) for row in rows]
    assert [e[0] for e in events] == [
        "dataset.create",
        "dataset.cases",
        "dataset.cases",
        "dataset.cases",
        "dataset.import",
        "dataset.update",
        "dataset.delete",
    ]
    assert all(target == "support" for _, target, _, _ in events)
    assert events[1][3]["added"] == 2
    assert events[1][3]["case_ids"] == [item["case_id"] for item in added["items"]]
    assert events[2][3]["updated"] == 1
    assert events[2][3]["fields"] == ["notes"]
    assert events[3][3]["removed"] == 1
    assert {k: events[4][3][k] for k in ("format", "written", "rejected", "revision")} == {
        "format": "jsonl",
        "written": 1,
        "rejected": 1,
        "revision": 4,
    }
    assert events[6][2]["cases"] == 2
    assert SECRET not in json.dumps([e[2:] for e in events])


async def test_get_dataset_is_404_for_an_unknown_name(session, tenant):
    with pytest.raises(NotFound):
        await datasets.get_dataset(session, tenant_id=tenant.id, name="nope")
