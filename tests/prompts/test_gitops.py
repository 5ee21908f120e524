"""Prompts as YAML files: `promptlogic pull` and `promptlogic push`, end to end on Postgres.

The CLI calls `asyncio.run` itself, so async tests run it in a worker thread (see test_cli.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shlex
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
import yaml
from click.testing import Result
from fastapi import FastAPI
from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from promptlogic import cli
from promptlogic.audit.service import OPERATOR
from promptlogic.db.engine import commit
from promptlogic.prompts import labels, yaml_files
from promptlogic.prompts import service as prompts
from promptlogic.prompts.schemas import PromptCreate, PromptUpdate, VersionCreate
from promptlogic.rendering import Renderer
from promptlogic.tenancy.models import Tenant
from tests.conftest import TEST_SECRET

runner = CliRunner()

POLICY = """\
kind: context
name: policy
template: |
  Refunds within {{ refund_days }} days.
  Be polite.
"""
TRIAGE = """\
name: triage
kind: chat
description: Routes support tickets
model:
  name: gpt-4o-mini
  temperature: 0.2
messages:
  - role: system
    content: |
      You triage tickets.
      {% include "policy" %}
  - role: user
    content: "Ticket: {{ ticket }}"
"""
TABLES = ("prompts", "prompt_versions", "prompt_labels", "prompt_label_moves", "audit_events")


@pytest.fixture(autouse=True)
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> None:
    """Only the test database and secret configure the CLI; no stray `.env` is read."""
    for name in list(os.environ):
        if name.startswith("PROMPTLOGIC_") and not name.startswith("PROMPTLOGIC_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PROMPTLOGIC_DATABASE_URL", database_url)
    monkeypatch.setenv("PROMPTLOGIC_SECRET_KEY", TEST_SECRET)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "prompts"
    path.mkdir()
    return path


async def run_cli(command: str, *extra: str) -> Result:
    """`promptlogic <command> <extra...>`, off the event loop."""
    return await asyncio.to_thread(runner.invoke, cli.app, [*shlex.split(command), *extra])


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def json_output(result: Result) -> Any:
    return json.loads(ok(result))


def failed(result: Result) -> list[str]:
    """Assert the CLI failed cleanly; return its stderr lines, each one problem."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines
    assert all(line.startswith("error: ") for line in lines), lines
    return lines


