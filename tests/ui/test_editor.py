"""The version editor over HTTP: saving from the form, what an unchanged save says, problems
shown by their field, the live preview (includes, missing variables, template errors with
their line, the sandbox), and who may do what."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser

from tests.factories import make_key, make_tenant
from tests.runs.support import TICKET, make_prompt

RICH = {
    "messages": [
        {"role": "system", "content": "Triage for {{ company }}.\nBe brief."},
        {"role": "user", "content": "\n{{ ticket }}"},  # a leading newline survives the form
        {"role": "assistant", "content": "Noted."},
    ],
    "input_schema": {
        "type": "object",
        "properties": {"company": {"type": "string"}, "ticket": {"type": "string"}},
        "required": ["ticket"],
    },
    "model": {"name": "gpt-4o-mini", "temperature": 0.3, "max_tokens": 200, "seed": 7},
    "response_format": {"type": "object", "properties": {"queue": {"type": "string"}}},
    "tools": [{"type": "function", "function": {"name": "lookup", "description": "Find"}}],
}


class FormFields(HTMLParser):
    """The inputs and textareas a browser would post from the editor form, in page order
    (a message template in a <template> element is not part of the form)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self._in_form = False
        self._in_template = 0
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form" and attributes.get("id") == "editor":
            self._in_form = True
        if tag == "template":
            self._in_template += 1
        if not self._in_form or self._in_template or "name" not in attributes:
            return
        name = attributes["name"] or ""
        if tag == "input":
            self.fields.append((name, attributes.get("value") or ""))
        elif tag == "textarea":
            self._textarea, self._text = name, []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "template":
            self._in_template -= 1
        elif tag == "form":
            self._in_form = False
        elif tag == "textarea" and self._textarea is not None:
            text = "".join(self._text)
            self.fields.append((self._textarea, text.removeprefix("\n")))  # as HTML parses it
            self._textarea = None


def form_of(page: str) -> list[tuple[str, str]]:
    """The editor form's fields as posted, selects by their selected option."""
    parser = FormFields()
    parser.feed(page)
    fields = parser.fields
    # Selects: the role of each message, in order.
    start = page.index('id="editor"')
    form = page[start : page.index("</form>", start)]
    form = re.sub(r"<template.*?</template>", "", form, flags=re.S)
    roles = re.findall(r'<select[^>]*name="role".*?</select>', form, flags=re.S)
    chosen = [re.search(r'<option value="(\w+)" selected', select) for select in roles]
    role_fields = [("role", found.group(1)) for found in chosen if found]
    return role_fields + fields


def editor_data(csrf: str, messages: list[tuple[str, str]], **fields: str) -> dict[str, object]:
    """A posted editor form: messages as repeated role/content fields, in order."""
    return {
        "csrf_token": csrf,
        "role": [role for role, _ in messages],
        "content": [content for _, content in messages],
        "model_name": "gpt-4o-mini",
        **fields,
    }


