"""Importing cases from JSONL and CSV (good lines written, bad ones reported by line) and
exporting them, back and forth without loss."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from sqlalchemy import text

from promptlogic.evals import dataset_io
from promptlogic.evals.dataset_io import MAX_LINES, parse_csv
from tests.helpers import assert_names_field, assert_problem, walk_pages

NDJSON = "application/x-ndjson"
CSV = "text/csv"


async def make_dataset(client, key, name: str = "support") -> None:
    response = await client.post("/v1/datasets", headers=key.headers, json={"name": name})
    assert response.status_code == 201, response.text


async def upload(
    client, key, body: str | bytes, content_type: str = NDJSON, name: str = "support"
) -> Any:
    return await client.post(
        f"/v1/datasets/{name}:import",
        headers={**key.headers, "Content-Type": content_type},
        content=body.encode() if isinstance(body, str) else body,
    )


async def imported(client, key, body: str | bytes, content_type: str = NDJSON, **kw) -> dict:
    response = await upload(client, key, body, content_type, **kw)
    assert response.status_code == 200, response.text
    return response.json()


async def cases(client, key, name: str = "support", **params: Any) -> list[dict[str, Any]]:
    items, _ = await walk_pages(
        client, f"/v1/datasets/{name}/cases", key.headers, limit=200, params=params
    )
    return items


def content(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a case holds, without the ids and revisions an import gives anew."""
    return [(i["inputs"], i["expected"], i["tags"], i["notes"]) for i in items]


def by_line(errors: list[dict[str, Any]]) -> dict[int, list[tuple[str, str]]]:
    found: dict[int, list[tuple[str, str]]] = {}
    for error in errors:
        found.setdefault(error["line"], []).append((error["field"], error["message"]))
    return found


def jsonl(*lines: Any) -> str:
    return "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)


# JSONL


async def test_jsonl_writes_the_good_lines_in_one_revision_and_reports_each_bad_one(client, admin):
    await make_dataset(client, admin)
    body = jsonl(
        {"inputs": {"q": "a"}, "expected": "A", "tags": ["t"], "notes": "n"},  # 1
        '{"inputs": {"q": "b"}',  # 2: not JSON
        '["not", "an", "object"]',  # 3
        {"expected": "no inputs"},  # 4
        {"inputs": "text"},  # 5
        "",  # 6: blank, skipped
        {"inputs": {"q": "c"}, "tags": ["x" * 51, "ok", "a|b"]},  # 7
        {"inputs": {"q": "d"}, "tags": "one"},  # 8
        {"inputs": {"q": "e"}, "expected": {"priority": "high"}},  # 9
        {"inputs": {"q": "f"}, "input": {}},  # 10: a typo
        '{"inputs": {"ratio": NaN}}',  # 11
        {"inputs": {"q": "g"}, "case_id": "from-an-export", "added_revision": 9},  # 12
    )
    result = await imported(client, admin, body)
    assert (result["revision"], result["written"]) == (1, 3)
    errors = by_line(result["errors"])
    assert sorted(errors) == [2, 3, 4, 5, 7, 8, 10, 11]
    assert errors[2][0][0] == "line"
    assert "JSON" in errors[2][0][1]
    assert errors[3] == [("line", 'must be a JSON object: {"inputs": {...}, "expected": ...}')]
    assert errors[4] == [("inputs", "is required")]
    assert errors[5] == [("inputs", "must be a JSON object")]
    assert [field for field, _ in errors[7]] == ["tags.0", "tags.2"]
    assert errors[8][0][0] == "tags"
    assert errors[10][0][0] == "input"
    assert errors[11][0][0] == "inputs"
    listed = await cases(client, admin)
    assert content(listed) == [
        ({"q": "a"}, "A", ["t"], "n"),
        ({"q": "e"}, {"priority": "high"}, [], ""),
        ({"q": "g"}, None, [], ""),
    ]
    assert {item["added_revision"] for item in listed} == {1}
    assert all(item["case_id"] != "from-an-export" for item in listed)


