"""The rules area over HTTP: what a rule author is shown and refused, the index and a scope's
page, writing a rule with its preview and check, enabling, reordering, conflicts, the policy
panel of the prompt page, and tenant isolation."""

from __future__ import annotations

import html
import re
import uuid

import pytest

from promptlogic.ui.routes.rules import example_of, variables_naming
from tests.conftest import client_for
from tests.factories import make_key, make_tenant
from tests.fakes.openai_server import Reply
from tests.prompts.test_bindings import make_bound_prompt
from tests.prompts.test_rules_binding import ACCOUNT_RULES, OWN_RULES
from tests.rules.support import create_rule, rule_ids
from tests.runs.support import make_prompt, use_fake
from tests.ui.support import csrf_of

# The offline provider echoes the last user message: the rules show in the output.
ASKING = [
    {"role": "system", "content": "You triage tickets."},
    {
        "role": "user",
        "content": "Rules:{% for rule in rules %}\n- {{ rule.text }}{% endfor %}\n"
        "Ticket: {{ ticket }}",
    },
]
CHECKER = {
    "messages": [
        {"role": "system", "content": "Policy: {{ policy }}"},
        {"role": "user", "content": "Rule: {{ rule }}"},
    ],
    "model": {"name": "gpt-4o-mini"},
    "response_format": {
        "type": "object",
        "properties": {"verdict": {"enum": ["pass", "fail"]}, "reason": {"type": "string"}},
        "required": ["verdict", "reason"],
    },
}


async def deploy(client, admin, name: str, version: int = 1) -> None:
    moved = await client.put(
        f"/v1/prompts/{name}/labels/production",
        headers=admin.headers,
        json={"version": version, "expected_version": None},
    )
    assert moved.status_code == 200, moved.text


async def bound_prompt(client, admin, name: str = "advisor", context=None) -> str:
    """A chat prompt whose production version lists its rules (or a set's) to the model."""
    made = await make_bound_prompt(
        client, admin, name=name, context=context or [OWN_RULES], messages=ASKING
    )
    assert made.status_code == 201, made.text
    await deploy(client, admin, name)
    return name


def write_form(signed, **fields) -> dict[str, str]:
    return {"csrf_token": signed.csrf, "inputs": '{"ticket": "Parcel lost"}', **fields}


async def write(signed, **fields):
    return await signed.client.post("/ui/rules/write", data=write_form(signed, **fields))


def text_of(page) -> str:
    """A page's text without tags, entities decoded, whitespace folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


def nav_links(page) -> list[str]:
    """The main menu's entries."""
    nav = page.text[page.text.index('<nav aria-label="Main">') : page.text.index("</nav>")]
    return re.findall(r"<a [^>]*>([^<]+)</a>", nav)


def section(page, marker: str) -> str:
    """The HTML from the element carrying `marker` (a data attribute) to the next section."""
    start = page.text.index(marker)
    end = page.text.find("</section>", start)
    return page.text[start:end]


# What a rule author sees


async def test_a_rule_author_lands_in_the_rules_area_and_the_nav_shows_only_rules(
    as_rule_author, client, admin
):
    await bound_prompt(client, admin)
    home = await as_rule_author.client.get("/ui/rules")
    assert home.status_code == 200
    assert nav_links(home) == ["Rules"]
    assert 'class="brand" href="/ui/rules"' in home.text
    assert 'href="/ui/rules/prompt/advisor"' in home.text
    again = await as_rule_author.client.get("/ui/")
    assert again.headers["location"] == "/ui/rules"
    login = await as_rule_author.client.get("/ui/login?next=%2Fui%2Fprompts")
    assert login.headers["location"] == "/ui/rules"


async def test_signing_in_as_a_rule_author_lands_on_the_rules_even_when_asked_elsewhere(
    app, rule_author
):
    async with client_for(app) as browser:
        form = await browser.get("/ui/login")
        answer = await browser.post(
            "/ui/login",
            data={
                "email": rule_author.email,
                "password": rule_author.password,
                "csrf_token": csrf_of(form.text),
                "next": "/ui/prompts/advisor/edit",
            },
        )
        assert answer.headers["location"] == "/ui/rules"
        kept = await browser.get("/ui/login?next=%2Fui%2Frules%2Fset%3Fname%3Dx")
        assert kept.headers["location"] == "/ui/rules/set?name=x"