def write(folder: Path, name: str, content: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(dedent(content), encoding="utf-8")
    return path


async def fetch(app: FastAPI, sql: str, **params: object) -> list[RowMapping]:
    async with app.state.engine.connect() as connection:
        return list((await connection.execute(text(sql), params)).mappings())


async def counts(app: FastAPI) -> dict[str, int]:
    return {
        table: (await fetch(app, f"SELECT count(*) AS n FROM {table}"))[0]["n"]  # noqa: S608
        for table in TABLES
    }


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


async def make_prompt(
    session: AsyncSession,
    renderer: Renderer,
    tenant: Tenant,
    name: str,
    kind: str = "chat",
    **version: Any,
) -> None:
    body = PromptCreate(name=name, kind=kind, version=VersionCreate.model_validate(version))
    await prompts.create_prompt(
        session, tenant_id=tenant.id, body=body, actor=OPERATOR, renderer=renderer
    )
    await commit(session)


# Pushing


async def test_push_creates_prompts_and_versions_and_prints_diffs(
    app: FastAPI, tenant: Tenant, folder: Path
) -> None:
    write(folder, "policy", POLICY)
    write(folder, "triage", TRIAGE)

    first = ok(await run_cli(f"push {folder} --tenant acme"))

    assert first.splitlines() == [
        "policy: created context prompt, version 1",
        "triage: created chat prompt, version 1",
        "2 prompts: 2 created, 0 with a new version, 0 unchanged",
    ]
    rows = await fetch(
        app,
        "SELECT p.name, p.kind, p.description, v.number, v.messages, v.template, v.model "
        "FROM prompts p JOIN prompt_versions v ON v.prompt_id = p.id ORDER BY p.name",
    )
    assert [(r["name"], r["kind"], r["number"]) for r in rows] == [
        ("policy", "context", 1),
        ("triage", "chat", 1),
    ]
    assert rows[0]["template"] == "Refunds within {{ refund_days }} days.\nBe polite.\n"
    assert rows[1]["description"] == "Routes support tickets"
    assert rows[1]["messages"][0] == {
        "role": "system",
        "content": 'You triage tickets.\n{% include "policy" %}\n',
    }
    assert rows[1]["model"]["temperature"] == 0.2

    write(folder, "triage", TRIAGE.replace("You triage", "You sort").replace("0.2", "0.5"))
    second = ok(await run_cli(f"push {folder} --tenant acme -m 'sort, warmer'"))

    assert second.splitlines() == [
        "policy: unchanged (version 1)",
        "triage: new version 2 (was 1)",
        "    --- triage@1 messages[0]",
        "    +++ triage@2 messages[0]",
        "    @@ -1,2 +1,2 @@",
        "    -You triage tickets.",
        "    +You sort tickets.",
        '     {% include "policy" %}',
        "    --- triage@1 model",
        "    +++ triage@2 model",
        "    @@ -1,2 +1,2 @@",
        "     name: gpt-4o-mini",
        "    -temperature: 0.2",
        "    +temperature: 0.5",
        "2 prompts: 0 created, 1 with a new version, 1 unchanged",
    ]
    (latest,) = await fetch(
        app, "SELECT commit_message, author FROM prompt_versions WHERE number = 2"
    )
    assert dict(latest) == {"commit_message": "sort, warmer", "author": "promptlogic cli"}


async def test_push_json_reports_each_prompt_with_its_diff(tenant: Tenant, folder: Path) -> None:
    write(folder, "policy", POLICY)
    ok(await run_cli(f"push {folder} --tenant acme"))
    write(folder, "policy", POLICY.replace("Be polite.", "Be kind."))

    pushed = json_output(await run_cli(f"push {folder} --tenant acme --json"))

    assert pushed["tenant"] == "acme"
    assert pushed["dry_run"] is False
    assert pushed["summary"] == {"created": 0, "new_version": 1, "unchanged": 0, "labels_moved": 0}
    (change,) = pushed["prompts"]
    assert change["action"] == "new_version"
    assert (change["version"], change["previous_version"]) == (2, 1)
    assert change["file"] == str(folder / "policy.yaml")
    assert "-Be polite.\n+Be kind.\n" in change["diff"]["messages"][0]["diff"]
    assert change["diff"]["settings"] == []


async def test_pushing_an_unchanged_directory_changes_nothing(
    app: FastAPI, tenant: Tenant, folder: Path
) -> None:
    write(folder, "policy", POLICY)
    write(folder, "triage", TRIAGE)
    ok(await run_cli(f"push {folder} --tenant acme"))
    before = await counts(app)

    again = ok(await run_cli(f"push {folder} --tenant acme"))

    assert again.splitlines() == [
        "policy: unchanged (version 1)",
        "triage: unchanged (version 1)",
        "2 prompts: 0 created, 0 with a new version, 2 unchanged",
    ]
    assert await counts(app) == before


async def test_a_files_commit_message_wins_and_is_not_content(
    app: FastAPI, tenant: Tenant, folder: Path
) -> None:
    write(folder, "policy", POLICY + "commit_message: First rules\n")
    ok(await run_cli(f"push {folder} --tenant acme -m ignored"))
    write(folder, "policy", POLICY + "commit_message: Only the message changed\n")

    again = ok(await run_cli(f"push {folder} --tenant acme"))

    assert again.splitlines()[0] == "policy: unchanged (version 1)"
    rows = await fetch(app, "SELECT number, commit_message FROM prompt_versions")
    assert [tuple(row.values()) for row in rows] == [(1, "First rules")]


async def test_push_brings_description_and_protected_labels_in_line_and_restores_archived(
    app: FastAPI, session: AsyncSession, renderer: Renderer, tenant: Tenant, folder: Path
) -> None:
    write(folder, "policy", POLICY)
    ok(await run_cli(f"push {folder} --tenant acme"))
    await prompts.update_prompt(
        session,
        tenant_id=tenant.id,
        name="policy",
        body=PromptUpdate(archived=True),
        actor=OPERATOR,
        may_move_protected=True,
    )
    await commit(session)
    write(folder, "policy", "description: House rules\nprotected_labels: [staging]\n" + POLICY)

    pushed = ok(await run_cli(f"push {folder} --tenant acme"))

    assert pushed.splitlines()[:4] == [
        "policy: unchanged (version 1)",
        '    description: "" → "House rules"',
        '    protected_labels: ["production"] → ["staging"]',
        "    restored (it was archived)",
    ]
    (row,) = await fetch(app, "SELECT description, protected_labels, archived FROM prompts")
    assert dict(row) == {
        "description": "House rules",
        "protected_labels": ["staging"],
        "archived": False,
    }


async def test_context_templates_are_pushed_before_the_prompts_that_include_them(
    app: FastAPI, tenant: Tenant, folder: Path
) -> None:
    # By name alone, each would come before what it includes.
    write(
        folder,
        "a-chat",
        """\
        name: a-chat
        messages:
          - role: user
            content: '{% include "b-outer" %} {{ ticket }}'
        """,
    )
    write(
        folder, "b-outer", "name: b-outer\nkind: context\ntemplate: '{% include \"c-inner\" %}'\n"
    )
    write(folder, "c-inner", "name: c-inner\nkind: context\ntemplate: Be polite.\n")

    pushed = json_output(await run_cli(f"push {folder} --tenant acme --json"))

    assert [p["name"] for p in pushed["prompts"]] == ["c-inner", "b-outer", "a-chat"]
    assert [p["action"] for p in pushed["prompts"]] == ["created"] * 3
    assert (await counts(app))["prompt_versions"] == 3


async def test_push_with_a_label_moves_it_and_its_history_records_each_move(
    app: FastAPI, tenant: Tenant, folder: Path
) -> None:
    write(folder, "policy", POLICY)
    write(folder, "triage", TRIAGE)
    first = ok(await run_cli(f"push {folder} --tenant acme --label production"))
    assert "    label production: none → 1" in first.splitlines()
    assert first.splitlines()[-1].endswith("; label production moved on 2")

    write(folder, "triage", TRIAGE.replace("You triage", "You sort"))
    second = ok(await run_cli(f"push {folder} --tenant acme --label production"))

    lines = second.splitlines()
    assert lines[:2] == ["policy: unchanged (version 1)", "    label production: already at 1"]
    assert "    label production: 1 → 2" in lines
    labels = await fetch(
        app,
        "SELECT p.name, l.name AS label, l.version, l.updated_by FROM prompt_labels l "
        "JOIN prompts p ON p.id = l.prompt_id ORDER BY p.name",
    )
    assert [tuple(row.values()) for row in labels] == [
        ("policy", "production", 1, "promptlogic cli"),
        ("triage", "production", 2, "promptlogic cli"),
    ]
    moves = await fetch(
        app,
        "SELECT p.name, m.from_version, m.to_version, m.actor FROM prompt_label_moves m "
        "JOIN prompts p ON p.id = m.prompt_id ORDER BY m.id",
    )
    assert [tuple(row.values()) for row in moves] == [
        ("policy", None, 1, "promptlogic cli"),
        ("triage", None, 1, "promptlogic cli"),
        ("triage", 1, 2, "promptlogic cli"),
    ]
    audited = await fetch(
        app, "SELECT count(*) AS n FROM audit_events WHERE action = 'prompt.label.move'"
    )
    assert audited[0]["n"] == 3


async def test_push_refuses_to_move_latest(tenant: Tenant, folder: Path) -> None:
    write(folder, "policy", POLICY)
    (line,) = failed(await run_cli(f"push {folder} --tenant acme --label latest"))
    assert "latest" in line


async def test_a_dry_run_reports_the_same_plan_and_changes_nothing(
    app: FastAPI, tenant: Tenant, folder: Path
) -> None:
    write(folder, "policy", POLICY)
    write(folder, "triage", TRIAGE)
    ok(await run_cli(f"push {folder} --tenant acme --label production"))
    write(folder, "triage", TRIAGE.replace("You triage", "You sort"))
    write(folder, "policy", POLICY.replace("Be polite.", "Be kind."))
    write(folder, "refunds", "name: refunds\nkind: context\ntemplate: Refund.\n")
    before = await counts(app)

    text = ok(await run_cli(f"push {folder} --tenant acme --label production --dry-run"))
    planned = json_output(
        await run_cli(f"push {folder} --tenant acme --label production --dry-run --json")
    )

    assert await counts(app) == before
    assert text.splitlines()[-1].startswith("dry run, nothing changed. 3 prompts: 1 created, 2")
    assert planned["dry_run"] is True
    done_text = ok(await run_cli(f"push {folder} --tenant acme --label production"))
    assert done_text.splitlines()[:-1] == text.splitlines()[:-1]
    assert await counts(app) != before
    # Pushing the same again would now be a no-op; the plan above was what happened.
    write(folder, "triage", TRIAGE.replace("You triage", "You route"))
    planned = json_output(await run_cli(f"push {folder} --tenant acme --dry-run --json"))
    done = json_output(await run_cli(f"push {folder} --tenant acme --json"))
    assert planned["prompts"] == done["prompts"]
    assert (
        planned["summary"]
        == done["summary"]
        == {
            "created": 0,
            "new_version": 1,
            "unchanged": 2,
            "labels_moved": 0,
        }
    )


INVALID = {
    "bad-yaml": ("triage", "name: triage\nmessages: [\n", "invalid YAML"),
    "unknown-key": ("triage", TRIAGE + "temprature: 0.3\n", "unknown key `temprature`"),
    "nested-unknown-key": (
        "triage",
        TRIAGE.replace("role: user", "role: user\n    text: hi"),
        "unknown key `messages.1.text`",
    ),
    "duplicate-key": ("triage", TRIAGE + "model: {name: o1}\n", "key `model` is given twice"),
    "name-mismatch": ("triage", TRIAGE.replace("name: triage", "name: other"), "file name"),
    "bad-role": ("triage", TRIAGE.replace("role: user", "role: robot"), "messages.1.role"),
    "bad-template": (
        "triage",
        TRIAGE.replace("{{ ticket }}", "{{ ticket "),
        "messages.1.content:",
    ),
    "missing-include": (
        "triage",
        TRIAGE.replace('"policy"', '"no-such-policy"'),
        "no-such-policy",
    ),
    "chat-without-messages": ("triage", "name: triage\n", "messages"),
}


@pytest.mark.parametrize("case", INVALID)
async def test_an_invalid_file_fails_naming_it_and_nothing_is_written(
    app: FastAPI, tenant: Tenant, folder: Path, case: str
) -> None:
    name, content, expected = INVALID[case]
    write(folder, "policy", POLICY)  # valid, and still not written
    path = folder / f"{name}.yaml"
    path.write_text(content, encoding="utf-8")

    lines = failed(await run_cli(f"push {folder} --tenant acme --label production"))
    dry_lines = failed(await run_cli(f"push {folder} --tenant acme --dry-run"))

    assert any(line.startswith(f"error: {path}: ") and expected in line for line in lines), lines
    assert dry_lines == lines
    assert await counts(app) == dict.fromkeys(TABLES, 0) | {"audit_events": 1}  # the tenant's


async def test_every_problem_of_a_push_is_reported_on_its_own_line(
    app: FastAPI, tenant: Tenant, folder: Path
) -> None:
    write(folder, "one", "name: one\nkind: context\ntemplate: '{% if x %}'\n")
    write(folder, "two", "name: two\nkind: context\ntemplate: '{{ x }'\n")
    write(folder, "three", "name: three\nkind: context\ntemplate: fine\n")

    lines = failed(await run_cli(f"push {folder} --tenant acme"))

    assert [line.split(": ")[1] for line in lines] == [
        str(folder / "one.yaml"),
        str(folder / "two.yaml"),
    ]
    assert (await counts(app))["prompts"] == 0


async def test_a_prompt_cannot_change_kind(
    session: AsyncSession, renderer: Renderer, tenant: Tenant, folder: Path
) -> None:
    await make_prompt(
        session, renderer, tenant, "policy", messages=[{"role": "user", "content": "Hi"}]
    )
    write(folder, "policy", POLICY)

    (line,) = failed(await run_cli(f"push {folder} --tenant acme"))
    assert line == (
        f"error: {folder / 'policy.yaml'}: kind: `policy` is a chat prompt; "
        "a prompt's kind cannot change"
    )


async def test_push_to_an_unknown_tenant_or_a_missing_directory_fails(
    tenant: Tenant, folder: Path
) -> None:
    write(folder, "policy", POLICY)
    assert "nope" in failed(await run_cli(f"push {folder} --tenant nope"))[0]
    assert "not a directory" in failed(await run_cli(f"push {folder}/missing --tenant acme"))[0]


# Pulling


RICH_TRIAGE: dict[str, Any] = {
    "messages": [
        {"role": "system", "content": "You triage tickets for {{ company }}.\n\nRules:\n"},
        {"role": "user", "content": "Ticket:\n\t{{ ticket }}\nlast line with spaces   \nend"},
        {"role": "assistant", "content": "ok: noted — “quotes” & 'single'"},
    ],
    "input_schema": {
        "type": "object",
        "properties": {"company": {"type": "string"}, "ticket": {"type": "string"}},
        "required": ["ticket"],
        "additionalProperties": False,
    },
    "model": {"name": "gpt-4o", "temperature": 0.7, "max_tokens": 300, "seed": 7, "top_p": 1},
    "response_format": {
        "type": "object",
        "properties": {"queue": {"enum": ["billing", "tech", "yes", "1.0"]}},
    },
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "lookup_order",
                "description": "Find an order.\nBy id.",
                "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}},
            },
        }
    ],
}