@pytest.mark.parametrize(
    "body",
    [jsonl("nope", {"inputs": []}), "", "\n\n", b"\xef\xbb\xbf"],
)
async def test_an_upload_without_a_good_line_writes_nothing(client, admin, session, body):
    await make_dataset(client, admin)
    result = await imported(client, admin, body)
    assert (result["revision"], result["written"]) == (0, 0)
    assert result["errors"]
    assert await session.scalar(text("SELECT count(*) FROM dataset_cases")) == 0
    audits = "SELECT count(*) FROM audit_events WHERE action = 'dataset.import'"
    assert await session.scalar(text(audits)) == 0


async def test_a_bom_and_crlf_line_ends_are_fine(client, admin):
    await make_dataset(client, admin)
    body = b"\xef\xbb\xbf" + b'{"inputs": {"q": "a"}}\r\n{"inputs": {"q": "b"}}\r\n'
    result = await imported(client, admin, body, "application/jsonl")
    assert (result["written"], result["errors"]) == (2, [])


async def test_an_upload_of_too_many_lines_is_a_413(client, admin, session):
    await make_dataset(client, admin)
    body = "\n".join(['{"inputs":{}}'] * (MAX_LINES + 1))
    response = await upload(client, admin, body)
    assert_problem(response, 413)
    assert await session.scalar(text("SELECT revision FROM datasets")) == 0


async def test_an_upload_in_another_format_is_a_415(client, admin):
    await make_dataset(client, admin)
    response = await upload(client, admin, "<cases/>", "application/xml")
    assert_names_field(assert_problem(response, 415), "header.Content-Type")


async def test_an_import_into_an_unknown_dataset_is_a_404(client, admin):
    assert_problem(await upload(client, admin, jsonl({"inputs": {}}), name="nope"), 404)


# CSV


async def test_csv_columns_are_inputs_but_expected_tags_and_notes(client, admin):
    await make_dataset(client, admin)
    body = (
        "question,customer,expected,tags,notes\r\n"
        'Where is it?,Ada,It ships today.,parcel | urgent,"two\nlines"\r\n'
        'Refund?,,"{""refund"": true}",,\r\n'
        "42?,Bob,42,,\r\n"
    )
    result = await imported(client, admin, body, CSV)
    assert (result["written"], result["errors"]) == (3, [])
    assert content(await cases(client, admin)) == [
        (
            {"question": "Where is it?", "customer": "Ada"},
            "It ships today.",
            ["parcel", "urgent"],
            "two\nlines",
        ),
        ({"question": "Refund?"}, {"refund": True}, [], ""),
        ({"question": "42?", "customer": "Bob"}, "42", [], ""),
    ]


async def test_csv_rows_are_reported_by_the_line_they_start_on(client, admin):
    await make_dataset(client, admin)
    body = (
        "\ufeffquestion,notes\n"  # 1, after a BOM
        'a,"a note\non two lines"\n'  # 2-3
        "b\n"  # 4: ragged
        "c,n,extra\n"  # 5: ragged
        "\n"  # 6: blank
        f"d,{'n' * 2001}\n"  # 7: notes too long
        'e,"unterminated\n'  # 8
    )
    result = await imported(client, admin, body.encode(), "text/csv; charset=utf-8")
    assert result["written"] == 1
    errors = by_line(result["errors"])
    assert sorted(errors) == [4, 5, 7, 8]
    assert errors[4] == [("row", "has 1 values; the header names 2 columns")]
    assert errors[5] == [("row", "has 3 values; the header names 2 columns")]
    assert errors[7][0][0] == "notes"
    assert errors[8][0][0] == "row"
    assert content(await cases(client, admin)) == [
        ({"question": "a"}, None, [], "a note\non two lines")
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "empty"),
        ("\ufeff", "empty"),
        ("\nq\na\n", "missing"),
        ("q,,notes\na,b,c\n", "column 2 has no name"),
        ("q, q\na,b\n", "named more than once"),
        ('"q\n', "not valid CSV"),
    ],
)
async def test_a_csv_without_a_usable_header_writes_nothing(client, admin, body, message):
    await make_dataset(client, admin)
    result = await imported(client, admin, body, CSV)
    assert (result["revision"], result["written"]) == (0, 0)
    assert result["errors"][0]["line"] == 1
    assert result["errors"][0]["field"] == "header"
    assert message in result["errors"][0]["message"]


