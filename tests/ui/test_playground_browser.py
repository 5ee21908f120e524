"""The playground in a real browser, on the offline provider: the form from the input schema,
errors next to their fields, a run's output and details, and a streamed run."""

from __future__ import annotations

import json
import re

from fastapi import FastAPI
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.demo import seed_demo_prompts
from promptlogic.tenancy.models import Tenant
from tests.ui.support import MemberFixture
from tests.ui.test_browser_basics import browser_sign_in

RUN_LINK = re.compile(r"^/ui/runs/[0-9a-f-]{36}$")


async def open_demo_playground(
    page: Page, app: FastAPI, session: AsyncSession, tenant: Tenant, member: MemberFixture
) -> None:
    """The demo's `support-triage` (it includes `company-policy`), in the playground."""
    await seed_demo_prompts(session, tenant, app.state.renderer)
    await session.commit()
    await browser_sign_in(page, member)
    await page.goto("/ui/prompts/support-triage/playground")
    await expect(page.get_by_role("heading", name="Playground: support-triage")).to_be_visible()
    await expect(page.locator("#provider-in-use")).to_contain_text("offline provider")


async def fill_ticket(page: Page) -> None:
    await page.get_by_label("customer_tier").select_option("pro")
    await page.get_by_label("subject").fill("Charged twice")
    await page.get_by_label("message").fill("I was charged twice for order 1042.")


async def test_a_run_shows_output_usage_cost_and_the_run(page: Page, app, session, tenant, owner):
    await open_demo_playground(page, app, session, tenant, owner)
    # Nothing filled in: the server's 422 is shown next to the fields it names.
    await page.get_by_role("button", name="Run", exact=True).click()
    await expect(page.locator("#run-error")).to_contain_text("The variables are not valid.")
    subject = page.get_by_label("subject")
    await expect(subject).to_have_attribute("aria-invalid", "true")
    await expect(page.locator(".field", has=subject).locator(".field-error")).to_have_text(
        "is required"
    )

    await fill_ticket(page)
    await page.get_by_role("button", name="Run", exact=True).click()
    link = page.locator("#run-link")
    await expect(link).to_have_attribute("href", RUN_LINK)
    await expect(page.locator("#run-error")).to_be_hidden()
    await expect(subject).not_to_have_attribute("aria-invalid", "true")
    parsed = json.loads(await page.locator("#parsed").text_content() or "")
    assert set(parsed) == {"category", "priority", "needs_human", "summary"}
    await expect(page.locator("#output")).to_contain_text('"category"')
    await expect(page.locator("#tokens")).to_have_text(re.compile(r"^\d+ / \d+$"))
    await expect(page.locator("#cost")).to_have_text("$0")
    await expect(page.locator("#latency")).to_have_text(re.compile(r"^\d+ ms$"))
    await expect(page.locator("#result-provider")).to_have_text("offline")
    await expect(page.locator("#result-model")).to_have_text("gpt-4o-mini")
    await expect(page.locator("#result-version")).to_contain_text("company-policy v1")
    run_id = await link.text_content()

    await link.click()
    await expect(
        page.get_by_role("heading", name=re.compile("Run of support-triage"))
    ).to_be_visible()
    await expect(page.locator(".run-id")).to_contain_text(run_id or "")
    await expect(page.get_by_text(f"{owner.email} (user)")).to_be_visible()


async def test_a_streamed_run_from_json_shows_the_text_then_the_details(
    page: Page, app, session, tenant, editor
):
    await open_demo_playground(page, app, session, tenant, editor)
    await fill_ticket(page)
    # The escape hatch: the same variables as JSON, run from there.
    await page.get_by_role("button", name="Edit as JSON").click()
    variables = json.loads(await page.get_by_label("Variables as JSON").input_value())
    assert variables == {
        "customer_tier": "pro",
        "subject": "Charged twice",
        "message": "I was charged twice for order 1042.",
    }
    await page.get_by_label("Stream the output").check()
    await page.get_by_role("button", name="Run", exact=True).click()
    await expect(page.locator("#run-link")).to_have_attribute("href", RUN_LINK)
    streamed = await page.locator("#output").text_content()
    parsed = json.loads(streamed or "")  # the deltas put together are the whole JSON answer
    assert parsed["category"] in {"billing", "shipping", "technical", "account", "other"}
    assert json.loads(await page.locator("#parsed").text_content() or "") == parsed
    await expect(page.locator("#output")).not_to_have_class(re.compile("streaming"))
    await expect(page.locator("#tokens")).to_have_text(re.compile(r"^\d+ / \d+$"))
    await expect(page.locator("#cost")).to_have_text("$0")
    await expect(page.locator("#run-state")).to_have_text("(succeeded)")


SCHEMA = {
    "type": "object",
    "properties": {
        "notes": {"type": "object"},
        "count": {"type": "integer", "default": 3},
        "urgent": {"type": "boolean"},
        "tier": {"enum": ["free", "pro"], "description": "The customer's plan"},
        "title": {"type": "string", "maxLength": 80, "examples": ["Hello"]},
        "body": {"type": "string"},
    },
    "required": ["title", "tier"],
}


async def test_schema_form_builds_reads_and_marks_fields(page: Page):
    """The API the playground and the editor's preview share, on a page of the app."""
    await page.goto("/ui/login")
    result = await page.evaluate(
        """async (schema) => {
            const form = await import("/ui/static/schema_form.js");
            const box = document.createElement("div");
            document.querySelector("main").append(box);
            form.buildForm(box, schema, { body: "given" });
            const labels = [...box.querySelectorAll("label")].map((l) => l.textContent);
            const kinds = [...box.querySelectorAll(".field")].map((f) => f.dataset.kind);
            const hint = box.querySelector(".hint").textContent;
            const first = form.readForm(box);
            box.querySelector('[data-kind="json"] textarea').value = "{oops";
            const problems = form.formProblems(box);
            const left = form.showErrors(box, [
                { field: "variables.count", message: "must be at most 2" },
                { field: "variables", message: "has an unknown name" },
            ]);
            const marked = box.querySelector('[data-kind="number"] input')
                .getAttribute("aria-invalid");
            const shown = box.querySelector('[data-kind="number"] .field-error').textContent;
            const extra = form.hasExtraValues(schema, { title: "x", other: 1 });
            form.buildForm(box, schema, { title: "x", other: 1 }, { asJson: true });
            const asJson = JSON.parse(box.querySelector("textarea.schema-json").value);
            return { labels, kinds, hint, first, problems, left, marked, shown, extra, asJson };
        }""",
        SCHEMA,
    )
    # Required first (in `required` order), each field of its kind, required marked.
    assert result["labels"] == ["title*", "tier*", "notes", "count", "urgent", "body"]
    assert result["kinds"] == ["text", "enum", "json", "number", "boolean", "textarea"]
    assert result["hint"] == "The customer's plan"
    # Prefilled from the values given, else examples, else defaults; empty fields left out.
    assert result["first"] == {"title": "Hello", "count": 3, "urgent": False, "body": "given"}
    assert result["problems"] == [{"field": "variables.notes", "message": "is not valid JSON"}]
    assert result["left"] == [{"field": "variables", "message": "has an unknown name"}]
    assert result["marked"] == "true"
    assert result["shown"] == "must be at most 2"
    assert result["extra"] is True
    assert result["asJson"] == {"title": "x", "other": 1}
