"""In a real browser: write a prompt's first version with the live preview (its update as you
type, a broken template's error with its line, the fix), save it; reorder messages and save."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.runs.support import make_prompt
from tests.ui.support import MemberFixture
from tests.ui.test_browser_basics import browser_sign_in
from tests.ui.test_editor import versions_of


def content_of(page: Page, number: int):
    """Message `number`'s (1-based) content box."""
    return page.locator("[data-messages] > [data-message]").nth(number - 1).get_by_label("Content")


async def sample_variable(page: Page, name: str, value: str) -> None:
    """Fill a sample variable, in the form made from the schema or, without it, as JSON."""
    field = page.locator(f'[data-variables-form] [data-variable="{name}"]')
    if await page.locator("[data-variables-form] .schema-fields").count():
        await field.fill(value)
    else:
        await page.get_by_label("Sample variables (JSON)").fill(f'{{"{name}": "{value}"}}')


async def test_write_preview_and_save_a_first_version(
    page: Page, editor: MemberFixture, client, admin
):
    await browser_sign_in(page, editor)
    await page.goto("/ui/prompts-new")
    await page.get_by_label("Name").fill("greeter")
    await page.get_by_role("button", name="Create").click()
    await expect(page).to_have_url("/ui/prompts/greeter/edit")
    await expect(page.get_by_role("heading", name="New version of greeter")).to_be_visible()

    await content_of(page, 1).fill("You greet people.")
    await page.get_by_role("button", name="Add message").click()
    await expect(content_of(page, 2)).to_be_focused()
    await page.keyboard.type("Hello {{ name }}!")
    messages = page.locator("[data-preview-messages]")
    # The preview asks for the variable the template started using; given, it renders.
    status = page.locator("[data-preview-status]")
    await expect(status).to_have_text("Fill in the sample variables to see the rendered messages.")
    await expect(page.locator("#box-variables")).to_contain_text("is required")
    await sample_variable(page, "name", "Ada")
    await expect(messages.locator(".preview-message").nth(1)).to_have_text("userHello Ada!")
    await expect(messages.locator(".preview-message").first).to_contain_text("You greet people.")
    await expect(status).to_have_text("Up to date.")

    # A broken template: its error next to its message, with its line.
    await content_of(page, 2).fill("Hello {{ name }}!\nHow are you?\n{{ name | }}")
    message_errors = page.locator('[data-errors-for="messages.1"]')
    await expect(message_errors).to_contain_text("line 3")
    await expect(page.locator("[data-preview-problems]")).to_contain_text("Message 2: line 3")
    await expect(content_of(page, 2)).to_have_attribute("aria-invalid", "true")
    await expect(messages).to_have_class("preview-messages stale")

    # Fixed: the error goes, the preview follows.
    await content_of(page, 2).fill("Hello {{ name }}!\nHow are you?")
    await expect(message_errors).to_be_empty()
    await expect(messages.locator(".preview-message").nth(1)).to_contain_text("How are you?")
    await expect(messages).to_have_class("preview-messages")

    await page.get_by_label("Commit message").fill("First greeting")
    await page.get_by_role("button", name="Save version").click()
    await expect(page).to_have_url("/ui/prompts/greeter")
    await expect(page.get_by_text("Saved version 1.")).to_be_visible()
    await expect(page.locator('tr[data-version="1"]')).to_contain_text("First greeting")
    (saved,) = await versions_of(client, admin, "greeter")
    assert saved["messages"] == [
        {"role": "system", "content": "You greet people."},
        {"role": "user", "content": "Hello {{ name }}!\nHow are you?"},
    ]


async def test_reorder_messages_and_save_the_order(page: Page, owner: MemberFixture, client, admin):
    await make_prompt(client, admin, "triage")
    await browser_sign_in(page, owner)
    await page.goto("/ui/prompts/triage")
    await page.get_by_role("link", name="New version").click()
    await expect(content_of(page, 1)).to_have_value("Triage for {{ company }}.")
    await expect(page.get_by_role("button", name="Move message 1 up")).to_be_disabled()

    await page.get_by_role("button", name="Move message 2 up").click()
    await expect(content_of(page, 1)).to_have_value("{{ ticket }}")
    await expect(content_of(page, 2)).to_have_value("Triage for {{ company }}.")
    # The moved message keeps the focus (on the button that can still move it).
    await expect(page.get_by_role("button", name="Move message 1 down")).to_be_focused()
    await sample_variable(page, "company", "Acme")
    await sample_variable(page, "ticket", "Where is my parcel?")
    first = page.locator("[data-preview-messages] .preview-message").first
    await expect(first).to_have_text("userWhere is my parcel?")

    # A third message, then removed again; the roles go with their messages.
    await page.get_by_role("button", name="Add message").click()
    await content_of(page, 3).fill("Noted.")
    await page.locator("[data-message]").nth(2).get_by_label("Role").select_option("assistant")
    await page.get_by_role("button", name="Move message 3 up").click()
    await page.get_by_role("button", name="Remove message 3").click()
    await expect(page.locator("[data-messages] > [data-message]")).to_have_count(2)

    await page.get_by_label("Commit message").fill("User first")
    await page.get_by_role("button", name="Save version").click()
    await expect(page.get_by_text("Saved version 2.")).to_be_visible()
    saved = (await versions_of(client, admin, "triage"))[0]
    assert saved["messages"] == [
        {"role": "user", "content": "{{ ticket }}"},
        {"role": "assistant", "content": "Noted."},
    ]


async def test_without_the_schema_form_sample_variables_are_json(
    page: Page, editor: MemberFixture, client, admin
):
    """The preview still works when the generated variables form cannot load."""
    await make_prompt(client, admin, "triage")
    await page.route("**/schema_form.js", lambda route: route.abort())
    await browser_sign_in(page, editor)
    await page.goto("/ui/prompts/triage/edit")
    sample = page.get_by_label("Sample variables (JSON)")
    # The variables the templates use appear in the JSON, to be filled in.
    await expect(sample).to_have_value('{\n  "company": "",\n  "ticket": ""\n}')
    await sample.fill('{"company": "Acme",\n "ticket": }')
    problems = page.locator('[data-errors-for="variables"]')
    await expect(problems).to_contain_text("not valid JSON")
    await expect(problems).to_contain_text("line 2")
    await sample.fill('{"company": "Acme", "ticket": "Late parcel"}')
    await expect(problems).to_be_empty()
    first = page.locator("[data-preview-messages] .preview-message").first
    await expect(first).to_have_text("systemTriage for Acme.")