async def test_a_csv_that_is_not_utf8_is_a_422(client, admin):
    await make_dataset(client, admin)
    response = await upload(client, admin, "q\ncafé\n".encode("latin-1"), CSV)
    assert "line 2" in assert_problem(response, 422)["detail"]


def test_csv_line_numbers_count_the_lines_of_quoted_fields():
    parsed = parse_csv(b'q,notes\n"a\nb\nc",x\nonly-one\n')
    assert [c.inputs for c in parsed.cases] == [{"q": "a\nb\nc"}]
    assert parsed.errors == [
        {"line": 5, "field": "row", "message": "has 1 values; the header names 2 columns"}
    ]


def test_an_import_takes_off_only_an_apostrophe_in_front_of_a_formula():
    parsed = parse_csv(b"q,notes\n'tis,'=SUM(A1)\n'-5,''@x\n")
    assert [(c.inputs, c.notes) for c in parsed.cases] == [
        ({"q": "'tis"}, "=SUM(A1)"),
        ({"q": "-5"}, "'@x"),
    ]


# Export


async def add(client, key, body: Any, name: str = "support") -> dict[str, Any]:
    response = await client.post(f"/v1/datasets/{name}/cases", headers=key.headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def export(client, key, name: str = "support", **params: Any) -> Any:
    response = await client.get(f"/v1/datasets/{name}:export", headers=key.headers, params=params)
    assert response.status_code == 200, response.text
    return response


TYPED_CASES = [
    {
        "inputs": {"ticket": {"id": 7, "lines": ["a", "b"]}, "vip": True},
        "expected": {"priority": "high", "score": 0.5},
        "tags": ["json", "typed"],
        "notes": 'multi\nline, with "quotes"',
    },
    {"inputs": {"ticket": 'Zoë, "hi"\nthere'}, "expected": "Hello — Zoë", "tags": []},
    {"inputs": {}, "expected": None, "notes": "no inputs"},
    {"inputs": {"n": 1.25, "none": None}, "expected": 42},
]

TEXT_CASES = [
    {
        "inputs": {"question": "Where is my parcel?", "customer": 'Ada, "the" first'},
        "expected": "It ships today.\nSorry.",
        "tags": ["parcel", "p1"],
        "notes": "a, b",
    },
    {"inputs": {"question": "Refund?"}, "expected": {"refund": True, "items": [1, 2]}},
    {"inputs": {"customer": "Bob"}, "tags": ["x"], "notes": "line\nbreak"},
    {"inputs": {"question": "=1+1", "customer": "Zoë"}, "expected": "€5"},
]


async def test_a_jsonl_export_imports_back_into_the_same_cases(client, admin):
    await make_dataset(client, admin)
    await add(client, admin, TYPED_CASES)
    response = await export(client, admin)
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["content-disposition"] == 'attachment; filename="support-r1.jsonl"'
    lines = response.text.splitlines()
    assert len(lines) == 4
    assert json.loads(lines[0])["case_id"] == (await cases(client, admin))[0]["case_id"]
    await make_dataset(client, admin, "copy")
    result = await imported(client, admin, response.content, name="copy")
    assert (result["written"], result["errors"]) == (4, [])
    assert content(await cases(client, admin, "copy")) == content(await cases(client, admin))


async def test_a_csv_export_imports_back_into_the_same_cases(client, admin):
    await make_dataset(client, admin)
    await add(client, admin, TEXT_CASES)
    response = await export(client, admin, format="csv")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="support-r1.csv"'
    rows = list(csv.reader(io.StringIO(response.text, newline="")))
    assert rows[0] == ["customer", "question", "expected", "tags", "notes"]
    assert rows[1][3] == "parcel|p1"
    await make_dataset(client, admin, "copy")
    result = await imported(client, admin, response.content, CSV, name="copy")
    assert (result["written"], result["errors"]) == (4, [])
    assert content(await cases(client, admin, "copy")) == content(await cases(client, admin))


FORMULA_CASES = [
    {
        "inputs": {
            "link": '=HYPERLINK("http://evil.example/","click")',
            "negative": "-5",
            "plus": "+1",
            "at": "@SUM(A1)",
            "tab": "\tcmd",
            "quoted": "'=1+1",
            "apostrophe": "'tis",
        },
        "expected": "=2",
        "notes": "-a note",
    },
    {"inputs": {"number": -7}, "expected": {"total": -7}},
]


async def test_a_csv_export_holds_no_formula_and_reads_back_the_same(client, admin):
    """Cases come from end users' runs: a cell a spreadsheet would run gets an apostrophe in
    front (shown as text), which the import takes off again."""
    await make_dataset(client, admin)
    await add(client, admin, FORMULA_CASES)
    response = await export(client, admin, format="csv")
    rows = list(csv.reader(io.StringIO(response.text, newline="")))
    cells = [cell for row in rows for cell in row if cell]
    assert [cell for cell in cells if cell[0] in "=+-@\t\r"] == []
    assert {'\'=HYPERLINK("http://evil.example/","click")', "'-5", "''=1+1", "'tis"} <= set(cells)
    await make_dataset(client, admin, "copy")
    result = await imported(client, admin, response.content, CSV, name="copy")
    assert (result["written"], result["errors"]) == (2, [])
    copied = await cases(client, admin, "copy")
    assert content(copied[:1]) == content((await cases(client, admin))[:1])
    assert copied[1]["inputs"] == {"number": "-7"}  # typed inputs come back as text, as documented


async def test_a_csv_export_writes_values_that_are_not_text_as_json(client, admin):
    await make_dataset(client, admin)
    await add(client, admin, TYPED_CASES)
    rows = list(csv.DictReader(io.StringIO((await export(client, admin, format="csv")).text)))
    assert json.loads(rows[0]["ticket"]) == {"id": 7, "lines": ["a", "b"]}
    assert rows[0]["vip"] == "true"
    assert json.loads(rows[0]["expected"]) == {"priority": "high", "score": 0.5}
    assert (rows[2]["ticket"], rows[2]["expected"]) == ("", "")
    assert (rows[3]["n"], rows[3]["none"], rows[3]["expected"]) == ("1.25", "null", "42")


async def test_an_export_of_an_earlier_revision_has_its_cases(client, admin):
    await make_dataset(client, admin)
    first = await add(client, admin, [{"inputs": {"q": "a"}}, {"inputs": {"q": "b"}}])
    await client.delete(
        f"/v1/datasets/support/cases/{first['items'][0]['case_id']}", headers=admin.headers
    )
    old = await export(client, admin, revision=1)
    assert [json.loads(line)["inputs"]["q"] for line in old.text.splitlines()] == ["a", "b"]
    assert old.headers["content-disposition"].endswith('support-r1.jsonl"')
    now = await export(client, admin)
    assert [json.loads(line)["inputs"]["q"] for line in now.text.splitlines()] == ["b"]
    empty = await export(client, admin, revision=0, format="csv")
    assert empty.text.splitlines() == ["expected,tags,notes"]


async def test_an_export_pages_through_many_cases(client, admin, monkeypatch):
    monkeypatch.setattr(dataset_io, "EXPORT_PAGE", 3)
    await make_dataset(client, admin)
    await add(client, admin, [{"inputs": {"n": str(n)}} for n in range(10)])
    lines = (await export(client, admin)).text.splitlines()
    assert [json.loads(line)["inputs"]["n"] for line in lines] == [str(n) for n in range(10)]
    rows = (await export(client, admin, format="csv")).text.splitlines()
    assert rows == ["n,expected,tags,notes", *(f"{n},,," for n in range(10))]


@pytest.mark.parametrize("name", ["notes", " padded", ""])
async def test_inputs_a_csv_cannot_hold_are_a_422_asking_for_jsonl(client, admin, name):
    await make_dataset(client, admin)
    await add(client, admin, {"inputs": {name: "x"}})
    response = await client.get(
        "/v1/datasets/support:export", headers=admin.headers, params={"format": "csv"}
    )
    problem = assert_problem(response, 422)
    assert_names_field(problem, "query.format")
    assert "jsonl" in problem["detail"]
    assert (await export(client, admin)).status_code == 200


async def test_an_unknown_export_format_is_a_422(client, admin):
    await make_dataset(client, admin)
    response = await client.get(
        "/v1/datasets/support:export", headers=admin.headers, params={"format": "xlsx"}
    )
    assert_names_field(assert_problem(response, 422), "query.format")
