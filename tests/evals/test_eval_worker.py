"""An eval run by `promptlogic worker` processes: one is killed mid-eval (SIGKILL, no chance to
finish), another picks the job up and finishes without redoing the stored cases."""

from __future__ import annotations

import asyncio
import signal

from tests.evals.test_eval_runs import dataset, start
from tests.fakes.openai_server import Reply
from tests.jobs.test_worker import clear_queue, workers  # noqa: F401 - a fixture
from tests.runs.support import make_prompt, use_fake

CASES = [(f"Ticket {n}", f"echo: Ticket {n}") for n in range(6)]


async def progress(client, admin, eval_id: str) -> dict:
    return (await client.get(f"/v1/evals/{eval_id}", headers=admin.headers)).json()


async def wait_until(client, admin, eval_id: str, check, seconds: float = 60) -> dict:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        found = await progress(client, admin, eval_id)
        if check(found):
            return found
        assert asyncio.get_running_loop().time() < deadline, f"still {found}"
        await asyncio.sleep(0.1)


async def test_a_killed_worker_leaves_the_eval_to_the_next(
    client,
    admin,
    session,
    fake_openai,
    workers,  # noqa: F811 - the fixture
):
    await clear_queue(session)
    await use_fake(client, admin, fake_openai)
    await make_prompt(client, admin, "triage")
    await dataset(client, admin, cases=CASES)
    fake_openai.set_default(Reply(delay=0.4))
    eval_id = (await start(client, admin, version=1, concurrency=1)).json()["id"]

    first = workers.start("--stalled-after", "2")
    stored = await wait_until(client, admin, eval_id, lambda e: e["progress"]["completed"] >= 2)
    first.kill()
    first.wait()
    kept = (await progress(client, admin, eval_id))["progress"]["completed"]
    assert 2 <= kept < len(CASES)
    assert stored["status"] == "running"
    calls_before = fake_openai.call_count()

    fake_openai.set_default(Reply())
    second = workers.start("--stalled-after", "2")
    done = await wait_until(client, admin, eval_id, lambda e: e["status"] == "succeeded")

    assert done["progress"] == {"completed": len(CASES), "total": len(CASES)}
    assert done["summary"]["passed"] == len(CASES)
    assert len({result["case_id"] for result in done["results"]}) == len(CASES)
    # Only the cases not stored were run again (and the one in flight when the first died).
    assert fake_openai.call_count() - calls_before <= len(CASES) - kept + 1
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0
