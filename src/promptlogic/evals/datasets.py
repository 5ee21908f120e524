"""Datasets of eval cases, versioned: no HTTP here; callers commit.

Every change to a dataset's cases takes the dataset's row lock, bumps its `revision` and adds
rows at the new revision; a changed or deleted case's open row is closed (`removed_revision`),
which is the only update a case row ever gets. The cases of a revision therefore never change,
and an eval run can name the revision it used. The audit keeps ids and counts, never case
contents: cases are often copied from production traffic.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit import service as audit
from promptlogic.audit.service import Actor
from promptlogic.errors import Conflict, InvalidInput, NotFound
from promptlogic.evals.dataset_schemas import json_problem
from promptlogic.evals.models import Dataset, DatasetCase
from promptlogic.pagination import decode_cursor, invalid_cursor, paginate
from promptlogic.runs import service as runs

MAX_CASES = 100_000  # per dataset, at any revision
AUDIT_MAX_IDS = 1_000  # case ids listed in one audit event


@dataclass(frozen=True, slots=True)
class CaseContent:
    """What a case holds; `expected` None means the case has no expected value."""

    inputs: dict[str, Any]
    expected: Any = None
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    source_run_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    dataset: Dataset
    case_count: int


# Case ids


_id_lock = threading.Lock()
_last_id = 0


def new_case_ids(count: int) -> list[uuid.UUID]:
    """`count` UUIDv7s, each above the last one this process made.

    A case's id orders it: Postgres compares UUIDs bytewise, so listing by `case_id` is the
    order cases were added (from the index on dataset_id, case_id), and an edited case, which
    keeps its id, keeps its place.
    """
    global _last_id
    with _id_lock:
        now = time.time_ns() // 1_000_000 << 74 | int.from_bytes(os.urandom(10)) >> 6
        first = max(now, _last_id + 1)
        _last_id = first + count - 1
    return [_uuid7(value) for value in range(first, first + count)]


def _uuid7(value: int) -> uuid.UUID:
    """48 bits of milliseconds and 74 of sequence, laid out as RFC 9562 version 7."""
    millis, sequence = value >> 74, value & ((1 << 74) - 1)
    rand_a, rand_b = sequence >> 62, sequence & ((1 << 62) - 1)
    return uuid.UUID(int=millis << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b)


# Datasets


def _no_dataset(name: str) -> NotFound:
    return NotFound(f"No dataset named `{name}`.")


async def get_dataset(session: AsyncSession, *, tenant_id: uuid.UUID, name: str) -> Dataset:
    """The tenant's dataset called `name`; 404 otherwise. A plain read: the session's own
    unflushed changes to it are kept (a refreshing read would silently undo them)."""
    dataset = await session.scalar(Dataset.for_tenant(tenant_id).where(Dataset.name == name))
    if dataset is None:
        raise _no_dataset(name)
    return dataset


async def lock_dataset(session: AsyncSession, *, tenant_id: uuid.UUID, name: str) -> Dataset:
    """The dataset, row-locked until commit: revisions are taken one at a time here."""
    dataset = await session.scalar(
        Dataset.for_tenant(tenant_id)
        .where(Dataset.name == name)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if dataset is None:
        raise _no_dataset(name)
    return dataset


def _case_count(tenant_id: uuid.UUID) -> Any:
    """The number of current cases of the dataset of the enclosing query."""
    return (
        DatasetCase.for_tenant(tenant_id, func.count())
        .where(DatasetCase.dataset_id == Dataset.id, DatasetCase.removed_revision.is_(None))
        .scalar_subquery()
    )


async def count_cases(
    session: AsyncSession, *, tenant_id: uuid.UUID, dataset_id: uuid.UUID, revision: int
) -> int:
    """How many cases the dataset held at `revision`."""
    count = await session.scalar(
        DatasetCase.for_tenant(tenant_id, func.count()).where(
            DatasetCase.dataset_id == dataset_id, DatasetCase.at_revision(revision)
        )
    )
    return count or 0


async def create_dataset(
    session: AsyncSession, *, tenant_id: uuid.UUID, name: str, description: str, actor: Actor
) -> Dataset:
    """A new, empty dataset at revision 0; 409 if the tenant has one of that name."""
    taken = await session.scalar(
        Dataset.for_tenant(tenant_id, Dataset.id).where(Dataset.name == name)
    )
    if taken is not None:
        raise Conflict(f"A dataset named `{name}` already exists.")
    dataset = Dataset(tenant_id=tenant_id, name=name, description=description, revision=0)
    try:
        async with session.begin_nested():  # a concurrent create of the same name loses here
            session.add(dataset)
    except IntegrityError:
        raise Conflict(f"A dataset named `{name}` already exists.") from None
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="dataset.create",
        target_type="dataset",
        target_id=name,
        after={"id": str(dataset.id), "name": name},
    )
    return dataset


async def describe(session: AsyncSession, dataset: Dataset) -> DatasetInfo:
    """The dataset with its number of current cases."""
    count = await count_cases(
        session, tenant_id=dataset.tenant_id, dataset_id=dataset.id, revision=dataset.revision
    )
    return DatasetInfo(dataset, count)


async def list_datasets(
    session: AsyncSession, *, tenant_id: uuid.UUID, limit: int, cursor: str | None = None
) -> tuple[list[DatasetInfo], str | None]:
    """A page of the tenant's datasets by name, each with its number of current cases."""
    statement = (
        Dataset.for_tenant(tenant_id, Dataset, _case_count(tenant_id).label("case_count"))
        .order_by(Dataset.name)
        .limit(limit + 1)
    )
    if cursor is not None:
        (after,) = decode_cursor(cursor, str)
        statement = statement.where(Dataset.name > after)
    rows = [DatasetInfo(dataset, count) for dataset, count in await session.execute(statement)]
    return paginate(rows, limit, lambda info: (info.dataset.name,))