async def versions_of(client, admin, name: str) -> list[dict]:
    answer = await client.get(f"/v1/prompts/{name}/versions", headers=admin.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


async def make_context(client, admin, name: str, template: str) -> None:
    body = {"name": name, "kind": "context", "version": {"template": template}}
    answer = await client.post("/v1/prompts", headers=admin.headers, json=body)
    assert answer.status_code == 201, answer.text


def errors_for(page: str, box: str) -> str:
    """The text of the error list shown next to a box of the form."""
    found = re.search(rf'data-errors-for="{re.escape(box)}">(.*?)</ul>', page, flags=re.S)
    assert found is not None, f"no error list for {box}"
    return html.unescape(re.sub(r"<[^>]+>", " ", found.group(1)))


async def preview(signed, name: str, body: dict, csrf: str | None = None):
    headers = {"Accept": "application/json", "X-CSRF-Token": csrf or signed.csrf}
    return await signed.client.post(f"/ui/prompts/{name}/preview", json=body, headers=headers)


# Saving


async def test_saving_from_the_form_keeps_the_posted_order_and_roles(client, admin, as_editor):
    await make_prompt(client, admin, "triage")
    data = editor_data(
        as_editor.csrf,
        [
            ("user", "{{ ticket }}"),
            ("system", "Triage for {{ company }}.\r\nBe kind."),
            ("assistant", "Understood."),
        ],
        model_temperature="0.5",
        model_provider="",
        model_options='{"max_tokens": 100}',
        commit_message="User first",
    )
    answer = await as_editor.client.post("/ui/prompts/triage/edit", data=data)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/ui/prompts/triage"
    landing = await as_editor.client.get("/ui/prompts/triage")
    assert "Saved version 2." in landing.text
    assert 'data-version="2"' in landing.text
    saved = (await versions_of(client, admin, "triage"))[0]
    assert saved["version"] == 2
    assert saved["messages"] == [
        {"role": "user", "content": "{{ ticket }}"},
        {"role": "system", "content": "Triage for {{ company }}.\nBe kind."},  # CRLF → LF
        {"role": "assistant", "content": "Understood."},
    ]
    assert saved["model"]["temperature"] == 0.5
    assert saved["model"]["max_tokens"] == 100
    assert saved["commit_message"] == "User first"
    assert saved["author"] == "editor@acme.example"
    # Saving moves no label.
    label = await client.get("/v1/prompts/triage/labels/production", headers=admin.headers)
    assert label.json()["version"] == 1


async def test_the_form_is_prefilled_and_unchanged_content_saves_nothing(client, admin, as_editor):
    await make_prompt(client, admin, "triage", **RICH)
    page = await as_editor.client.get("/ui/prompts/triage/edit")
    assert page.status_code == 200
    fields = form_of(page.text)
    posted: dict[str, list[str]] = {}
    for name, value in fields:
        posted.setdefault(name, []).append(value)
    assert posted["role"] == ["system", "user", "assistant"]
    assert posted["content"][1] == "\n{{ ticket }}"
    assert json.loads(posted["model_options"][0]) == {"max_tokens": 200, "seed": 7}
    assert posted["model_temperature"] == ["0.3"]
    # The form posted back as the browser shows it is the same content: nothing is saved.
    answer = await as_editor.client.post("/ui/prompts/triage/edit", data=posted)
    assert answer.status_code == 303, answer.text
    landing = await as_editor.client.get(answer.headers["location"])
    assert (
        "Nothing changed: the content is identical to version 1; no new version was saved."
        in landing.text
    )
    assert "Saved version" not in landing.text
    assert len(await versions_of(client, admin, "triage")) == 1


async def test_editing_from_an_older_version_prefills_that_version(client, admin, as_editor):
    await make_prompt(client, admin, "triage")
    body = {**TICKET, "messages": [{"role": "system", "content": "Version two."}]}
    await client.post("/v1/prompts/triage/versions", headers=admin.headers, json=body)
    latest = await as_editor.client.get("/ui/prompts/triage/edit")
    assert "Version two." in latest.text
    older = await as_editor.client.get("/ui/prompts/triage/edit?from=1")
    assert "Triage for {{ company }}." in html.unescape(older.text)
    assert "Version two." not in older.text
    missing = await as_editor.client.get("/ui/prompts/triage/edit?from=9")
    assert missing.status_code == 404


async def test_a_new_prompt_starts_with_one_empty_message(as_editor):
    created = await as_editor.client.post(
        "/ui/prompts-new", data={"csrf_token": as_editor.csrf, "name": "fresh", "kind": "chat"}
    )
    assert created.headers["location"] == "/ui/prompts/fresh/edit"
    page = await as_editor.client.get("/ui/prompts/fresh/edit")
    assert page.status_code == 200
    fields = form_of(page.text)
    assert [value for name, value in fields if name == "content"] == [""]
    assert "This will be the first version." in page.text
    saved = await as_editor.client.post(
        "/ui/prompts/fresh/edit",
        data=editor_data(as_editor.csrf, [("system", "Hello {{ name }}")]),
    )
    assert saved.status_code == 303
    landing = await as_editor.client.get("/ui/prompts/fresh")
    assert "Saved version 1." in landing.text


async def test_a_context_template_is_edited_as_one_template(client, admin, as_editor):
    await make_context(client, admin, "policy", "Refunds within 30 days.")
    page = await as_editor.client.get("/ui/prompts/policy/edit")
    assert 'name="template"' in page.text
    assert 'name="content"' not in page.text.split("<template")[0]
    assert 'name="model_name"' not in page.text
    answer = await as_editor.client.post(
        "/ui/prompts/policy/edit",
        data={"csrf_token": as_editor.csrf, "template": "Refunds within {{ days }} days."},
    )
    assert answer.status_code == 303, answer.text
    saved = (await versions_of(client, admin, "policy"))[0]
    assert saved["template"] == "Refunds within {{ days }} days."
    assert saved["messages"] is None


# Problems, by their field


async def test_a_broken_template_is_shown_by_its_message_with_its_line(client, admin, as_editor):
    await make_prompt(client, admin, "triage")
    broken = "Hello\n{% if vip %}\nWelcome back"
    data = editor_data(
        as_editor.csrf, [("system", "Triage."), ("user", broken)], commit_message="Kept?"
    )
    answer = await as_editor.client.post("/ui/prompts/triage/edit", data=data)
    assert answer.status_code == 422
    assert "The version was not saved" in answer.text
    shown = errors_for(answer.text, "messages.1")
    assert "line" in shown
    assert errors_for(answer.text, "messages.0").strip() == ""
    assert 'href="#box-messages-1">Message 2</a>' in answer.text
    # Everything typed is kept.
    kept = form_of(answer.text)
    assert [value for name, value in kept if name == "content"] == ["Triage.", broken]
    assert [value for name, value in kept if name == "role"] == ["system", "user"]
    assert ("commit_message", "Kept?") in kept
    assert len(await versions_of(client, admin, "triage")) == 1


async def test_bad_json_in_the_input_schema_names_the_field_and_where(client, admin, as_editor):
    await make_prompt(client, admin, "triage")
    schema = '{\n  "type": "object",\n  "properties": {}\n  "required": []\n}'
    data = editor_data(as_editor.csrf, [("system", "Triage {{ ticket }}.")], input_schema=schema)
    answer = await as_editor.client.post("/ui/prompts/triage/edit", data=data)
    assert answer.status_code == 422
    shown = errors_for(answer.text, "input_schema")
    assert "not valid JSON" in shown
    assert "line 4, column 3" in shown
    assert 'href="#box-input_schema">Input schema</a>' in answer.text
    assert ("input_schema", schema) in form_of(answer.text)  # kept as typed
    assert len(await versions_of(client, admin, "triage")) == 1


async def test_schema_and_model_problems_are_shown_by_their_fields(client, admin, as_editor):
    await make_prompt(client, admin, "triage")
    data = editor_data(
        as_editor.csrf,
        [("system", "Triage for {{ company }}.")],
        input_schema='{"type": "object", "properties": {}}',
        model_temperature="warm",
        response_format="[1, 2]",
    )
    answer = await as_editor.client.post("/ui/prompts/triage/edit", data=data)
    assert answer.status_code == 422
    assert "must be an object" in errors_for(answer.text, "response_format")
    # The JSON is fixed: the model's temperature is next.
    data["response_format"] = ""
    answer = await as_editor.client.post("/ui/prompts/triage/edit", data=data)
    assert answer.status_code == 422
    assert "number" in errors_for(answer.text, "model.temperature")
    # Then the schema, checked against the templates as the API checks it.
    data["model_temperature"] = "0.2"
    answer = await as_editor.client.post("/ui/prompts/triage/edit", data=data)
    assert answer.status_code == 422
    assert "`company`" in errors_for(answer.text, "input_schema")
    assert len(await versions_of(client, admin, "triage")) == 1


async def test_a_missing_csrf_token_is_refused(client, admin, as_editor):
    await make_prompt(client, admin, "triage")
    data = editor_data(as_editor.csrf, [("system", "Changed.")])
    del data["csrf_token"]
    answer = await as_editor.client.post("/ui/prompts/triage/edit", data=data)
    assert answer.status_code == 403
    refused = await as_editor.client.post(
        "/ui/prompts/triage/preview",
        json={"messages": [{"role": "system", "content": "x"}]},
        headers={"Accept": "application/json"},
    )
    assert refused.status_code == 403
    assert len(await versions_of(client, admin, "triage")) == 1


# Who may


async def test_a_viewer_may_not_edit_save_or_preview(client, admin, as_viewer):
    await make_prompt(client, admin, "triage")
    page = await as_viewer.client.get("/ui/prompts/triage")
    assert "/ui/prompts/triage/edit" not in page.text
    assert (await as_viewer.client.get("/ui/prompts/triage/edit")).status_code == 403
    data = editor_data(as_viewer.csrf, [("system", "Changed.")])
    assert (await as_viewer.client.post("/ui/prompts/triage/edit", data=data)).status_code == 403
    body = {"messages": [{"role": "system", "content": "Hi"}]}
    refused = await preview(as_viewer, "triage", body)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert len(await versions_of(client, admin, "triage")) == 1


async def test_another_tenants_prompt_is_not_found(session, client, as_owner):
    other = await make_tenant(session, "globex")
    key = await make_key(session, other, ["admin"], name="globex-deployer")
    await make_prompt(client, key, "secret-plan")
    assert (await as_owner.client.get("/ui/prompts/secret-plan/edit")).status_code == 404
    data = editor_data(as_owner.csrf, [("system", "Mine now.")])
    posted = await as_owner.client.post("/ui/prompts/secret-plan/edit", data=data)
    assert posted.status_code == 404
    body = {"messages": [{"role": "system", "content": "Hi"}]}
    assert (await preview(as_owner, "secret-plan", body)).status_code == 404
    versions = await client.get("/v1/prompts/secret-plan/versions", headers=key.headers)
    assert len(versions.json()["items"]) == 1


# The live preview


async def test_the_preview_renders_the_draft_with_its_includes(client, admin, as_editor):
    await make_context(client, admin, "policy", "Refunds within {{ days }} days.")
    await make_prompt(client, admin, "triage")
    body = {
        "messages": [
            {"role": "system", "content": 'Help {{ company }}. {% include "policy" %}'},
            {"role": "user", "content": "{{ ticket }}"},
        ],
        "variables": {"company": "Acme", "ticket": "Refund?", "days": "30"},
    }
    answer = await preview(as_editor, "triage", body)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["problems"] == []
    assert result["messages"] == [
        {"role": "system", "content": "Help Acme. Refunds within 30 days."},
        {"role": "user", "content": "Refund?"},
    ]
    assert result["includes"] == [{"prompt": "policy", "version": 1}]
    # With no input schema, the sample form follows every variable, the include's too.
    assert sorted(result["input_schema"]["properties"]) == ["company", "days", "ticket"]
    # Nothing is saved by a preview.
    assert len(await versions_of(client, admin, "triage")) == 1


async def test_the_preview_reports_a_missing_variable(client, admin, as_editor):
    await make_prompt(client, admin, "triage")
    body = {
        "messages": [{"role": "system", "content": "Hi {{ name }}"}],
        "variables": {},
    }
    result = (await preview(as_editor, "triage", body)).json()
    assert result["messages"] == []
    assert [(p["field"], p["box"], p["plain"]) for p in result["problems"]] == [
        ("variables.name", "variables", "is required")
    ]
    # A declared but optional variable the template cannot do without: its line and message.
    body = {
        "messages": [
            {"role": "system", "content": "Hello."},
            {"role": "user", "content": "One\nTwo\n{{ name.upper() }}"},
        ],
        "input_schema": {"type": "object", "properties": {"name": {"type": "string"}}},
    }
    result = (await preview(as_editor, "triage", body)).json()
    (problem,) = result["problems"]
    assert problem["line"] == 3
    assert "message 2" in problem["message"]


async def test_the_preview_shows_a_template_error_by_its_message_and_line(client, admin, as_editor):
    await make_prompt(client, admin, "triage")
    body = {
        "messages": [
            {"role": "system", "content": "Fine."},
            {"role": "user", "content": "Line one\nLine two {{ broken"},
        ],
    }
    answer = await preview(as_editor, "triage", body)
    assert answer.status_code == 200
    (problem,) = answer.json()["problems"]
    assert problem["box"] == "messages.1"
    assert problem["label"] == "Message 2"
    assert problem["line"] == 2
    assert "line 2" in problem["message"]


async def test_the_preview_reports_an_include_that_does_not_exist(client, admin, as_editor):
    await make_prompt(client, admin, "triage")
    body = {"messages": [{"role": "system", "content": '{% include "nowhere" %}'}]}
    (problem,) = (await preview(as_editor, "triage", body)).json()["problems"]
    assert problem["box"] == "messages.0"
    assert "`nowhere`" in problem["message"]


async def test_a_sandbox_escape_in_the_preview_is_an_error_not_data(client, admin, as_editor):
    await make_prompt(client, admin, "triage")
    for attempt in (
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
    ):
        body = {"messages": [{"role": "system", "content": attempt}]}
        answer = await preview(as_editor, "triage", body)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["messages"] == [], attempt
        assert result["problems"], attempt
        assert "<class" not in answer.text
        assert "object" not in json.dumps(result["messages"])


async def test_a_context_templates_preview_renders_it_alone(client, admin, as_editor):
    await make_context(client, admin, "policy", "Refunds within 30 days.")
    await make_context(client, admin, "signature", "— {{ team }}")
    body = {
        "template": 'Refunds within {{ days }} days.\n{% include "signature" %}',
        "variables": {"days": "14", "team": "Support"},
    }
    result = (await preview(as_editor, "policy", body)).json()
    assert result["problems"] == []
    assert result["messages"] == [
        {"role": "template", "content": "Refunds within 14 days.\n— Support"}
    ]
    # A context template including itself is a cycle, as on save.
    body = {"template": '{% include "policy" %}', "variables": {}}
    (problem,) = (await preview(as_editor, "policy", body)).json()["problems"]
    assert problem["box"] == "template"
    assert "cycle" in problem["message"]


async def test_a_malformed_preview_request_is_a_json_problem(client, admin, as_editor):
    await make_prompt(client, admin, "triage")
    body = {"messages": [{"role": "wizard", "content": "x"}]}
    answer = await preview(as_editor, "triage", body)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")


async def test_the_preview_names_where_typed_json_breaks(client, admin, as_editor):
    await make_prompt(client, admin, "triage")
    body = {
        "messages": [{"role": "system", "content": "Hi {{ name }"}],
        "input_schema": '{\n  "type": "object",\n  "properties": {,}\n}',
        "variables": "{}",
    }
    result = (await preview(as_editor, "triage", body)).json()
    assert result["messages"] == []
    assert result["input_schema"] is None  # the sample form stays as it was
    by_box = {problem["box"]: problem for problem in result["problems"]}
    assert by_box["input_schema"]["line"] == 3
    assert "line 3, column 18" in by_box["input_schema"]["message"]
    assert by_box["messages.0"]["line"] == 1  # the template's own problem still shows
    body = {"messages": [{"role": "system", "content": "Hi {{ name }}"}], "variables": '{"n'}
    (problem,) = (await preview(as_editor, "triage", body)).json()["problems"]
    assert problem["box"] == "variables"
    assert "not valid JSON" in problem["message"]


async def test_the_preview_starts_from_the_last_runs_variables(
    app, session, client, admin, as_editor
):
    await make_prompt(client, admin, "triage")
    variables = {"company": "Initech", "ticket": "My <stapler> is gone"}
    ran = await client.post(
        "/v1/prompts/triage/run", headers=admin.headers, json={"variables": variables}
    )
    assert ran.status_code == 200, ran.text
    other = await make_tenant(session, "globex")
    key = await make_key(session, other, ["admin"], name="globex-deployer")
    await make_prompt(client, key, "triage")
    theirs = {"company": "Globex", "ticket": "secret of globex"}
    await client.post("/v1/prompts/triage/run", headers=key.headers, json={"variables": theirs})
    await app.state.run_recorder.flush()  # runs are written behind; the page reads them
    page = await as_editor.client.get("/ui/prompts/triage/edit")
    assert "My &lt;stapler&gt; is gone" in page.text  # escaped, as every value on a page
    assert "secret of globex" not in page.text


async def test_the_preview_binds_the_drafts_context(client, admin, as_editor):
    record = {"value": {"plan": "pro"}}
    put = await client.put("/v1/context/customers/c-9", headers=admin.headers, json=record)
    assert put.status_code == 201, put.text
    await make_prompt(client, admin, "triage")
    binding = {
        "name": "customer",
        "source": "record",
        "namespace": "customers",
        "key": "{{ customer_id }}",
        "required": True,
    }
    body = {
        "messages": [{"role": "system", "content": "Plan {{ customer.plan }}."}],
        "context": json.dumps([binding]),  # the form's hidden field, as typed
        "variables": {"customer_id": "c-9"},
    }
    answer = await preview(as_editor, "triage", body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["problems"] == []
    assert answer.json()["messages"] == [{"role": "system", "content": "Plan pro."}]
    # The sample form asks for the key's variable, not for the bound name.
    assert sorted(answer.json()["input_schema"]["properties"]) == ["customer_id"]
    missing = await preview(as_editor, "triage", {**body, "variables": {"customer_id": "x"}})
    assert [p["field"] for p in missing.json()["problems"]] == ["context.customer"]
