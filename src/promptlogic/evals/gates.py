"""Promotion gates: a label of a prompt that may move only to a version that passed an eval.

A gate names a dataset, evaluators, a minimum pass rate and whether regressions are allowed.
Moving the label to a version (every version of a split) needs a finished eval of that version
on the dataset's current revision with exactly those evaluators and the live rules, whose pass
rate reaches the minimum; with `no_regressions`, also one of the version the label holds now,
and no case worse in the new one. What fails is listed in the 409; `…/gates/{label}:run`
queues the evals the move lacks.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit import service as audit
from promptlogic.audit.service import Actor
from promptlogic.errors import Conflict, NotFound
from promptlogic.evals.eval_schemas import GateIn
from promptlogic.evals.models import Dataset, EvalRun, PromptGate
from promptlogic.evals.outcomes import outcomes_of
from promptlogic.evals.summary import Outcome, compare
from promptlogic.prompts.models import Prompt


class GateRefused(Conflict):
    """409: the label's gate does not let it move there; `errors` lists each failed check."""

    slug = "gate-refused"


@dataclass(frozen=True, slots=True)
class GateFailure:
    check: str  # "eval", "pass_rate" or "regressions"
    version: int
    message: str

    def as_error(self) -> dict[str, str]:
        return {"field": f"gate.{self.check}", "message": f"version {self.version}: {self.message}"}


async def find_gate(
    session: AsyncSession, *, tenant_id: uuid.UUID, prompt_id: uuid.UUID, label: str
) -> PromptGate | None:
    return await session.scalar(
        PromptGate.for_tenant(tenant_id).where(
            PromptGate.prompt_id == prompt_id, PromptGate.label == label
        )
    )


async def get_gate(session: AsyncSession, *, prompt: Prompt, label: str) -> PromptGate:
    gate = await find_gate(session, tenant_id=prompt.tenant_id, prompt_id=prompt.id, label=label)
    if gate is None:
        raise NotFound(f"Label `{label}` of `{prompt.name}` has no gate.")
    return gate


async def dataset_of(session: AsyncSession, gate: PromptGate) -> Dataset:
    """The gate's dataset (it exists: a gate goes with its dataset, ON DELETE CASCADE)."""
    dataset = await session.scalar(
        Dataset.for_tenant(gate.tenant_id).where(Dataset.id == gate.dataset_id)
    )
    assert dataset is not None
    return dataset


async def latest_eval(
    session: AsyncSession, gate: PromptGate, prompt: Prompt, dataset: Dataset, version: int
) -> EvalRun | None:
    """The newest finished eval of `version` that a move under `gate` counts."""
    return await session.scalar(
        EvalRun.for_tenant(gate.tenant_id)
        .where(
            EvalRun.prompt == prompt.name,
            EvalRun.version == version,
            EvalRun.dataset_id == dataset.id,
            EvalRun.dataset_revision == dataset.revision,
            EvalRun.evaluators == gate.evaluators,
            EvalRun.rules.is_(None),
            EvalRun.status == "succeeded",
        )
        .order_by(EvalRun.finished_at.desc())
        .limit(1)
    )


async def _outcomes(session: AsyncSession, run: EvalRun) -> list[Outcome]:
    return await outcomes_of(session, run.tenant_id, run.id)


async def failures(
    session: AsyncSession,
    gate: PromptGate,
    prompt: Prompt,
    versions: list[int],
    current: int | None,
) -> list[GateFailure]:
    """Why the label may not move to `versions` (from `current`); empty when it may."""
    dataset = await dataset_of(session, gate)
    where = f"`{dataset.name}` revision {dataset.revision}"
    found: list[GateFailure] = []
    baseline = None
    if gate.no_regressions and current is not None and current not in versions:
        baseline = await latest_eval(session, gate, prompt, dataset, current)
        if baseline is None:
            found.append(
                GateFailure("eval", current, f"no finished eval on {where} to compare against")
            )
    for version in versions:
        run = await latest_eval(session, gate, prompt, dataset, version)
        if run is None:
            found.append(GateFailure("eval", version, f"no finished eval on {where}"))
            continue
        rate = float((run.summary or {}).get("pass_rate") or 0.0)
        if rate < gate.min_pass_rate:
            found.append(
                GateFailure(
                    "pass_rate",
                    version,
                    f"pass rate {rate:.2%} is under {gate.min_pass_rate:.2%} (eval {run.id})",
                )
            )
        if baseline is not None:
            compared = compare(await _outcomes(session, baseline), await _outcomes(session, run))
            if compared["regressed"]:
                cases = ", ".join(
                    c["case_id"] for c in compared["cases"] if c["change"] == "regressed"
                )
                found.append(
                    GateFailure(
                        "regressions",
                        version,
                        f"{compared['regressed']} cases regressed against version {current} "
                        f"(eval {baseline.id} → {run.id}): {cases[:500]}",
                    )
                )
    return found


async def check_move(
    session: AsyncSession, prompt: Prompt, label: str, versions: list[int], current: int | None
) -> None:
    """Called by every label move: 409 listing what fails when a gate holds the label."""
    gate = await find_gate(session, tenant_id=prompt.tenant_id, prompt_id=prompt.id, label=label)
    if gate is None:
        return
    found = await failures(session, gate, prompt, versions, current)
    if found:
        raise GateRefused(
            f"Label `{label}` of `{prompt.name}` is gated: "
            + "; ".join(failure.as_error()["message"] for failure in found)
            + f". Run the gate's evals with POST /v1/prompts/{prompt.name}/gates/{label}:run.",
            errors=[failure.as_error() for failure in found],
        )


async def put_gate(
    session: AsyncSession,
    *,
    prompt: Prompt,
    label: str,
    dataset: Dataset,
    body: GateIn,
    actor: Actor,
) -> PromptGate:
    """Create or replace the gate of `label` (on `dataset`, which `body` names); audited."""
    gate = await find_gate(session, tenant_id=prompt.tenant_id, prompt_id=prompt.id, label=label)
    before = None if gate is None else gate_json(gate, dataset_name=None)
    if gate is None:
        gate = PromptGate(tenant_id=prompt.tenant_id, prompt_id=prompt.id, label=label)
        session.add(gate)
    gate.dataset_id = dataset.id
    gate.evaluators = [spec.model_dump(mode="json") for spec in body.evaluators]
    gate.min_pass_rate = body.min_pass_rate
    gate.no_regressions = body.no_regressions
    gate.updated_by = actor.name
    gate.updated_at = datetime.now(UTC)
    await session.flush()
    await audit.record(
        session,
        tenant_id=prompt.tenant_id,
        actor=actor,
        action="prompt.gate",
        target_type="prompt",
        target_id=f"{prompt.name}@{label}",
        before=before,
        after=gate_json(gate, dataset_name=dataset.name),
    )
    return gate


async def delete_gate(session: AsyncSession, *, prompt: Prompt, label: str, actor: Actor) -> None:
    gate = await get_gate(session, prompt=prompt, label=label)
    await session.delete(gate)
    await audit.record(
        session,
        tenant_id=prompt.tenant_id,
        actor=actor,
        action="prompt.gate.delete",
        target_type="prompt",
        target_id=f"{prompt.name}@{label}",
    )


def gate_json(gate: PromptGate, *, dataset_name: str | None) -> dict[str, Any]:
    return {
        "label": gate.label,
        "dataset": dataset_name,
        "dataset_id": str(gate.dataset_id),
        "evaluators": gate.evaluators,
        "min_pass_rate": gate.min_pass_rate,
        "no_regressions": gate.no_regressions,
        "updated_by": gate.updated_by,
    }