async def update_dataset(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    description: str | None,
    actor: Actor,
) -> Dataset:
    """Change a dataset's description (not a change of its cases: no new revision)."""
    dataset = await lock_dataset(session, tenant_id=tenant_id, name=name)
    if description is None or description == dataset.description:
        return dataset
    before = {"description": dataset.description}
    dataset.description = description
    dataset.updated_at = datetime.now(UTC)
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="dataset.update",
        target_type="dataset",
        target_id=name,
        before=before,
        after={"description": description},
    )
    return dataset


async def delete_dataset(
    session: AsyncSession, *, tenant_id: uuid.UUID, name: str, actor: Actor
) -> None:
    """Delete a dataset and every revision of its cases (the foreign key cascades)."""
    dataset = await lock_dataset(session, tenant_id=tenant_id, name=name)
    info = await describe(session, dataset)
    await session.execute(
        delete(Dataset).where(Dataset.tenant_id == tenant_id, Dataset.id == dataset.id)
    )
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="dataset.delete",
        target_type="dataset",
        target_id=name,
        before={"id": str(dataset.id), "revision": dataset.revision, "cases": info.case_count},
    )


# Reading cases


def checked_revision(dataset: Dataset, revision: int | None) -> int:
    """`revision`, or the current one when None; 422 naming `query.revision` beyond it."""
    if revision is None:
        return dataset.revision
    if revision > dataset.revision:
        raise InvalidInput.field(
            "query.revision",
            f"dataset `{dataset.name}` is at revision {dataset.revision}; {revision} does not "
            "exist yet",
        )
    return revision


async def cases_after(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    dataset_id: uuid.UUID,
    revision: int,
    after: uuid.UUID | None = None,
    limit: int | None = None,
) -> list[DatasetCase]:
    """The cases of `revision` in added order, those after case `after`, at most `limit`."""
    statement = (
        DatasetCase.for_tenant(tenant_id)
        .where(DatasetCase.dataset_id == dataset_id, DatasetCase.at_revision(revision))
        .order_by(DatasetCase.case_id)
    )
    if after is not None:
        statement = statement.where(DatasetCase.case_id > after)
    if limit is not None:
        statement = statement.limit(limit)
    return list((await session.scalars(statement)).all())


async def cases_at(
    session: AsyncSession, *, tenant_id: uuid.UUID, dataset_id: uuid.UUID, revision: int
) -> list[DatasetCase]:
    """Every case of the dataset at `revision`, in added order: what an eval run evaluates."""
    return await cases_after(session, tenant_id=tenant_id, dataset_id=dataset_id, revision=revision)


async def list_cases(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    dataset: Dataset,
    revision: int | None,
    limit: int,
    cursor: str | None = None,
) -> tuple[int, list[DatasetCase], str | None]:
    """The revision listed and a page of its cases. The cursor holds the revision, so a list
    read while the dataset changes stays on the revision its first page showed."""
    after = None
    if cursor is not None:
        cursor_revision, case_id = decode_cursor(cursor, int, str)
        if revision is not None and revision != cursor_revision:
            raise invalid_cursor()
        try:
            after = uuid.UUID(case_id)
        except ValueError:
            raise invalid_cursor() from None
        revision = cursor_revision
    revision = checked_revision(dataset, revision)
    cases = await cases_after(
        session,
        tenant_id=tenant_id,
        dataset_id=dataset.id,
        revision=revision,
        after=after,
        limit=limit + 1,
    )
    page, next_cursor = paginate(cases, limit, lambda case: (revision, str(case.case_id)))
    return revision, page, next_cursor