async def make_rich_tenant(session: AsyncSession, renderer: Renderer, tenant: Tenant) -> None:
    await make_prompt(
        session, renderer, tenant, "policy", "context", template="Be polite.\nAlways."
    )
    await make_prompt(
        session, renderer, tenant, "empty-schema", messages=[{"role": "user", "content": "Hi"}]
    )
    await prompts.create_version(
        session,
        tenant_id=tenant.id,
        name="empty-schema",
        body=VersionCreate(messages=[{"role": "user", "content": "Hi"}], input_schema={}),
        actor=OPERATOR,
        renderer=renderer,
    )
    await commit(session)
    body = PromptCreate(
        name="triage",
        description="Routes tickets\nto queues",
        protected_labels=["production", "staging"],
        version=VersionCreate.model_validate(RICH_TRIAGE),
    )
    await prompts.create_prompt(
        session, tenant_id=tenant.id, body=body, actor=OPERATOR, renderer=renderer
    )
    await commit(session)


async def test_pull_then_push_creates_nothing(
    app: FastAPI, session: AsyncSession, renderer: Renderer, tenant: Tenant, folder: Path
) -> None:
    await make_rich_tenant(session, renderer, tenant)
    before = await counts(app)

    pulled = ok(await run_cli(f"pull {folder} --tenant acme"))
    pushed = json_output(await run_cli(f"push {folder} --tenant acme --json"))

    assert pulled.splitlines() == [
        f"wrote {folder / 'empty-schema.yaml'} (empty-schema@2)",
        f"wrote {folder / 'policy.yaml'} (policy@1)",
        f"wrote {folder / 'triage.yaml'} (triage@1)",
        f"3 prompts in {folder}, 3 written",
    ]
    assert [(p["name"], p["action"], p["updated"]) for p in pushed["prompts"]] == [
        ("policy", "unchanged", {}),
        ("empty-schema", "unchanged", {}),
        ("triage", "unchanged", {}),
    ]
    assert await counts(app) == before


