"""Routes of promotion gates: set (admin, as protected labels are), read, delete, and run the
evals a label move lacks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field

from promptlogic.db.engine import SessionDep
from promptlogic.errors import NotFound
from promptlogic.evals import datasets, gates, service
from promptlogic.evals.eval_schemas import EvalCreate, GateIn
from promptlogic.prompts import service as prompts
from promptlogic.prompts.labels import get_label
from promptlogic.prompts.schemas import NAME_PATTERN
from promptlogic.tenancy.auth import AdminPrincipal, ReadPrincipal, RunReadPrincipal

router = APIRouter(prefix="/v1/prompts", tags=["evals"])

PromptName = Annotated[str, Path(pattern=NAME_PATTERN)]
LabelName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=50)]


class GateRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Annotated[int, Field(strict=True, ge=1)]


@router.put("/{name}/gates/{label}")
async def put_gate(
    name: PromptName, label: LabelName, body: GateIn, principal: AdminPrincipal, session: SessionDep
) -> dict[str, Any]:
    """Gate the label: it moves only to versions with a passing eval (see docs/evals.md)."""
    prompt = await prompts.lock_prompt(session, tenant_id=principal.tenant_id, name=name)
    dataset = await datasets.get_dataset(session, tenant_id=principal.tenant_id, name=body.dataset)
    gate = await gates.put_gate(
        session,
        prompt=prompt,
        label=label,
        dataset=dataset,
        body=body,
        actor=principal.actor,
    )
    return gates.gate_json(gate, dataset_name=dataset.name)


@router.get("/{name}/gates/{label}")
async def get_gate(
    name: PromptName, label: LabelName, principal: ReadPrincipal, session: SessionDep
) -> dict[str, Any]:
    prompt = await prompts.get_prompt(session, tenant_id=principal.tenant_id, name=name)
    gate = await gates.get_gate(session, prompt=prompt, label=label)
    dataset = await gates.dataset_of(session, gate)
    return gates.gate_json(gate, dataset_name=dataset.name)


@router.delete("/{name}/gates/{label}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_gate(
    name: PromptName, label: LabelName, principal: AdminPrincipal, session: SessionDep
) -> None:
    prompt = await prompts.lock_prompt(session, tenant_id=principal.tenant_id, name=name)
    await gates.delete_gate(session, prompt=prompt, label=label, actor=principal.actor)


@router.post("/{name}/gates/{label}:run", status_code=status.HTTP_202_ACCEPTED)
async def run_gate(
    name: PromptName,
    label: LabelName,
    body: GateRun,
    principal: RunReadPrincipal,
    session: SessionDep,
) -> dict[str, Any]:
    """Queue the evals moving the label to `version` lacks: of that version, and (with
    `no_regressions`) of the version the label holds now. Those already passing are reused."""
    prompt = await prompts.get_prompt(session, tenant_id=principal.tenant_id, name=name)
    gate = await gates.get_gate(session, prompt=prompt, label=label)
    dataset = await gates.dataset_of(session, gate)
    wanted = [body.version]
    if gate.no_regressions:
        try:
            held = await get_label(session, tenant_id=principal.tenant_id, name=name, label=label)
        except NotFound:  # a label not set yet has nothing to compare with
            held = None
        if held is not None and held.version != body.version:
            wanted.insert(0, held.version)
    queued, reused = [], []
    for version in wanted:
        found = await gates.latest_eval(session, gate, prompt, dataset, version)
        if found is not None:
            reused.append({"version": version, "eval": str(found.id)})
            continue
        request = EvalCreate(
            prompt=name,
            version=version,
            dataset=dataset.name,
            evaluators=gate.evaluators,  # type: ignore[arg-type]
        )
        run = await service.create_eval(session, principal, request)
        queued.append({"version": version, "eval": str(run.id)})
    return {"queued": queued, "reused": reused}
