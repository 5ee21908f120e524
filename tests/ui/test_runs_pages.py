"""The runs pages over HTTP: the list and its filters, paging, a run in full, and who sees what."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.runs.service import RunRecord, write_runs
from promptlogic.tenancy.models import Tenant
from tests.factories import make_run, make_tenant
from tests.runs.support import make_prompt

ROW = re.compile(r'<tr data-run="([0-9a-f-]{36})">')
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def listed(html: str) -> list[str]:
    """The run ids of a runs list page, in the order shown."""
    return ROW.findall(html)


async def test_the_list_shows_the_tenants_runs_newest_first(session, tenant, as_viewer):
    older = await make_run(session, tenant, created_at=START, principal_name="billing-app")
    newer = await make_run(
        session,
        tenant,
        created_at=START + timedelta(hours=1),
        prompt="refunds",
        version=3,
        label=None,
        status="failed",
        principal_type="user",
        principal_name="ann@acme.example",
        cost=None,
    )
    other = await make_tenant(session, "globex")
    await make_run(session, other, created_at=START + timedelta(hours=2))

    page = await as_viewer.client.get("/ui/runs")
    assert page.status_code == 200
    assert listed(page.text) == [str(newer.id), str(older.id)]
    html = page.text
    assert f'href="/ui/runs/{older.id}"' in html
    assert 'href="/ui/prompts/refunds"' in html
    assert 'href="/ui/prompts/triage/versions/1"' in html
    assert '<span class="badge failed">failed</span>' in html
    assert '<span class="badge succeeded">succeeded</span>' in html
    assert "10 / 5" in html  # tokens in / out
    assert "$0.0000045" in html
    assert "12 ms" in html
    assert "gpt-4o-mini" in html
    assert "offline" in html
    assert "billing-app" in html
    assert "(API key)" in html
    assert "ann@acme.example" in html
    assert "(user)" in html


async def test_filters_narrow_the_list(session, tenant, as_viewer):
    triage = await make_run(session, tenant, created_at=START)
    failed = await make_run(
        session, tenant, created_at=START + timedelta(minutes=1), status="failed"
    )
    refunds = await make_run(
        session, tenant, created_at=START + timedelta(minutes=2), prompt="refunds", label=None
    )
    staging = await make_run(
        session,
        tenant,
        created_at=START + timedelta(days=1),
        label="staging",
        version=2,
        status="timed_out",
    )

    async def ids(query: str) -> list[str]:
        page = await as_viewer.client.get(f"/ui/runs?{query}")
        assert page.status_code == 200, page.text
        return listed(page.text)

    assert await ids("status=failed") == [str(failed.id)]
    assert await ids("status=timed_out") == [str(staging.id)]
    assert await ids("prompt=refunds") == [str(refunds.id)]
    assert await ids("label=staging") == [str(staging.id)]
    assert await ids("version=2") == [str(staging.id)]
    assert await ids("prompt=triage&label=production&status=succeeded") == [str(triage.id)]
    # The time range: datetime-local values are UTC; "after" includes its minute, "before" not.
    assert await ids("created_after=2025-03-01T12:01&created_before=2025-03-01T12:02") == [
        str(failed.id)
    ]
    assert await ids("created_after=2025-03-02T00:00") == [str(staging.id)]
    # Empty fields (a submitted form with nothing chosen) do not filter.
    assert len(await ids("prompt=&version=&label=&status=&created_after=&created_before=")) == 4
    # The form shows what is filtered on.
    page = await as_viewer.client.get("/ui/runs?status=failed&prompt=triage")
    assert '<option value="failed" selected>' in page.text
    assert 'value="triage"' in page.text
    nothing = await as_viewer.client.get("/ui/runs?prompt=nosuch")
    assert "No runs match these filters." in nothing.text


async def test_bad_filter_values_name_the_field(as_viewer, session, tenant):
    await make_run(session, tenant)
    cases = {
        "version=abc": "version: must be a version number",
        "version=0": "version: must be a version number",
        "version=%C2%B2": "version: must be a version number",  # a digit to Python, not a number
        "version=99999999999": "version: must be a version number",
        "status=exploded": "status: must be one of",
        "created_after=yesterday": "created after: is not a date and time",
        "created_before=2025-13-01T00:00": "created before: is not a date and time",
        "created_before=9999-12-31T23:59-14:00": "created before: is not a date and time",
        "prompt=Not%20A%20Name": "prompt: is not a prompt name",
        "label=%3Cscript%3E": "label: is not a label name",
        "cursor=not-a-cursor": "cursor: not a cursor returned by this list",
    }
    for query, message in cases.items():
        page = await as_viewer.client.get(f"/ui/runs?{query}")
        assert page.status_code == 422, query
        assert message in page.text, (query, page.text)
        assert listed(page.text) == []
    page = await as_viewer.client.get("/ui/runs?version=abc&status=failed")
    assert 'name="version" inputmode="numeric" value="abc"' in page.text
    assert 'aria-invalid="true"' in page.text
    # The value typed is shown back escaped, never as markup.
    page = await as_viewer.client.get("/ui/runs?label=%3Cscript%3E")
    assert "<script>" not in page.text.split("</header>")[1]


async def write_many(session: AsyncSession, tenant: Tenant, count: int) -> list[RunRecord]:
    records = [
        RunRecord(
            tenant_id=tenant.id,
            prompt="triage",
            principal_type="api_key",
            principal_name="app",
            status="succeeded",
            latency_ms=5,
            created_at=START + timedelta(seconds=i),
        )
        for i in range(count)
    ]
    await write_runs(session, records)
    await session.commit()
    return records


async def test_older_runs_page_on_keeping_the_filters(session, tenant, as_viewer):
    records = await write_many(session, tenant, 52)
    await make_run(session, tenant, prompt="refunds", created_at=START + timedelta(hours=1))
    first = await as_viewer.client.get("/ui/runs?prompt=triage")
    shown = listed(first.text)
    assert shown == [str(r.id) for r in reversed(records)][:50]
    older = re.search(r'href="(/ui/runs\?[^"]+)">Older runs<', first.text)
    assert older is not None
    url = older.group(1).replace("&amp;", "&")
    assert "prompt=triage" in url
    second = await as_viewer.client.get(url)
    assert listed(second.text) == [str(records[1].id), str(records[0].id)]
    assert "Older runs" not in second.text


async def test_a_run_in_full(session, tenant, as_viewer):
    run = await make_run(
        session,
        tenant,
        arm="2",
        versions_used=[{"prompt": "triage", "version": 2}, {"prompt": "policy", "version": 4}],
        messages=[
            {"role": "system", "content": "You triage <tickets>."},
            {"role": "user", "content": "Triage: printer on fire"},
        ],
        end_user="customer-42",
        metadata={"channel": "email"},
        principal_type="user",
        principal_name="ann@acme.example",
        repaired=True,
        time_to_first_token_ms=7,
    )
    page = await as_viewer.client.get(f"/ui/runs/{run.id}")
    assert page.status_code == 200
    html = page.text
    assert str(run.id) in html
    assert '<span class="badge succeeded">succeeded</span>' in html
    assert 'href="/ui/prompts/triage/versions/2">triage v2</a>' in html
    assert 'href="/ui/prompts/policy/versions/4">policy v4</a>' in html
    assert 'href="/ui/prompts/triage/labels/production/history"' in html
    assert "You triage &lt;tickets&gt;." in html  # rendered messages, escaped
    assert '<div class="role-name">system</div>' in html
    assert "Triage: printer on fire" in html
    assert "&#34;ticket&#34;: &#34;printer on fire&#34;" in html  # inputs, pretty JSON
    assert "{&#34;priority&#34;: &#34;high&#34;}" in html  # the output text
    assert "&#34;priority&#34;: &#34;high&#34;\n}" in html  # the parsed JSON, pretty
    assert "customer-42" in html
    assert "&#34;channel&#34;: &#34;email&#34;" in html
    assert "ann@acme.example" in html
    assert "(user)" in html
    assert "$0.0000045" in html
    assert "10 / 5" in html
    assert "12 ms" in html
    assert "first token after 7 ms" in html
    assert "Repaired</dt><dd>yes" in html
    # A viewer may not run prompts, so is not offered the playground.
    assert "Open in the playground" not in html


async def test_a_failed_run_shows_its_error(session, tenant, as_owner):
    run = await make_run(
        session,
        tenant,
        status="failed",
        output=None,
        parsed=None,
        messages=None,
        model=None,
        input_tokens=None,
        output_tokens=None,
        cost=None,
        error={"type": "provider-error", "detail": "The provider answered 500."},
    )
    page = await as_owner.client.get(f"/ui/runs/{run.id}")
    assert page.status_code == 200
    assert "provider-error" in page.text
    assert "The provider answered 500." in page.text
    assert "The prompt was not rendered" in page.text
    assert "No output." in page.text
    assert "— / —" in page.text


async def test_a_member_who_may_run_is_offered_the_playground(
    session, tenant, as_owner, client, admin
):
    run = await make_run(session, tenant)
    page = await as_owner.client.get(f"/ui/runs/{run.id}")
    # Only a chat prompt that exists can be tried again.
    assert "Open in the playground" not in page.text
    await make_prompt(client, admin, "triage")
    page = await as_owner.client.get(f"/ui/runs/{run.id}")
    assert f'href="/ui/prompts/triage/playground?version=1&amp;run={run.id}"' in page.text


async def test_another_tenants_run_or_a_malformed_id_is_not_found(session, as_owner):
    other = await make_tenant(session, "globex")
    theirs = await make_run(session, other)
    for path in (f"/ui/runs/{theirs.id}", f"/ui/runs/{uuid.uuid4()}", "/ui/runs/not-a-uuid"):
        page = await as_owner.client.get(path)
        assert page.status_code == 404, path
        assert "Not found" in page.text
        assert "printer on fire" not in page.text


async def test_signed_out_visitors_are_sent_to_sign_in(client, session, tenant):
    run = await make_run(session, tenant, cost=Decimal("0"))
    for path in ("/ui/runs", f"/ui/runs/{run.id}"):
        answer = await client.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/ui/login?next=")