async def test_two_pulls_write_the_same_bytes(
    session: AsyncSession, renderer: Renderer, tenant: Tenant, folder: Path, tmp_path: Path
) -> None:
    await make_rich_tenant(session, renderer, tenant)
    ok(await run_cli(f"pull {folder} --tenant acme"))
    first = snapshot(folder)

    again = json_output(await run_cli(f"pull {folder} --tenant acme --json"))
    ok(await run_cli(f"pull {tmp_path / 'elsewhere'} --tenant acme"))

    assert [f["written"] for f in again["files"]] == [False, False, False]
    assert snapshot(folder) == first == snapshot(tmp_path / "elsewhere")


async def test_pull_writes_readable_yaml_with_templates_as_block_strings(
    session: AsyncSession, renderer: Renderer, tenant: Tenant, folder: Path
) -> None:
    await make_rich_tenant(session, renderer, tenant)

    ok(await run_cli(f"pull {folder} --tenant acme"))

    assert (folder / "policy.yaml").read_text() == (
        "name: policy\nkind: context\nprotected_labels:\n  - production\n"
        "template: |-\n  Be polite.\n  Always.\n"
    )
    triage = (folder / "triage.yaml").read_text()
    assert triage.startswith(
        "name: triage\nkind: chat\ndescription: |-\n  Routes tickets\n  to queues\n"
        "protected_labels:\n  - production\n  - staging\n"
        "model:\n  name: gpt-4o\n  temperature: 0.7\n  max_tokens: 300\n  seed: 7\n  top_p: 1\n"
        "input_schema:\n  type: object\n  additionalProperties: false\n"
    )
    assert (
        "messages:\n"
        "  - role: system\n"
        "    content: |\n"
        "      You triage tickets for {{ company }}.\n"
        "\n"
        "      Rules:\n"
    ) in triage
    # A line ending in spaces cannot be a block line: YAML quotes it instead, exactly.
    assert '    content: "Ticket:\\n\\t{{ ticket }}\\nlast line with spaces   \\nend"' in triage
    assert "tools:\n  - type: function\n    function:\n      name: lookup_order\n" in triage
    assert "commit_message" not in triage
    assert yaml.safe_load(triage)["messages"] == RICH_TRIAGE["messages"]
    empty = yaml.safe_load((folder / "empty-schema.yaml").read_text())
    assert empty["input_schema"] == {}
    assert empty["model"] == {"name": "gpt-4o-mini"}  # saved without one: the default


