"""Gating a tenant rule on the prompt's eval: the rules check that runs the label's gate with
the rule applied before the rule goes live.

A policy with `eval_gate: {"label"}` makes every rule it governs pass that label's promotion
gate (dataset, evaluators, minimum pass rate, no regressions) as a draft over the live rules,
on the version the label holds. The eval is an ordinary eval (listed with the others, its runs
recorded), run while the author waits, so the dataset must be small (`MAX_CASE_RUNS`).
"""

from __future__ import annotations

import uuid
from typing import Any

from promptlogic.db.engine import commit
from promptlogic.evals import datasets, gates
from promptlogic.evals.models import EvalRun
from promptlogic.evals.outcomes import outcomes_of
from promptlogic.evals.runner import run_eval
from promptlogic.evals.summary import compare
from promptlogic.prompts import labels
from promptlogic.prompts import service as prompts
from promptlogic.rules.checks import Candidate, CheckResult
from promptlogic.rules.policy import Governing
from promptlogic.rules.schemas import MAX_PRIORITY
from promptlogic.runs.pipeline import RunServices
from promptlogic.tenancy.principal import Principal

MAX_CASE_RUNS = 200  # a rule's author waits for them
CONCURRENCY = 4


def _draft(candidate: Candidate) -> dict[str, Any]:
    """The rule as the one change to its scope's live rules (in place of its saved self)."""
    scope = (
        ["set", candidate.rule_set]
        if candidate.rule_set is not None
        else ["prompt", candidate.prompt]
    )
    entry = {
        "id": str(candidate.rule_id) if candidate.rule_id is not None else "draft-1",
        "text": candidate.text,
        "priority": MAX_PRIORITY,
        "revision": 0,
    }
    return {"scope": scope, "draft": [entry]}


async def _gate_one(
    services: RunServices, principal: Principal, candidate: Candidate, prompt_name: str, label: str
) -> CheckResult:
    def failed(reason: str, eval_id: uuid.UUID | None = None) -> CheckResult:
        suffix = f" (eval {eval_id})" if eval_id is not None else ""
        return CheckResult("eval", False, reason + suffix, prompt_name, None)

    async with services.sessions() as session:
        prompt = await prompts.get_prompt(session, tenant_id=principal.tenant_id, name=prompt_name)
        gate = await gates.find_gate(
            session, tenant_id=prompt.tenant_id, prompt_id=prompt.id, label=label
        )
        if gate is None:
            return failed(f"`{prompt_name}` has no gate on `{label}` to test the rule with")
        held = await labels.get_label(
            session, tenant_id=principal.tenant_id, name=prompt_name, label=label
        )
        dataset = await gates.dataset_of(session, gate)
        cases = await datasets.count_cases(
            session, tenant_id=principal.tenant_id, dataset_id=dataset.id, revision=dataset.revision
        )
        if cases == 0 or cases > MAX_CASE_RUNS:
            return failed(
                f"the gate's dataset `{dataset.name}` has {cases} cases; a rule is tested on 1 "
                f"to {MAX_CASE_RUNS}"
            )
        run = EvalRun(
            id=uuid.uuid4(),
            tenant_id=principal.tenant_id,
            prompt=prompt_name,
            version=held.version,
            label=label,
            dataset_id=dataset.id,
            dataset_name=dataset.name,
            dataset_revision=dataset.revision,
            evaluators=gate.evaluators,
            rules=_draft(candidate),
            repeat=1,
            concurrency=CONCURRENCY,
            status="queued",
            total=cases,
            completed=0,
            principal={
                "kind": principal.kind,
                "id": str(principal.key_id),
                "name": principal.key_name,
            },
        )
        session.add(run)
        baseline = await gates.latest_eval(session, gate, prompt, dataset, held.version)
        await commit(session)
    status = await run_eval(services, principal.tenant_id, run.id)
    async with services.sessions() as session:
        finished = await session.get(EvalRun, run.id)
        assert finished is not None
        if status != "succeeded":
            return failed(f"the eval with the rule ended {status}: {finished.error}", run.id)
        rate = float((finished.summary or {}).get("pass_rate") or 0.0)
        if rate < gate.min_pass_rate:
            return failed(
                f"with the rule, {prompt_name}@{label} passes {rate:.0%} of `{dataset.name}`, "
                f"under the {gate.min_pass_rate:.0%} its gate needs",
                run.id,
            )
        if gate.no_regressions:
            if baseline is None:
                return failed(
                    f"no finished eval of {prompt_name}@{label} (version {held.version}) on "
                    f"`{dataset.name}` to compare with: run the gate first",
                    run.id,
                )
            compared = compare(
                await outcomes_of(session, principal.tenant_id, baseline.id),
                await outcomes_of(session, principal.tenant_id, run.id),
            )
            if compared["regressed"]:
                return failed(
                    f"with the rule, {compared['regressed']} cases of `{dataset.name}` do worse",
                    run.id,
                )
    reason = f"{prompt_name}@{label} passes {rate:.0%} of `{dataset.name}` with the rule"
    return CheckResult("eval", True, f"{reason} (eval {run.id})", prompt_name, None)


async def eval_gates(
    services: RunServices,
    principal: Principal,
    candidate: Candidate,
    policies: list[Governing],
) -> list[CheckResult]:
    """The eval check of every governing policy that asks for one."""
    results = []
    for governed in policies:
        gate = governed.policy.eval_gate
        if gate is not None and governed.prompt is not None:
            results.append(
                await _gate_one(services, principal, candidate, governed.prompt, gate.label)
            )
    return results