@pytest.mark.parametrize(
    "url",
    [
        "/ui/prompts",
        "/ui/prompts/advisor",
        "/ui/prompts/advisor/edit",
        "/ui/prompts/advisor/playground",
        "/ui/prompts-new",
        "/ui/context-templates",
        "/ui/context",
        "/ui/knowledge",
        "/ui/runs",
        "/ui/settings",
    ],
)
async def test_every_other_page_refuses_a_rule_author(as_rule_author, client, admin, url):
    await bound_prompt(client, admin)
    answer = await as_rule_author.client.get(url)
    assert answer.status_code == 403, answer.text[:300]
    assert nav_links(answer) == ["Rules"]
    assert 'href="/ui/rules">Back to the rules' in answer.text  # not to pages it cannot open


async def test_editors_and_admins_see_rules_next_to_the_rest(as_editor, as_owner):
    for signed in (as_editor, as_owner):
        links = nav_links(await signed.client.get("/ui/prompts"))
        assert "Rules" in links
        assert "Prompts" in links


# The index and a scope


async def test_the_index_lists_the_prompts_that_take_rules_and_the_sets(
    as_rule_author, client, admin
):
    await bound_prompt(client, admin)
    await bound_prompt(client, admin, "accounts", context=[ACCOUNT_RULES])
    await make_prompt(client, admin, "plain")
    await create_rule(client, admin.headers, prompt="advisor", text="Be brief.")
    await create_rule(client, admin.headers, prompt="advisor", text="Be kind.")
    await create_rule(client, admin.headers, set="account-7", text="Formal.")
    await create_rule(client, admin.headers, prompt="plain", text="Orphan.")

    page = await as_rule_author.client.get("/ui/rules")

    assert page.status_code == 200
    rows = dict(re.findall(r'<tr data-prompt="([^"]+)">(.*?)</tr>', page.text, re.DOTALL))
    assert list(rows) == ["accounts", "advisor", "plain"]
    assert "its own rules" in rows["advisor"]
    assert ">2<" in rows["advisor"]
    assert "account-{{ account_id }}" in html.unescape(rows["accounts"])
    assert "no rules binding" in rows["plain"]
    assert 'href="/ui/rules/set?name=account-7"' in page.text


async def test_a_scope_page_shows_the_rules_in_order_with_status_and_the_limits(
    as_rule_author, client, admin, fake_openai
):
    await bound_prompt(client, admin)
    await use_fake(client, admin, fake_openai)
    await make_prompt(client, admin, "rule-checker", **CHECKER)
    policy = {
        "max_rules": 5,
        "max_chars": 120,
        "policy_text": "No refunds.",
        "checker": {"prompt": "rule-checker"},
    }
    await client.put("/v1/prompts/advisor/rules-policy", headers=admin.headers, json=policy)
    draft = await create_rule(client, admin.headers, prompt="advisor", text="A draft.")
    fake_openai.push(Reply({"verdict": "fail", "reason": "It promises refunds."}))
    rejected = await create_rule(
        client, admin.headers, prompt="advisor", text="Refund all.", enabled=True
    )

    page = await as_rule_author.client.get("/ui/rules/prompt/advisor")

    assert page.status_code == 200
    assert re.findall(r'data-rule="([^"]+)"', page.text) == [draft["id"], rejected["id"]]
    assert re.findall(r"data-status>(\w+)<", page.text) == ["draft", "rejected"]
    assert "Rejected: It promises refunds." in text_of(page)
    assert 'data-limit="max_rules">5<' in page.text
    assert 'data-limit="max_chars">120 characters<' in page.text
    assert "rule-checker (production)" in page.text
    assert "No refunds." in page.text
    for action in ("enable", "move", "delete"):
        assert f'action="/ui/rules/{draft["id"]}/{action}"' in page.text


async def test_a_set_with_any_printable_name_has_its_page(as_rule_author, client, admin):
    name = "acme/ü #1&x?y=2"
    await create_rule(client, admin.headers, set=name, text="Be formal.")
    await create_rule(client, admin.headers, set="other", text="Not this one.")
    index = await as_rule_author.client.get("/ui/rules")
    link = html.unescape(re.search(r'href="(/ui/rules/set\?name=acme[^"]*)"', index.text)[1])

    page = await as_rule_author.client.get(link)

    assert page.status_code == 200
    assert "Be formal." in page.text
    assert "Not this one." not in page.text
    assert html.escape(name) in page.text
    bad = await as_rule_author.client.get("/ui/rules/set", params={"name": " padded "})
    assert bad.status_code == 422


# Writing a rule


async def test_preview_shows_the_output_under_the_current_rules_and_with_the_draft(
    as_rule_author, client, admin
):
    await bound_prompt(client, admin)
    await create_rule(client, admin.headers, prompt="advisor", text="Be brief.", enabled=True)
    form = await as_rule_author.client.get("/ui/rules/new?prompt=advisor")
    assert form.status_code == 200
    # The inputs start from an example of the prompt's input schema.
    assert '"ticket": "example"' in html.unescape(form.text)

    page = await write(as_rule_author, prompt="advisor", text="Answer in French.", action="preview")

    assert page.status_code == 200, text_of(page)[:500]
    current = section(page, 'data-side="current"')
    draft = section(page, 'data-side="draft"')
    assert "Be brief." in current
    assert "Answer in French." not in current
    assert "Be brief." in draft
    assert "Answer in French." in draft
    assert "Rules bound (1)" in current
    assert "Rules bound (2)" in draft
    assert "Parcel lost" in current  # the inputs typed were used, and are kept
    assert "Answer in French.</textarea>" in page.text
    assert len(await rule_ids(client, admin.headers, prompt="advisor")) == 1  # nothing saved


async def test_preview_with_bad_inputs_names_the_problem_and_keeps_the_text(
    as_rule_author, client, admin
):
    await bound_prompt(client, admin)
    page = await write(
        as_rule_author, prompt="advisor", text="Be brief.", action="preview", inputs="[1, 2"
    )
    assert page.status_code == 422
    assert "not valid JSON" in page.text
    assert "Be brief.</textarea>" in page.text


async def test_previewing_a_set_rule_names_the_set_through_the_inputs(
    as_rule_author, client, admin
):
    await bound_prompt(client, admin, "accounts", context=[ACCOUNT_RULES])
    form = await as_rule_author.client.get("/ui/rules/new?set=account-42")
    assert form.status_code == 200
    assert '"account_id": "42"' in html.unescape(form.text)
    assert '<option value="accounts" selected>' in form.text

    page = await write(
        as_rule_author,
        set="account-42",
        text="Be formal.",
        action="preview",
        preview_prompt="accounts",
        inputs='{"account_id": "42", "ticket": "Hi"}',
    )

    assert page.status_code == 200, text_of(page)[:500]
    assert "Be formal." in section(page, 'data-side="draft"')
    assert "Be formal." not in section(page, 'data-side="current"')


async def test_check_shows_the_verdict_and_saves_nothing(as_rule_author, client, admin):
    await bound_prompt(client, admin)
    page = await write(as_rule_author, prompt="advisor", text="Be brief.", action="check")
    assert page.status_code == 200
    verdict = section(page, "data-verdict")
    assert "passed" in verdict
    assert "limits" in verdict
    assert await rule_ids(client, admin.headers, prompt="advisor") == []


async def test_a_rule_longer_than_the_policy_allows_is_refused_with_the_text_kept(
    as_rule_author, client, admin
):
    await bound_prompt(client, admin)
    await client.put(
        "/v1/prompts/advisor/rules-policy", headers=admin.headers, json={"max_chars": 10}
    )
    form = await as_rule_author.client.get("/ui/rules/new?prompt=advisor")
    assert "at most 10 characters" in form.text
    page = await write(
        as_rule_author, prompt="advisor", text="Far too long a rule.", action="draft"
    )
    assert page.status_code == 422
    assert "allows 10" in page.text
    assert 'aria-invalid="true"' in page.text
    assert "Far too long a rule.</textarea>" in page.text
    empty = await write(as_rule_author, prompt="advisor", text="   ", action="draft")
    assert empty.status_code == 422
    assert "must not be empty" in empty.text


