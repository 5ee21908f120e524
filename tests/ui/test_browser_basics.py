"""In a real browser: signing in and out, and what a viewer is not offered."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.ui.support import MemberFixture


async def browser_sign_in(page: Page, member: MemberFixture) -> None:
    await page.goto("/ui/prompts")
    await expect(page).to_have_url("/ui/login?next=%2Fui%2Fprompts")
    await page.get_by_label("Email").fill(member.email)
    await page.get_by_label("Password").fill(member.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Prompts")).to_be_visible()


async def test_sign_in_and_out(page: Page, owner: MemberFixture):
    await browser_sign_in(page, owner)
    await expect(page.locator(".who")).to_contain_text(owner.email)
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_text("You are signed out.")).to_be_visible()
    await page.goto("/ui/prompts")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


async def test_a_wrong_password_is_said_plainly(page: Page, owner: MemberFixture):
    await page.goto("/ui/login")
    await page.get_by_label("Email").fill(owner.email)
    await page.get_by_label("Password").fill("not the password")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("alert")).to_contain_text("do not match an account")