async def test_pull_with_a_label_writes_that_version_and_skips_prompts_without_it(
    session: AsyncSession, renderer: Renderer, tenant: Tenant, folder: Path
) -> None:
    await make_rich_tenant(session, renderer, tenant)
    await labels.move_label(
        session,
        tenant_id=tenant.id,
        name="empty-schema",
        label="production",
        version=1,
        expected_version=None,
        actor=OPERATOR,
        may_move_protected=True,
    )
    await commit(session)

    pulled = json_output(await run_cli(f"pull {folder} --tenant acme --label production --json"))

    assert [(f["name"], f["version"]) for f in pulled["files"]] == [("empty-schema", 1)]
    assert pulled["skipped"] == [
        {"name": "policy", "reason": "no label `production`"},
        {"name": "triage", "reason": "no label `production`"},
    ]
    assert list(snapshot(folder)) == ["empty-schema.yaml"]
    assert "input_schema" not in (folder / "empty-schema.yaml").read_text()


async def test_pull_leaves_out_archived_prompts_and_prompts_without_versions(
    session: AsyncSession, renderer: Renderer, tenant: Tenant, folder: Path
) -> None:
    await make_rich_tenant(session, renderer, tenant)
    draft = PromptCreate(name="draft")
    await prompts.create_prompt(
        session, tenant_id=tenant.id, body=draft, actor=OPERATOR, renderer=renderer
    )
    await prompts.update_prompt(
        session,
        tenant_id=tenant.id,
        name="policy",
        body=PromptUpdate(archived=True),
        actor=OPERATOR,
        may_move_protected=True,
    )
    await commit(session)

    pulled = json_output(await run_cli(f"pull {folder} --tenant acme --json"))

    assert [f["name"] for f in pulled["files"]] == ["empty-schema", "triage"]
    assert pulled["skipped"] == [{"name": "draft", "reason": "no versions"}]