async def input_names(
    session: AsyncSession, *, tenant_id: uuid.UUID, dataset_id: uuid.UUID, revision: int
) -> list[str]:
    """Every input name of the cases of `revision`, sorted: the columns of a CSV export."""
    names = func.jsonb_object_keys(DatasetCase.inputs)
    rows = await session.scalars(
        DatasetCase.for_tenant(tenant_id, names)
        .where(DatasetCase.dataset_id == dataset_id, DatasetCase.at_revision(revision))
        .distinct()
    )
    return sorted(rows)


def _no_case(dataset: Dataset, case_id: uuid.UUID, revision: int) -> NotFound:
    return NotFound(f"Dataset `{dataset.name}` has no case `{case_id}` at revision {revision}.")


async def get_case(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    dataset: Dataset,
    case_id: uuid.UUID,
    revision: int | None = None,
) -> DatasetCase:
    """A case as it was at `revision` (the current one by default); 404 if it was not there."""
    revision = checked_revision(dataset, revision)
    case = await session.scalar(
        DatasetCase.for_tenant(tenant_id).where(
            DatasetCase.dataset_id == dataset.id,
            DatasetCase.case_id == case_id,
            DatasetCase.at_revision(revision),
        )
    )
    if case is None:
        raise _no_case(dataset, case_id, revision)
    return case


# Changing cases


def _next_revision(dataset: Dataset) -> int:
    dataset.revision += 1
    dataset.updated_at = datetime.now(UTC)
    return dataset.revision


def _check_expected_revision(dataset: Dataset, expected_revision: int | None) -> None:
    if expected_revision is not None and dataset.revision != expected_revision:
        raise Conflict(
            f"Dataset `{dataset.name}` is at revision {dataset.revision}, but you expected "
            f"revision {expected_revision}. Reload it and retry."
        )


async def _check_room(session: AsyncSession, dataset: Dataset, adding: int) -> None:
    current = await count_cases(
        session, tenant_id=dataset.tenant_id, dataset_id=dataset.id, revision=dataset.revision
    )
    if current + adding > MAX_CASES:
        raise InvalidInput.field(
            "body",
            f"dataset `{dataset.name}` holds {current} cases; {adding} more would pass the "
            f"limit of {MAX_CASES} per dataset",
        )


async def _insert(
    session: AsyncSession,
    dataset: Dataset,
    contents: Sequence[CaseContent],
    case_ids: Sequence[uuid.UUID],
    actor: Actor,
) -> list[DatasetCase]:
    """Rows for `contents` at the dataset's (new) revision, returned in the order given."""
    rows = [
        {
            "tenant_id": dataset.tenant_id,
            "dataset_id": dataset.id,
            "case_id": case_id,
            "inputs": content.inputs,
            "expected": content.expected,
            "tags": list(content.tags),
            "notes": content.notes,
            "source_run_id": content.source_run_id,
            "added_revision": dataset.revision,
            "author": actor.name,
        }
        for content, case_id in zip(contents, case_ids, strict=True)
    ]
    statement = insert(DatasetCase).returning(DatasetCase, sort_by_parameter_order=True)
    return list((await session.scalars(statement, rows)).all())


async def _close(
    session: AsyncSession, dataset: Dataset, case_id: uuid.UUID, revision: int
) -> None:
    """End the case's open row at `revision`: the one update a case row may get."""
    await session.execute(
        update(DatasetCase)
        .where(
            DatasetCase.tenant_id == dataset.tenant_id,
            DatasetCase.dataset_id == dataset.id,
            DatasetCase.case_id == case_id,
            DatasetCase.removed_revision.is_(None),
        )
        .values(removed_revision=revision)
        .execution_options(synchronize_session=False)
    )


def _ids(case_ids: Sequence[uuid.UUID]) -> dict[str, Any]:
    listed = [str(case_id) for case_id in case_ids[:AUDIT_MAX_IDS]]
    return {"case_ids": listed, "case_ids_truncated": len(case_ids) > AUDIT_MAX_IDS}


async def _audit_cases(
    session: AsyncSession,
    dataset: Dataset,
    actor: Actor,
    action: str,
    **counts: Any,
) -> None:
    await audit.record(
        session,
        tenant_id=dataset.tenant_id,
        actor=actor,
        action=action,
        target_type="dataset",
        target_id=dataset.name,
        after={"id": str(dataset.id), "revision": dataset.revision, **counts},
    )


