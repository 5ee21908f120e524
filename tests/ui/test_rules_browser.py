"""The rules area in a real browser, on the offline provider (it echoes the last user message):
a rule author's whole path from signing in to a live rule, a rejected rule's reason, reordering
and disabling, and an admin's policy form on the prompt page."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.factories import make_key
from tests.fakes.openai_server import Reply
from tests.rules.support import create_rule, rule_ids
from tests.runs.support import make_prompt, use_fake
from tests.ui.support import MemberFixture
from tests.ui.test_browser_basics import browser_sign_in
from tests.ui.test_rules_pages import CHECKER, bound_prompt


async def sign_in_as_rule_author(page: Page, member: MemberFixture) -> None:
    await page.goto("/ui/login")
    await page.get_by_label("Email").fill(member.email)
    await page.get_by_label("Password").fill(member.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url("/ui/rules")
    await expect(page.get_by_role("heading", name="Rules", exact=True)).to_be_visible()


async def test_a_rule_author_writes_previews_checks_and_enables_a_rule(
    page: Page, rule_author: MemberFixture, client, admin, session, tenant
):
    await bound_prompt(client, admin)
    await create_rule(client, admin.headers, prompt="advisor", text="Be brief.", enabled=True)

    await sign_in_as_rule_author(page, rule_author)
    menu = page.get_by_role("navigation", name="Main").get_by_role("link")
    await expect(menu).to_have_text(["Rules"])
    await expect(page.get_by_role("link", name="Settings")).to_have_count(0)

    await page.get_by_role("link", name="advisor").click()
    await expect(page.get_by_role("heading", name="Rules of advisor")).to_be_visible()
    await page.get_by_role("link", name="New rule").click()
    await page.get_by_label("Rule text").fill("Answer in French.")
    await expect(page.locator("#rule-text-count")).to_have_text("17 of 500 characters")
    await expect(page.get_by_label("Inputs (a JSON object)")).to_contain_text('"ticket"')

    await page.get_by_role("button", name="Preview").click()
    current, draft = page.locator('[data-side="current"]'), page.locator('[data-side="draft"]')
    await expect(current.locator(".preview-output")).to_contain_text("Be brief.")
    await expect(current).not_to_contain_text("Answer in French.")
    await expect(draft.locator(".preview-output")).to_contain_text("Answer in French.")
    await expect(draft.locator(".bound-rules li")).to_have_text(["Be brief.", "Answer in French."])
    await expect(page.get_by_label("Rule text")).to_have_value("Answer in French.")

    await page.get_by_role("button", name="Check").click()
    await expect(page.locator("[data-verdict]")).to_contain_text("passed")

    await page.get_by_role("button", name="Save and enable").click()
    await expect(page.get_by_text("Saved and enabled: the rule is live.")).to_be_visible()
    await expect(page.locator("[data-status]")).to_have_text(["enabled", "enabled"])

    # Live: the next run through the API binds it.
    runner = await make_key(session, tenant, ["run"], name="product-app")
    run = await client.post(
        "/v1/prompts/advisor/run", headers=runner.headers, json={"variables": {"ticket": "Hi"}}
    )
    assert run.status_code == 200, run.text
    ids = await rule_ids(client, admin.headers, prompt="advisor")
    assert [rule["id"] for rule in run.json()["bound"][0]["rules"]] == ids
    assert "Answer in French." in run.json()["output"]


async def test_a_rule_author_is_not_offered_the_prompt_pages(
    page: Page, rule_author: MemberFixture, client, admin
):
    await bound_prompt(client, admin)
    await sign_in_as_rule_author(page, rule_author)
    await page.get_by_role("link", name="advisor").click()
    for name in ("Prompts", "Settings", "New version", "Playground"):
        await expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
    for url in ("/ui/prompts/advisor/edit", "/ui/settings", "/ui/prompts/advisor/playground"):
        response = await page.goto(url)
        assert response is not None
        assert response.status == 403, url
        await expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()


async def test_a_rejected_rule_shows_its_reason(
    page: Page, rule_author: MemberFixture, client, admin, fake_openai
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

    await sign_in_as_rule_author(page, rule_author)
    await page.goto("/ui/rules/new?prompt=advisor")
    await page.get_by_label("Rule text").fill("Refund everyone at once.")
    await page.get_by_role("button", name="Save and enable").click()

    await expect(page.locator("[data-reason]")).to_have_text(
        "Rejected by the checks: It promises refunds."
    )
    await page.get_by_role("link", name="advisor").click()
    await expect(page.locator("[data-status]")).to_have_text(["rejected"])
    await expect(page.locator("[data-reason]")).to_contain_text("It promises refunds.")


async def test_reorder_disable_and_delete(page: Page, rule_author: MemberFixture, client, admin):
    await bound_prompt(client, admin)
    for text in ("One.", "Two."):
        await create_rule(client, admin.headers, prompt="advisor", text=text, enabled=True)
    await sign_in_as_rule_author(page, rule_author)
    await page.goto("/ui/rules/prompt/advisor")
    texts = page.locator(".rule-list .rule-text")

    await page.get_by_role("button", name="Move rule 2 up").click()
    await expect(texts).to_have_text(["Two.", "One."])
    await page.get_by_role("button", name="Disable rule 1").click()
    await expect(page.get_by_text("Disabled: the rule no longer runs.")).to_be_visible()
    await expect(page.locator("[data-status]")).to_have_text(["disabled", "enabled"])

    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Delete rule 1").click()
    await expect(page.get_by_text("Deleted the rule.")).to_be_visible()
    await expect(texts).to_have_text(["One."])


async def test_an_admin_changes_the_rules_policy_on_the_prompt_page(
    page: Page, owner: MemberFixture, client, admin
):
    await bound_prompt(client, admin)
    await browser_sign_in(page, owner)
    await expect(page.get_by_role("navigation", name="Main")).to_contain_text("Rules")
    await page.goto("/ui/prompts/advisor")
    await page.get_by_text("Change the policy").click()
    await page.get_by_label("Most rules").fill("3")
    await page.get_by_label("Checker prompt").fill("no-such-checker")
    await page.get_by_role("button", name="Save the policy").click()
    await expect(page.get_by_role("alert")).to_contain_text("no prompt named `no-such-checker`")
    await expect(page.get_by_label("Most rules")).to_have_value("3")  # kept as typed
    await page.get_by_label("Checker prompt").fill("")
    await page.get_by_label("Policy text").fill("Be polite.")
    await page.get_by_role("button", name="Save the policy").click()

    await expect(page.get_by_text("Saved the rules policy.")).to_be_visible()
    await expect(page.locator('[data-policy-field="max_rules"]')).to_have_text("3")
    await page.get_by_role("link", name="Rules of advisor").click()
    await expect(page.locator('[data-limit="max_rules"]')).to_have_text("3")
    await expect(page.get_by_text("Be polite.")).to_be_visible()
