"""In a real browser: what a viewer is offered, diffing versions, moving `production` and
rolling it back, and a form without its CSRF token."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.runs.support import make_prompt
from tests.ui.support import MemberFixture
from tests.ui.test_browser_basics import browser_sign_in
from tests.ui.test_prompt_pages import add_version, label_of


async def test_a_viewer_sees_no_edit_controls(page: Page, viewer: MemberFixture, client, admin):
    await make_prompt(client, admin, "triage")
    await add_version(client, admin, "triage", "Answer in French.")
    await browser_sign_in(page, viewer)
    await page.get_by_role("link", name="triage").click()
    await expect(page.get_by_role("heading", name="Versions")).to_be_visible()
    for name in ("New version", "Move…", "Roll back…", "Label…", "Playground"):
        await expect(page.get_by_role("button", name=name)).to_have_count(0)
        await expect(page.get_by_role("link", name=name)).to_have_count(0)
    await expect(page.get_by_role("link", name="Edit from here")).to_have_count(0)


async def test_diff_two_versions(page: Page, owner: MemberFixture, client, admin):
    await make_prompt(client, admin, "triage")
    await add_version(client, admin, "triage", "Answer in French.")
    await browser_sign_in(page, owner)
    await page.goto("/ui/prompts/triage")
    await page.get_by_role("link", name="Compare versions").click()
    await expect(page.locator(".side .cell.add")).to_contain_text("Answer in French.")
    await expect(page.locator(".side .cell.del")).to_contain_text("Triage for {{ company }}.")
    await page.get_by_label("Unified").check()
    await page.get_by_role("button", name="Compare").click()
    await expect(page.locator(".diff .add")).to_contain_text("+Answer in French.")


async def test_move_production_and_roll_back(page: Page, owner: MemberFixture, client, admin):
    await make_prompt(client, admin, "triage")
    await add_version(client, admin, "triage", "Answer in French.")
    await browser_sign_in(page, owner)
    await page.goto("/ui/prompts/triage")
    await page.get_by_label("Move production to version").select_option("2")
    await page.get_by_role("button", name="Move…").click()
    # The confirmation shows what changes before anything moves.
    await expect(page.get_by_role("heading", name="Move production to v2?")).to_be_visible()
    await expect(page.locator(".side .cell.add")).to_contain_text("Answer in French.")
    assert await label_of(client, admin, "triage") == 1
    await page.get_by_role("button", name="Move production to v2").click()
    await expect(page.get_by_text("`production` now points at version 2.")).to_be_visible()
    assert await label_of(client, admin, "triage") == 2
    await page.get_by_role("link", name="Roll back…").click()
    await expect(page.get_by_role("heading", name="Roll back production to v1?")).to_be_visible()
    await page.get_by_role("button", name="Roll back production to v1").click()
    await expect(page.get_by_text("`production` now points at version 1.")).to_be_visible()
    assert await label_of(client, admin, "triage") == 1


async def test_a_form_posted_without_its_csrf_token_is_refused(
    page: Page, owner: MemberFixture, client, admin
):
    await make_prompt(client, admin, "triage")
    await add_version(client, admin, "triage", "Answer in French.")
    await browser_sign_in(page, owner)
    await page.goto("/ui/prompts/triage/labels/production/move?version=2")
    await page.locator('main input[name="csrf_token"]').evaluate("field => field.remove()")
    await page.get_by_role("button", name="Move production to v2").click()
    await expect(page.get_by_role("alert")).to_contain_text("security token is missing")
    assert await label_of(client, admin, "triage") == 1