async def add_cases(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    cases: Sequence[CaseContent],
    actor: Actor,
) -> tuple[Dataset, list[DatasetCase]]:
    """Add `cases` (at least one) in one new revision; the dataset and the new rows."""
    dataset = await lock_dataset(session, tenant_id=tenant_id, name=name)
    await _check_room(session, dataset, len(cases))
    _next_revision(dataset)
    case_ids = new_case_ids(len(cases))
    added = await _insert(session, dataset, cases, case_ids, actor)
    sources = sorted({str(c.source_run_id) for c in cases if c.source_run_id is not None})
    extra = {"source_run_ids": sources} if sources else {}
    await _audit_cases(
        session, dataset, actor, "dataset.cases", added=len(added), **_ids(case_ids), **extra
    )
    return dataset, added


async def import_cases(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    cases: Sequence[CaseContent],
    rejected: int,
    file_format: str,
    actor: Actor,
) -> tuple[Dataset, int]:
    """Add an import's good cases in one new revision; none leaves the revision as it is."""
    dataset = await lock_dataset(session, tenant_id=tenant_id, name=name)
    if not cases:
        return dataset, 0
    await _check_room(session, dataset, len(cases))
    _next_revision(dataset)
    case_ids = new_case_ids(len(cases))
    added = await _insert(session, dataset, cases, case_ids, actor)
    await _audit_cases(
        session,
        dataset,
        actor,
        "dataset.import",
        format=file_format,
        written=len(added),
        rejected=rejected,
        **_ids(case_ids),
    )
    return dataset, len(added)


async def update_case(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    case_id: uuid.UUID,
    changes: dict[str, Any],
    actor: Actor,
    expected_revision: int | None = None,
) -> tuple[Dataset, DatasetCase]:
    """Change some of a case's fields in a new revision; changing nothing makes none.
    With `expected_revision`, only while the dataset is at it (409 otherwise)."""
    dataset = await lock_dataset(session, tenant_id=tenant_id, name=name)
    current = await get_case(session, tenant_id=tenant_id, dataset=dataset, case_id=case_id)
    _check_expected_revision(dataset, expected_revision)
    content = CaseContent(
        inputs=changes.get("inputs", current.inputs),
        expected=changes.get("expected", current.expected),
        tags=changes.get("tags", current.tags),
        notes=changes.get("notes", current.notes),
        source_run_id=current.source_run_id,
    )
    if content == _content_of(current):
        return dataset, current
    revision = _next_revision(dataset)
    await _close(session, dataset, case_id, revision)
    (case,) = await _insert(session, dataset, [content], [case_id], actor)
    await _audit_cases(
        session,
        dataset,
        actor,
        "dataset.cases",
        updated=1,
        fields=sorted(changes),
        **_ids([case_id]),
    )
    return dataset, case


def _content_of(case: DatasetCase) -> CaseContent:
    return CaseContent(
        inputs=case.inputs,
        expected=case.expected,
        tags=list(case.tags),
        notes=case.notes,
        source_run_id=case.source_run_id,
    )


async def delete_case(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    case_id: uuid.UUID,
    actor: Actor,
    expected_revision: int | None = None,
) -> Dataset:
    """Remove a case from the dataset in a new revision; earlier revisions still hold it."""
    dataset = await lock_dataset(session, tenant_id=tenant_id, name=name)
    await get_case(session, tenant_id=tenant_id, dataset=dataset, case_id=case_id)
    _check_expected_revision(dataset, expected_revision)
    revision = _next_revision(dataset)
    await _close(session, dataset, case_id, revision)
    await _audit_cases(session, dataset, actor, "dataset.cases", removed=1, **_ids([case_id]))
    return dataset


async def case_from_run(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    run_id: uuid.UUID,
    keep_output: bool,
    tags: list[str],
    notes: str,
    actor: Actor,
) -> tuple[Dataset, DatasetCase]:
    """A case with a recorded run's inputs and, with `keep_output`, its output as expected:
    the parsed output when the run has one, else the output text."""
    await get_dataset(session, tenant_id=tenant_id, name=name)  # 404 before the run's 404
    run = await runs.get_run(session, tenant_id=tenant_id, run_id=run_id)
    problem = json_problem(run.inputs)
    if problem is not None:
        raise InvalidInput.field("body.run_id", f"the run's inputs {problem}")
    expected = None
    if keep_output:
        expected = run.parsed if run.parsed is not None else run.output
        if expected is None:
            raise InvalidInput.field(
                "body.expected",
                f"run `{run_id}` has no output (its status is {run.status}); "
                'add it with "expected": "none"',
            )
        problem = json_problem(expected)
        if problem is not None:
            raise InvalidInput.field("body.expected", f"the run's output {problem}")
    content = CaseContent(
        inputs=run.inputs, expected=expected, tags=tags, notes=notes, source_run_id=run.id
    )
    dataset, (case,) = await add_cases(
        session, tenant_id=tenant_id, name=name, cases=[content], actor=actor
    )
    return dataset, case
