"""Screenshots of the admin UI's main pages, for the README: `make screenshots`.

Starts `promptlogic serve` on a fresh embedded Postgres in a temporary home (so the demo tenant,
its prompts and its admin are new), adds a second version of the demo prompt and a few runs
through the API, signs in as the demo admin in Debian's Chromium and saves a PNG per page into
`docs/screenshots/`.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright

from promptlogic.demo_prompts import EXAMPLE_VARIABLES

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 860}
TABLET = {"width": 820, "height": 1180}
KNOWLEDGE = [
    ("refunds", "Refunds are paid within 30 days of delivery, to the original payment method."),
    ("shipping", "Parcels leave the warehouse every weekday; tracking arrives by email."),
    ("security", "Report account takeovers at once: a human answers within the hour."),
]
PROMPT = "support-triage"
PROMPTLOGIC = str(Path(sys.executable).parent / "promptlogic")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(home: Path, port: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """The service on the embedded default; returns it and the demo's login and API key."""
    env = {**os.environ, "PROMPTLOGIC_HOME": str(home)}
    env.pop("PROMPTLOGIC_DATABASE_URL", None)
    env.pop("OPENAI_API_KEY", None)
    env.pop("OPENAI_BASE_URL", None)
    server = subprocess.Popen(
        [PROMPTLOGIC, "serve", "--with-worker", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    banner: list[str] = []
    deadline = time.monotonic() + 180
    assert server.stdout is not None
    while time.monotonic() < deadline:
        line = server.stdout.readline()
        if not line:
            raise SystemExit("the server stopped before it was ready:\n" + "".join(banner))
        banner.append(line)
        if "Application startup complete" in line:
            break
    # Keep reading what it logs, so a full pipe never stalls it.
    threading.Thread(target=server.stdout.read, daemon=True).start()
    text = "".join(banner)
    login = re.search(r"Demo login: (\S+) / (\S+)", text)
    key = re.search(r"API key:\s+(\S+)", text)
    if login is None or key is None:
        raise SystemExit("no demo credentials in the banner:\n" + text)
    return server, {"email": login[1], "password": login[2], "api_key": key[1]}


def seed(base_url: str, api_key: str) -> str:
    """A second version to diff, and a few runs to list; returns the last run's id."""
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        current = client.get(f"/v1/prompts/{PROMPT}/versions/1").json()
        messages = current["messages"]
        messages[0]["content"] += "\nAlways answer in the customer's language."
        body = {
            "messages": messages,
            "input_schema": current["input_schema"],
            "model": current["model"],
            "response_format": current["response_format"],
            "commit_message": "Answer in the customer's language",
        }
        client.post(f"/v1/prompts/{PROMPT}/versions", json=body).raise_for_status()
        client.put(
            f"/v1/prompts/{PROMPT}/labels/staging", json={"version": 2, "expected_version": None}
        ).raise_for_status()
        client.put(
            "/v1/context/customers/ada@example.com",
            json={"value": {"name": "Ada", "plan": "pro", "since": "2021-04-01", "seats": 12}},
        ).raise_for_status()
        client.post("/v1/collections", json={"name": "kb"}).raise_for_status()
        for doc_id, text in KNOWLEDGE:
            client.post(
                "/v1/collections/kb/documents", json={"id": doc_id, "text": text}
            ).raise_for_status()
        for label in ("production", "staging", "production"):
            body = {"variables": EXAMPLE_VARIABLES, "label": label, "end_user": "customer-17"}
            answer = client.post(f"/v1/prompts/{PROMPT}/run", json=body)
            answer.raise_for_status()
        return str(answer.json()["id"])


async def shoot(page: Page, path: str, name: str, *, full_page: bool = True) -> None:
    await page.goto(path)
    await page.wait_for_load_state("networkidle")
    await page.screenshot(path=OUTPUT / f"{name}.png", full_page=full_page)
    print(f"  {name}.png  ({path})")


async def take(base_url: str, login: dict[str, str], chromium: str, run_id: str) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, headless=True)
        context = await browser.new_context(base_url=base_url, viewport=VIEWPORT)
        page = await context.new_page()
        await page.goto("/ui/login")
        await page.screenshot(path=OUTPUT / "sign-in.png")
        await page.get_by_label("Email").fill(login["email"])
        await page.get_by_label("Password").fill(login["password"])
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url("**/ui/prompts")
        await shoot(page, "/ui/prompts", "prompts")
        await shoot(page, f"/ui/prompts/{PROMPT}", "prompt")
        await shoot(page, f"/ui/prompts/{PROMPT}/diff?from=1&to=2", "diff")
        await shoot(page, f"/ui/prompts/{PROMPT}/labels/production/move?version=2", "move-label")
        await page.goto(f"/ui/prompts/{PROMPT}/edit")
        await page.wait_for_timeout(1500)  # the live preview renders after a pause in typing
        await page.screenshot(path=OUTPUT / "editor.png", full_page=True)
        print("  editor.png")
        # Opened from a recorded run, the playground has its variables filled in.
        await page.goto(f"/ui/prompts/{PROMPT}/playground?run={run_id}")
        await page.get_by_role("button", name="Run", exact=True).click()
        await page.wait_for_selector("#result-facts:not([hidden])", timeout=15_000)
        await page.screenshot(path=OUTPUT / "playground.png", full_page=True)
        print("  playground.png")
        await shoot(page, "/ui/runs", "runs")
        run_link = page.locator("a[href^='/ui/runs/']").first
        await shoot(page, await run_link.get_attribute("href") or "/ui/runs", "run")
        await shoot(page, "/ui/settings/api-keys", "settings-api-keys")
        await shoot(page, "/ui/context/customers/ada@example.com", "context-record")
        await page.wait_for_timeout(3000)  # the worker ingests the documents meanwhile
        await shoot(page, "/ui/knowledge/kb?q=when+do+refunds+arrive", "knowledge")
        await page.set_viewport_size(TABLET)
        await shoot(page, f"/ui/prompts/{PROMPT}", "prompt-tablet")
        await shoot(page, f"/ui/prompts/{PROMPT}/playground?run={run_id}", "playground-tablet")
        await browser.close()


def main() -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("needs Debian's chromium: apt-get install chromium")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="promptlogic-screens-") as home:
        server, login = start_server(Path(home), port)
        try:
            run_id = seed(base_url, login["api_key"])
            print(f"screenshots of {base_url} into {OUTPUT.relative_to(ROOT)}/")
            asyncio.run(take(base_url, login, chromium, run_id))
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