async def test_save_and_enable_makes_the_rule_live_for_the_next_run(
    as_rule_author, client, admin, session, tenant
):
    await bound_prompt(client, admin)
    saved = await write(
        as_rule_author, prompt="advisor", text="Tickets about refunds are urgent.", action="enable"
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/ui/rules/prompt/advisor"
    scope = await as_rule_author.client.get(saved.headers["location"])
    assert "Saved and enabled: the rule is live." in scope.text
    assert re.findall(r"data-status>(\w+)<", scope.text) == ["enabled"]

    runner = await make_key(session, tenant, ["run"], name="app")
    run = await client.post(
        "/v1/prompts/advisor/run", headers=runner.headers, json={"variables": {"ticket": "Hi"}}
    )
    assert run.status_code == 200, run.text
    (rule_id,) = await rule_ids(client, admin.headers, prompt="advisor")
    assert run.json()["bound"][0]["rules"] == [{"id": rule_id, "revision": 1}]
    assert "Tickets about refunds are urgent." in run.json()["output"]


async def test_save_draft_keeps_the_rule_out_of_runs(as_rule_author, client, admin):
    await bound_prompt(client, admin)
    saved = await write(as_rule_author, prompt="advisor", text="Be brief.", action="draft")
    assert saved.status_code == 303
    scope = await as_rule_author.client.get("/ui/rules/prompt/advisor")
    assert re.findall(r"data-status>(\w+)<", scope.text) == ["draft"]


async def test_a_rejected_rule_shows_the_checkers_reason(
    as_rule_author, client, admin, fake_openai
):
    await bound_prompt(client, admin)
    await use_fake(client, admin, fake_openai)
    await make_prompt(client, admin, "rule-checker", **CHECKER)
    await client.put(
        "/v1/prompts/advisor/rules-policy",
        headers=admin.headers,
        json={"policy_text": "No refunds.", "checker": {"prompt": "rule-checker"}},
    )
    fake_openai.push(Reply({"verdict": "fail", "reason": "It promises refunds."}))
    checked = await write(as_rule_author, prompt="advisor", text="Refund all.", action="check")
    assert "It promises refunds." in section(checked, "data-verdict")
    assert "failed" in section(checked, "data-verdict")

    fake_openai.push(Reply({"verdict": "fail", "reason": "It promises refunds."}))
    saved = await write(as_rule_author, prompt="advisor", text="Refund all.", action="enable")

    assert saved.status_code == 303
    page = await as_rule_author.client.get(saved.headers["location"])
    assert "Rejected by the checks: It promises refunds." in text_of(page)
    assert '<span class="badge rejected">rejected</span>' in page.text


# Changing rules from the scope page


async def test_reorder_disable_enable_and_delete_from_the_scope_page(as_rule_author, client, admin):
    await bound_prompt(client, admin)
    first = await create_rule(client, admin.headers, prompt="advisor", text="One.", enabled=True)
    second = await create_rule(client, admin.headers, prompt="advisor", text="Two.", enabled=True)
    post = as_rule_author.client.post
    csrf = as_rule_author.csrf

    moved = await post(
        f"/ui/rules/{second['id']}/move", data={"csrf_token": csrf, "direction": "up"}
    )
    assert moved.status_code == 303
    assert await rule_ids(client, admin.headers, prompt="advisor") == [second["id"], first["id"]]

    # Moving renumbers the scope: each moved rule is at revision 2 now.
    off = await post(f"/ui/rules/{first['id']}/disable", data={"csrf_token": csrf, "revision": "2"})
    assert off.status_code == 303
    page = await as_rule_author.client.get("/ui/rules/prompt/advisor")
    assert "Disabled: the rule no longer runs." in page.text
    assert re.findall(r"data-status>(\w+)<", page.text) == ["enabled", "disabled"]

    on = await post(f"/ui/rules/{first['id']}/enable", data={"csrf_token": csrf, "revision": "3"})
    assert on.status_code == 303
    stale = await post(
        f"/ui/rules/{first['id']}/delete", data={"csrf_token": csrf, "revision": "3"}
    )
    assert stale.status_code == 303
    page = await as_rule_author.client.get("/ui/rules/prompt/advisor")
    assert "revision 4, but you expected revision 3" in page.text
    gone = await post(f"/ui/rules/{first['id']}/delete", data={"csrf_token": csrf, "revision": "4"})
    assert gone.status_code == 303
    assert await rule_ids(client, admin.headers, prompt="advisor") == [second["id"]]


async def test_a_stale_edit_shows_the_conflict_and_keeps_the_typed_text(
    as_rule_author, client, admin
):
    await bound_prompt(client, admin)
    rule = await create_rule(client, admin.headers, prompt="advisor", text="Be brief.")
    form = await as_rule_author.client.get(f"/ui/rules/{rule['id']}")
    assert 'name="revision" value="1"' in form.text
    changed = await client.patch(
        f"/v1/rules/{rule['id']}", headers=admin.headers, json={"text": "Be very brief."}
    )
    assert changed.status_code == 200

    page = await write(
        as_rule_author, rule=rule["id"], revision="1", text="Be kind.", action="draft"
    )

    assert page.status_code == 409
    conflict = text_of(page)
    assert "Someone else changed this rule" in conflict
    assert "Be very brief." in conflict
    assert "Be kind.</textarea>" in page.text
    assert 'name="revision" value="2"' in page.text  # saving again is a deliberate overwrite
    saved = await write(
        as_rule_author, rule=rule["id"], revision="2", text="Be kind.", action="draft"
    )
    assert saved.status_code == 303


async def test_a_rules_history_lists_every_revision(as_rule_author, client, admin):
    await bound_prompt(client, admin)
    rule = await create_rule(client, admin.headers, prompt="advisor", text="Be brief.")
    await client.patch(f"/v1/rules/{rule['id']}", headers=admin.headers, json={"text": "Be kind."})
    page = await as_rule_author.client.get(f"/ui/rules/{rule['id']}/history")
    assert page.status_code == 200
    assert re.findall(r'data-revision="(\d+)"', page.text) == ["2", "1"]
    assert page.text.index("Be kind.") < page.text.index("Be brief.")


async def test_a_viewer_reads_rules_but_is_offered_no_change(as_viewer, client, admin):
    await bound_prompt(client, admin)
    rule = await create_rule(client, admin.headers, prompt="advisor", text="Be brief.")
    page = await as_viewer.client.get("/ui/rules/prompt/advisor")
    assert page.status_code == 200
    assert "Be brief." in page.text
    assert "New rule" not in page.text
    assert "/enable" not in page.text
    form = await as_viewer.client.get(f"/ui/rules/{rule['id']}")
    assert "readonly" in form.text
    assert 'value="enable"' not in form.text
    assert (await as_viewer.client.get("/ui/rules/new?prompt=advisor")).status_code == 403


# The policy panel of the prompt page


async def test_an_admin_changes_the_rules_policy_on_the_prompt_page(as_owner, client, admin):
    await bound_prompt(client, admin)
    await make_prompt(client, admin, "rule-checker", **CHECKER)
    page = await as_owner.client.get("/ui/prompts/advisor")
    assert "Rules policy" in page.text
    assert "Change the policy" in page.text

    saved = await as_owner.client.post(
        "/ui/prompts/advisor/rules-policy",
        data={
            "csrf_token": as_owner.csrf,
            "allowed": "on",
            "sets": "account-*\nteam-?\n",
            "max_rules": "7",
            "max_chars": "300",
            "policy_text": "No refunds.",
            "checker_prompt": "rule-checker",
            "checker_label": "production",
            "eval_gate_label": "production",
        },
    )

    assert saved.status_code == 303
    policy = (await client.get("/v1/prompts/advisor/rules-policy", headers=admin.headers)).json()
    assert policy == {
        "allowed": True,
        "sets": ["account-*", "team-?"],
        "max_rules": 7,
        "max_chars": 300,
        "policy_text": "No refunds.",
        "checker": {"prompt": "rule-checker", "label": "production"},
        "eval_gate": {"label": "production"},
    }
    page = await as_owner.client.get("/ui/prompts/advisor")
    assert 'data-policy-field="max_rules">7<' in page.text
    assert "Saved the rules policy." in page.text


async def test_a_bad_policy_is_refused_naming_each_field(as_editor, client, admin):
    await bound_prompt(client, admin)
    answer = await as_editor.client.post(
        "/ui/prompts/advisor/rules-policy",
        data={
            "csrf_token": as_editor.csrf,
            "max_rules": "lots",
            "max_chars": "5000",
            "sets": "x" * 201,
            "checker_prompt": "missing",
        },
    )
    assert answer.status_code == 422
    text = text_of(answer)
    assert "The policy was not saved:" in text
    for label in ("Most rules", "Longest rule", "Rule sets", "Checker prompt"):
        assert f"{label}:" in text, label
    assert 'value="lots"' in answer.text
    policy = (await client.get("/v1/prompts/advisor/rules-policy", headers=admin.headers)).json()
    assert policy["max_rules"] == 50


async def test_a_viewer_sees_the_policy_without_a_form(as_viewer, client, admin):
    await bound_prompt(client, admin)
    page = await as_viewer.client.get("/ui/prompts/advisor")
    assert "Rules policy" in page.text
    assert "Change the policy" not in page.text


async def test_a_rule_author_cannot_change_the_policy(as_rule_author, client, admin):
    await bound_prompt(client, admin)
    answer = await as_rule_author.client.post(
        "/ui/prompts/advisor/rules-policy",
        data={"csrf_token": as_rule_author.csrf, "max_rules": "1000", "allowed": "on"},
    )
    assert answer.status_code == 403
    policy = (await client.get("/v1/prompts/advisor/rules-policy", headers=admin.headers)).json()
    assert policy["max_rules"] == 50


# Tenants


async def test_another_tenants_rules_are_not_found_nor_listed(
    as_rule_author, client, admin, session
):
    await bound_prompt(client, admin)
    other = await make_tenant(session, "globex")
    stranger = await make_key(session, other, ["admin"], name="globex-admin")
    await bound_prompt(client, stranger, "secret-plan")
    theirs = await create_rule(
        client, stranger.headers, prompt="secret-plan", text="Their secret rule."
    )
    await create_rule(client, stranger.headers, set="account-1", text="Their set rule.")

    index = await as_rule_author.client.get("/ui/rules")
    assert "secret-plan" not in index.text
    assert "account-1" not in index.text
    assert (await as_rule_author.client.get("/ui/rules/prompt/secret-plan")).status_code == 404
    in_set = await as_rule_author.client.get("/ui/rules/set?name=account-1")
    assert "Their set rule." not in in_set.text
    for url in (f"/ui/rules/{theirs['id']}", f"/ui/rules/{theirs['id']}/history"):
        assert (await as_rule_author.client.get(url)).status_code == 404, url
    csrf = as_rule_author.csrf
    for action in ("enable", "disable", "move", "delete"):
        answer = await as_rule_author.client.post(
            f"/ui/rules/{theirs['id']}/{action}", data={"csrf_token": csrf}
        )
        assert answer.status_code == 404, action
    edit = await write(as_rule_author, rule=theirs["id"], text="Mine now.", action="draft")
    assert edit.status_code == 404
    new = await write(as_rule_author, prompt="secret-plan", text="Mine.", action="draft")
    assert new.status_code == 404
    unknown = await as_rule_author.client.get(f"/ui/rules/{uuid.uuid4()}")
    assert unknown.status_code == 404


# The preview's starting inputs


def test_example_inputs_follow_the_input_schema():
    schema = {
        "type": "object",
        "properties": {
            "ticket": {"type": "string"},
            "tier": {"enum": ["pro", "free"]},
            "count": {"type": ["integer", "null"]},
            "urgent": {"type": "boolean", "default": True},
            "tags": {"type": "array"},
            "customer": {"type": "object", "properties": {"name": {"examples": ["Ada"]}}},
        },
    }
    assert example_of(schema) == {
        "ticket": "example",
        "tier": "pro",
        "count": 1,
        "urgent": True,
        "tags": [],
        "customer": {"name": "Ada"},
    }
    assert example_of({}) == "example"


@pytest.mark.parametrize(
    ("template", "name", "expected"),
    [
        ("account-{{ account_id }}", "account-42", {"account_id": "42"}),
        ("{{ region }}/{{team}}", "eu/ops", {"region": "eu", "team": "ops"}),
        ("account-{{ account_id }}", "team-42", {}),
        ("account-{{ account_id | lower }}", "account-42", {}),
        ("fixed", "fixed", {}),
    ],
)
def test_a_set_template_gives_the_variables_that_name_a_set(template, name, expected):
    assert variables_naming(template, name) == expected
