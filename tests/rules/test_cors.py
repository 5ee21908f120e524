"""A product app's end users edit their rule set from the browser: with the origin listed in
PROMPTLOGIC_CORS_ORIGINS, a preflight is answered and the response is readable; otherwise not."""

from __future__ import annotations

from promptlogic.app import create_app
from tests.conftest import client_for, make_settings, running

ALLOWED = "https://app.example.com"
PREFLIGHT = {
    "Access-Control-Request-Method": "PATCH",
    "Access-Control-Request-Headers": "authorization, content-type, if-match",
}


async def test_a_listed_origin_may_call_the_rules_api(database_url, admin, clean):
    app = create_app(make_settings(database_url, cors_origins=[ALLOWED]))
    async with running(app), client_for(app) as client:
        preflight = await client.options(
            "/v1/rules/00000000-0000-4000-8000-000000000000",
            headers={"Origin": ALLOWED, **PREFLIGHT},
        )
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == ALLOWED
        assert "if-match" in preflight.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in preflight.headers  # bearer only

        listed = await client.get("/v1/rules", headers={"Origin": ALLOWED, **admin.headers})
        assert listed.status_code == 200
        assert listed.headers["access-control-allow-origin"] == ALLOWED

        stranger = await client.options(
            "/v1/rules", headers={"Origin": "https://evil.example", **PREFLIGHT}
        )
        assert "access-control-allow-origin" not in stranger.headers


async def test_without_origins_no_cross_origin_call_is_allowed(client, admin):
    answer = await client.get("/v1/rules", headers={"Origin": ALLOWED, **admin.headers})
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers
