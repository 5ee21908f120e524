"""In a real browser: create an API key (shown once, then only its prefix) and revoke it."""

from __future__ import annotations

import re

from playwright.async_api import ConsoleMessage, Page, expect

from tests.ui.support import MemberFixture
from tests.ui.test_browser_basics import browser_sign_in

KEY = re.compile(r"^pl_([0-9a-f]{12})_[a-z2-7]{48}$")


async def test_create_an_api_key_see_it_once_and_revoke_it(
    page: Page, owner: MemberFixture, client
):
    complaints: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # The browser's own favicon request is not the page's doing.
        if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
            complaints.append(message.text)

    page.on("console", on_console)
    await browser_sign_in(page, owner)
    await page.get_by_role("link", name="Settings", exact=True).click()
    await (
        page.get_by_role("navigation", name="Settings").get_by_role("link", name="API keys").click()
    )

    await page.get_by_label("Name").fill("checkout service")
    await page.get_by_label("run", exact=True).check()
    await page.get_by_label("read", exact=True).check()
    await page.get_by_role("button", name="Create key").click()

    await expect(page.get_by_text("it will not be shown again")).to_be_visible()
    plaintext = await page.get_by_label("Your new API key").input_value()
    found = KEY.match(plaintext)
    assert found is not None, plaintext
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {plaintext}"})
    assert me.status_code == 200

    await page.get_by_role("link", name="back to the keys").click()
    row = page.locator("tr", has_text="checkout service")
    await expect(row).to_contain_text(f"pl_{found.group(1)}_…")
    assert plaintext not in await page.content()

    page.once("dialog", lambda dialog: dialog.accept())
    await row.get_by_role("button", name="Revoke checkout service").click()
    await expect(page.get_by_role("status")).to_contain_text("Revoked the key “checkout service”")
    await expect(row).to_contain_text("revoked")
    await expect(row.get_by_role("button")).to_have_count(0)
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {plaintext}"})
    assert me.status_code == 401
    assert complaints == []  # no script error, nothing the CSP refused
