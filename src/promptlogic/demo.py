"""The demo tenant the embedded default seeds on first start, and its saved credentials.

The credentials file under PROMPTLOGIC_HOME exists only so that every `make run` can print a
working login and key on a developer's machine; it is never written for an external database.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit.service import OPERATOR
from promptlogic.demo_prompts import DEMO_PROMPTS, EXAMPLE_RULES, TRIAGE_RULES_POLICY
from promptlogic.errors import NotFound
from promptlogic.prompts import labels
from promptlogic.prompts import service as prompts
from promptlogic.prompts.schemas import PromptCreate
from promptlogic.rendering import Renderer
from promptlogic.rules import policy
from promptlogic.rules import service as rules
from promptlogic.rules.checks import CheckResult, Verdict
from promptlogic.rules.policy import RulesPolicy
from promptlogic.tenancy import keys, service
from promptlogic.tenancy.models import ApiKey, Tenant
from promptlogic.tenancy.roles import Role

DEMO_SLUG = "demo"
DEMO_NAME = "Demo Company"
DEMO_EMAIL = "admin@demo.example.com"
DEMO_SCOPES = ["run", "read", "write", "admin"]
CREDENTIALS_FILE = "demo-credentials.json"


@dataclass(frozen=True, slots=True)
class DemoCredentials:
    tenant: str
    email: str
    password: str
    api_key: str


TRIAGE = "support-triage"


async def ensure_demo(
    session: AsyncSession, home: Path, renderer: Renderer
) -> DemoCredentials | None:
    """Seed the demo tenant once; afterwards keep its saved API key working.

    Returns None when the demo tenant exists but its credentials were not saved here.
    """
    path = home / CREDENTIALS_FILE
    tenant = await session.scalar(select(Tenant).where(Tenant.slug == DEMO_SLUG))
    if tenant is not None:
        await seed_demo_prompts(session, tenant, renderer)
    else:
        tenant = await service.create_tenant(session, slug=DEMO_SLUG, name=DEMO_NAME)
        owner = await service.add_member(
            session, tenant=tenant, email=DEMO_EMAIL, role=Role.OWNER, password=None, actor=OPERATOR
        )
        password = owner.generated_password or "(unchanged: the user already existed)"
        created = await _new_demo_key(session, tenant)
        await seed_demo_prompts(session, tenant, renderer)
        credentials = DemoCredentials(DEMO_SLUG, DEMO_EMAIL, password, created)
        _save(path, credentials)
        return credentials
    if not path.exists():
        return None
    credentials = DemoCredentials(**json.loads(path.read_text()))
    if not await _key_still_works(session, credentials.api_key):
        credentials = DemoCredentials(
            credentials.tenant,
            credentials.email,
            credentials.password,
            await _new_demo_key(session, tenant),
        )
        _save(path, credentials)
    return credentials


async def seed_demo_prompts(session: AsyncSession, tenant: Tenant, renderer: Renderer) -> None:
    """Add the example prompts, deployed to `production`, unless the tenant has them; the
    triage prompt comes with its rules policy and two example rules."""
    for spec in DEMO_PROMPTS:
        try:
            await prompts.get_prompt(session, tenant_id=tenant.id, name=spec["name"])
            continue
        except NotFound:
            pass
        await prompts.create_prompt(
            session,
            tenant_id=tenant.id,
            body=PromptCreate.model_validate(spec),
            actor=OPERATOR,
            renderer=renderer,
        )
        await labels.move_label(
            session,
            tenant_id=tenant.id,
            name=spec["name"],
            label="production",
            version=1,
            expected_version=None,
            actor=OPERATOR,
            may_move_protected=True,
        )
        if spec["name"] == TRIAGE:
            await _seed_rules(session, tenant)


async def _seed_rules(session: AsyncSession, tenant: Tenant) -> None:
    """The example rules, live (they are within the limits; the admins wrote them, so the
    checker prompt is not asked), then the policy that holds the rules added later."""
    passed = Verdict((CheckResult("limits", True),))
    for text in EXAMPLE_RULES:
        await rules.create_rule(
            session,
            tenant_id=tenant.id,
            prompt=TRIAGE,
            rule_set=None,
            text=text,
            enabled=True,
            priority=None,
            actor=OPERATOR,
            verdict=passed,
        )
    await policy.set_policy(
        session, tenant.id, TRIAGE, RulesPolicy.model_validate(TRIAGE_RULES_POLICY), actor=OPERATOR
    )


async def _new_demo_key(session: AsyncSession, tenant: Tenant) -> str:
    created = await service.create_api_key(
        session, tenant_id=tenant.id, name="demo key", scopes=DEMO_SCOPES, actor=OPERATOR
    )
    return created.plaintext


async def _key_still_works(session: AsyncSession, api_key: str) -> bool:
    presented = keys.parse(api_key)
    if presented is None:
        return False
    key = await session.scalar(select(ApiKey).where(ApiKey.prefix == presented.prefix))
    return (
        key is not None
        and key.revoked_at is None
        and key.expires_at is None
        and keys.secret_matches(presented, key.secret_hash)
    )


def _save(path: Path, credentials: DemoCredentials) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(asdict(credentials), indent=2) + "\n")
