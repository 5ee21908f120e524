"""In a real browser, the issue's end to end: an admin imports a dataset, runs evals on two
versions (processed in this process between steps, as a worker would), compares them, and the
gate refuses to promote the worse version on the move confirmation and allows the better one."""

from __future__ import annotations

import json
import re

from playwright.async_api import Page, expect

from tests.evals.test_eval_runs import TICKETS
from tests.evals.test_gates import BETTER, WORSE
from tests.runs.support import make_prompt, use_fake
from tests.ui.support import MemberFixture
from tests.ui.test_browser_basics import browser_sign_in
from tests.ui.test_eval_pages import process
from tests.ui.test_prompt_pages import label_of

CASES = "".join(
    json.dumps({"inputs": {"company": "Acme", "ticket": ticket}, "expected": expected}) + "\n"
    for ticket, expected in TICKETS
).encode()
GATE = {
    "dataset": "tickets",
    "evaluators": [{"type": "exact"}],
    "min_pass_rate": 0.6,
    "no_regressions": False,
}


async def run_an_eval(page: Page, app, tenant, version: int) -> str:
    """Start an eval of `version` from the form, run it here, and wait for its page to follow."""
    await page.goto("/ui/evals-new?prompt=triage&dataset=tickets")
    await page.get_by_label("Version or label").fill(str(version))
    await page.get_by_role("button", name="Start the eval").click()
    await expect(page.get_by_role("heading", name=f"Eval of triage v{version}")).to_be_visible()
    found = re.search(r"/ui/evals/([0-9a-f-]{36})$", page.url)
    assert found is not None, page.url
    await expect(page.locator("h1 [data-status]")).to_have_text("queued")
    await process(app, tenant, found.group(1))
    # The page polls its progress and reloads once the eval has ended.
    await expect(page.locator("h1 [data-status]")).to_have_text("succeeded")
    return found.group(1)


async def test_import_run_compare_and_gate_a_promotion(
    page: Page, owner: MemberFixture, app, tenant, client, admin, fake_openai
):
    await use_fake(client, admin, fake_openai)
    await make_prompt(client, admin, "triage")
    for version in (WORSE, BETTER):  # v2 fails every case; v3 passes two of three, as v1
        added = await client.post(
            "/v1/prompts/triage/versions", headers=admin.headers, json=version
        )
        assert added.status_code == 201, added.text
    await browser_sign_in(page, owner)

    # A dataset, imported from a file.
    await page.get_by_role("link", name="Evals", exact=True).click()
    await page.get_by_role("link", name="Datasets").click()
    await page.get_by_label("Name").fill("tickets")
    await page.get_by_role("button", name="Create dataset").click()
    await expect(page.get_by_role("heading", name="tickets")).to_be_visible()
    await page.get_by_label("File").set_input_files(
        files=[{"name": "tickets.jsonl", "mimeType": "application/x-ndjson", "buffer": CASES}]
    )
    await page.get_by_role("button", name="Import").click()
    await expect(page.locator("[data-written]")).to_contain_text("Wrote 3 cases")
    await expect(page.locator("table.cases tbody tr")).to_have_count(3)

    # The gate the admin set on production (through the API, as admins do).
    gated = await client.put(
        "/v1/prompts/triage/gates/production", headers=admin.headers, json=GATE
    )
    assert gated.status_code == 200, gated.text

    # Evals of the two candidate versions.
    worse = await run_an_eval(page, app, tenant, 2)
    await expect(page.locator("[data-pass-rate] strong")).to_have_text("0%")
    better = await run_an_eval(page, app, tenant, 3)
    await expect(page.locator("[data-pass-rate] strong")).to_have_text("66.7%")

    # Compared: the better one against the worse, then swapped, with regressions highlighted.
    await page.get_by_label("Compare with").select_option(worse)
    await page.get_by_role("button", name="Compare").click()
    await expect(page.locator("tr.improved")).to_have_count(2)
    await page.get_by_role("link", name="Swap base and head").click()
    await expect(page.locator("tr.regressed")).to_have_count(2)
    await expect(page.locator("[data-counts]")).to_contain_text("2 regressed")
    assert better in page.url

    # The chart of the prompt's evals: a point per version.
    await page.goto("/ui/evals?prompt=triage")
    await expect(page.locator("svg circle[data-version]")).to_have_count(2)

    # The gate refuses the worse version on the move confirmation…
    await page.goto("/ui/prompts/triage")
    await page.get_by_label("Move production to version").select_option("2")
    await page.get_by_role("button", name="Move…").click()
    await expect(page.locator("[data-gate-failures]")).to_contain_text("is under 60.00%")
    await page.get_by_role("button", name="Move production to v2").click()
    await expect(page.get_by_role("alert")).to_contain_text("refused the move")
    await expect(page.get_by_role("alert")).to_contain_text("version 2: pass rate 0.00%")
    assert await label_of(client, admin, "triage") == 1

    # …and lets the better one through.
    await page.goto("/ui/prompts/triage")
    await page.get_by_label("Move production to version").select_option("3")
    await page.get_by_role("button", name="Move…").click()
    await expect(page.locator("[data-gate-passes]")).to_be_visible()
    await page.get_by_role("button", name="Move production to v3").click()
    await expect(page.get_by_text("`production` now points at version 3.")).to_be_visible()
    assert await label_of(client, admin, "triage") == 3