# The file format


def test_any_string_survives_a_write_and_a_read_exactly() -> None:
    rng = random.Random(7)  # noqa: S311 - reproducible test data, not secrets
    alphabet = list("ab :#-'\"{}%|>!&*?,[]@`\\\t\r\n\n\n    é→\x85\u2028\ufeff\x07")
    for _ in range(1000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        document = {"messages": [{"role": "user", "content": value}], "description": value}
        assert yaml.safe_load(yaml_files.dump(document)) == document, repr(value)


def test_multi_line_strings_are_literal_blocks_even_with_tabs() -> None:
    text = yaml_files.dump({"template": "Hello\n\t{{ name }}\n"})
    assert text == "template: |\n  Hello\n  \t{{ name }}\n"


async def test_push_refuses_yaml_aliases_before_they_expand(
    app: FastAPI, tenant: Tenant, folder: Path
) -> None:
    lines = ["name: bomb", "input_schema:", "  x0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"  x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    lines += ["messages:", "  - role: user", "    content: hi"]
    (folder / "bomb.yaml").write_text("\n".join(lines) + "\n")
    before = await counts(app)
    problems = failed(await run_cli(f"push {folder} --tenant {tenant.slug} --dry-run"))
    assert any("aliases" in line and "bomb.yaml" in line for line in problems), problems
    assert await counts(app) == before


async def test_pull_replaces_a_symbolic_link_instead_of_writing_through_it(
    session: AsyncSession, renderer: Renderer, tenant: Tenant, folder: Path, tmp_path: Path
) -> None:
    await make_prompt(
        session, renderer, tenant, "greet", messages=[{"role": "user", "content": "Hi"}]
    )
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (folder / "greet.yaml").symlink_to(victim)
    ok(await run_cli(f"pull {folder} --tenant {tenant.slug}"))
    assert victim.read_text() == "precious"
    assert not (folder / "greet.yaml").is_symlink()
    assert "name: greet" in (folder / "greet.yaml").read_text()


async def test_push_does_not_follow_symbolic_links(tenant: Tenant, folder: Path, tmp_path: Path):
    outside = tmp_path / "outside.yaml"
    outside.write_text("name: outside\nmessages:\n  - role: user\n    content: hi\n")
    (folder / "outside.yaml").symlink_to(outside)
    problems = failed(await run_cli(f"push {folder} --tenant {tenant.slug}"))
    assert any("symbolic link" in line for line in problems), problems
