"""Prompts as files: one readable YAML document per prompt, pulled from and pushed to a tenant.

A file holds a prompt's settings (`name`, `kind`, `description`, `protected_labels`) and the
content of one version, with templates written as literal block strings. A file is the whole
truth about its prompt: pushing it creates the prompt if missing, brings its settings in line
and saves a version only when the content differs from the latest one (the service compares
content hashes). Pulling writes exactly what pushing reads, so `pull` then `push` changes
nothing and two pulls write the same bytes.

A push runs in the caller's transaction and leaves committing to it: a dry run is a push that
is rolled back, so it reports the same plan and the same problems as the real one.
"""

from __future__ import annotations

import difflib
import json
import os
import uuid
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic import rendering
from promptlogic.audit.service import Actor
from promptlogic.errors import InvalidInput, NotFound, Problem
from promptlogic.prompts import service
from promptlogic.prompts.diff import diff_versions
from promptlogic.prompts.models import Prompt, PromptVersion
from promptlogic.prompts.resolution import LATEST, parse_include, version_at
from promptlogic.prompts.schemas import (
    Description,
    DiffOut,
    Kind,
    LabelName,
    ModelSettings,
    PromptCreate,
    PromptName,
    PromptUpdate,
    VersionContent,
    VersionCreate,
)
from promptlogic.rendering import Renderer

SUFFIX = ".yaml"
DEFAULT_PROTECTED = ["production"]
# Keys in the order a file is written; `commit_message` may be added by hand, never pulled.
KEYS = (
    "name",
    "kind",
    "description",
    "protected_labels",
    "model",
    "input_schema",
    "response_format",
    "tools",
    "context",
    "messages",
    "template",
    "commit_message",
)
# Keys first in nested mappings (JSON Schemas, tools), the rest alphabetical.
FIRST_KEYS = ("type", "name", "title", "description")
# PyYAML reads these back as plain line breaks from any but a double-quoted string.
UNSAFE_BREAKS = ("\x85", "\u2028", "\u2029")


class PromptFile(VersionCreate):
    """One file: a prompt's settings and the content of the version it declares."""

    name: PromptName
    kind: Kind = "chat"
    description: Description = ""
    protected_labels: Annotated[list[LabelName], Field(max_length=20)] = DEFAULT_PROTECTED

    def prompt_create(self) -> PromptCreate:
        return PromptCreate(
            name=self.name,
            kind=self.kind,
            description=self.description,
            protected_labels=self.protected_labels,
        )

    def version_create(self, default_message: str) -> VersionCreate:
        body = {name: getattr(self, name) for name in VersionCreate.model_fields}
        if "commit_message" not in self.model_fields_set:
            body["commit_message"] = default_message
        return VersionCreate.model_validate(body)


@dataclass(frozen=True, slots=True)
class Document:
    path: Path
    file: PromptFile


# Writing


class _Dumper(yaml.SafeDumper):
    """Safe YAML with indented lists and templates as literal blocks wherever YAML allows."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)

    def analyze_scalar(self, scalar: str) -> Any:
        analysis = super().analyze_scalar(scalar)
        if any(ch in scalar for ch in UNSAFE_BREAKS):
            # Escaped in double quotes, or a reload would turn them into `\n`.
            analysis.allow_flow_plain = analysis.allow_block_plain = False
            analysis.allow_single_quoted = analysis.allow_block = False
        elif "\n" in scalar and "\t" in scalar and not analysis.allow_block:
            # PyYAML refuses tabs in block scalars, where YAML allows them as content.
            analysis.allow_block = super().analyze_scalar(scalar.replace("\t", " ")).allow_block
        return analysis


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Multi-line strings as `|` blocks; YAML falls back to quotes where a block cannot hold
    # the string exactly (a line ending in spaces, a carriage return).
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _ordered(value: Any) -> Any:
    """`value` with every mapping's keys in a stable, readable order."""
    if isinstance(value, dict):
        rank = {key: i for i, key in enumerate(FIRST_KEYS)}
        keys = sorted(value, key=lambda k: (rank.get(k, len(rank)), k))
        return {key: _ordered(value[key]) for key in keys}
    if isinstance(value, list):
        return [_ordered(item) for item in value]
    return value


def _model_settings(model: dict[str, Any]) -> dict[str, Any]:
    """The model settings without declared fields at their defaults (reading restores them)."""
    declared = ModelSettings.model_fields
    shown = {
        key: model[key]
        for key in declared
        if key in model and model[key] != declared[key].get_default(call_default_factory=True)
    }
    extras = {key: value for key, value in model.items() if key not in declared}
    return {**shown, **_ordered(extras)}


def to_document(prompt: Prompt, version: PromptVersion) -> dict[str, Any]:
    """What a file holds for `version` of `prompt`: keys in file order, defaults left out."""
    document: dict[str, Any] = {"name": prompt.name, "kind": prompt.kind}
    if prompt.description:
        document["description"] = prompt.description
    document["protected_labels"] = sorted(prompt.protected_labels)
    if version.model:  # a context template has none
        document["model"] = _model_settings(version.model)
    for name in ("input_schema", "response_format", "tools", "context"):
        value = getattr(version, name)
        if value != VersionContent.model_fields[name].get_default(call_default_factory=True):
            document[name] = _ordered(value)
    if version.messages is not None:
        document["messages"] = [
            {"role": message["role"], "content": message["content"]} for message in version.messages
        ]
    if version.template is not None:
        document["template"] = version.template
    return document


def dump(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=2**31 - 1)


# Reading


MAX_FILE_BYTES = 1024 * 1024


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses aliases (a few hundred bytes of them expand to gigabytes), a key
    given twice and keys that are not strings."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (`*name`) are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)  # type: ignore[no-any-return]


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[str, Any]:
    loader.flatten_mapping(node)
    mapping: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
            raise yaml.constructor.ConstructorError(
                None, None, f"key `{shown}` must be a string: quote it", key_node.start_mark
            )
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"key `{key}` is given twice", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        what = exc.problem or exc.context or "invalid"
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return f"invalid YAML: {what}{where}"
    return f"invalid YAML: {exc}"


def _field_problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            allowed = ", ".join(KEYS) if len(error["loc"]) == 1 else ""
            hint = f" (a file may hold: {allowed})" if allowed else ""
            problems.append(f"unknown key `{location}`{hint}")
        else:
            problems.append(f"{location}: {error['msg']}")
    return problems


def read_file(path: Path) -> tuple[PromptFile | None, list[str]]:
    """The file at `path` and its problems, each starting with the path."""
    if path.is_symlink():
        return None, [f"{path}: a symbolic link; push reads regular files only"]
    if path.stat().st_size > MAX_FILE_BYTES:
        return None, [f"{path}: larger than {MAX_FILE_BYTES} bytes"]
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506
    except UnicodeDecodeError:
        return None, [f"{path}: not UTF-8 text"]
    except yaml.YAMLError as exc:
        return None, [f"{path}: {_yaml_problem(exc)}"]
    if not isinstance(data, dict):
        return None, [f"{path}: expected a mapping of keys (name, kind, messages, ...)"]
    try:
        parsed = PromptFile.model_validate(data)
    except ValidationError as exc:
        return None, [f"{path}: {problem}" for problem in _field_problems(exc)]
    if parsed.name != path.stem:
        return None, [f"{path}: name: `{parsed.name}` differs from the file name `{path.name}`"]
    return parsed, []


def read_directory(directory: Path) -> tuple[list[Document], list[str]]:
    """Every `*.yaml` file of `directory` in push order, and every problem found in them."""
    documents: list[Document] = []
    problems: list[str] = []
    for path in sorted(directory.glob("*" + SUFFIX)):
        if not (path.is_file() or path.is_symlink()):
            continue
        parsed, found = read_file(path)
        problems += found
        if parsed is not None:
            documents.append(Document(path, parsed))
    return push_order(documents), problems


def _included(file: PromptFile) -> set[str]:
    sources = [file.template] if file.template is not None else []
    sources += [message.content for message in file.messages or []]
    names: set[str] = set()
    for source in sources:
        try:
            refs = rendering.analyze(source).includes
        except rendering.TemplateProblem:
            continue  # the push reports it
        names |= {parsed.name for ref in refs if (parsed := parse_include(ref)) is not None}
    return names


def push_order(documents: list[Document]) -> list[Document]:
    """Context templates first, each after those it includes; then chat prompts by name."""
    contexts = {d.file.name: d for d in documents if d.file.kind == "context"}
    graph = {name: sorted(_included(d.file) & contexts.keys()) for name, d in contexts.items()}
    sorter = TopologicalSorter({name: graph[name] for name in sorted(graph)})
    order: list[str] = []
    try:
        sorter.prepare()
        while sorter.is_active():
            ready = sorted(sorter.get_ready())
            order += ready
            sorter.done(*ready)
    except ValueError:  # a cycle (graphlib.CycleError): the push reports it, any order will do
        order = sorted(contexts)
    chats = sorted((d for d in documents if d.file.kind != "context"), key=lambda d: d.file.name)
    return [contexts[name] for name in order] + chats


# Pulling


@dataclass(frozen=True, slots=True)
class Pulled:
    name: str
    version: int
    text: str


async def pull(
    session: AsyncSession, *, tenant_id: uuid.UUID, label: str | None
) -> tuple[list[Pulled], list[dict[str, str]]]:
    """The file of each active prompt (at `label`, else the latest), and the prompts skipped."""
    pulled: list[Pulled] = []
    skipped: list[dict[str, str]] = []
    cursor: str | None = None
    while True:
        prompts, cursor = await service.list_prompts(
            session, tenant_id=tenant_id, limit=200, cursor=cursor
        )
        for prompt in prompts:
            version = await version_at(session, prompt, label=label)
            if version is None:
                reason = "no versions" if label in (None, LATEST) else f"no label `{label}`"
                skipped.append({"name": prompt.name, "reason": reason})
                continue
            text = dump(to_document(prompt, version))
            pulled.append(Pulled(prompt.name, version.number, text))
        if cursor is None:
            return pulled, skipped


def write_files(directory: Path, pulled: list[Pulled]) -> list[dict[str, Any]]:
    """Write each pulled prompt to `directory/<name>.yaml` unless it already holds those bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for item in pulled:
        path = directory / (item.name + SUFFIX)
        changed = path.is_symlink() or not path.is_file() or path.read_bytes() != item.text.encode()
        if changed:
            _replace(path, item.text)
        written.append(
            {"name": item.name, "file": str(path), "version": item.version, "written": changed}
        )
    return written


def _replace(path: Path, text: str) -> None:
    """Write `path` through a new file renamed over it: a symbolic link there is replaced, never
    followed, and a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8", newline="\n")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


# Pushing


Action = Literal["created", "new_version", "unchanged"]


@dataclass(frozen=True, slots=True)
class LabelChange:
    name: str
    from_version: int | None
    to_version: int

    @property
    def moved(self) -> bool:
        return self.from_version != self.to_version


@dataclass(slots=True)
class Change:
    """What a push did (or would do) to one prompt."""

    name: str
    file: str
    kind: str
    action: Action
    version: int
    previous_version: int | None = None
    updated: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    diff: DiffOut | None = None
    label: LabelChange | None = None

    def as_json(self) -> dict[str, Any]:
        label = self.label
        return {
            "name": self.name,
            "file": self.file,
            "kind": self.kind,
            "action": self.action,
            "version": self.version,
            "previous_version": self.previous_version,
            "updated": {key: {"from": a, "to": b} for key, (a, b) in self.updated.items()},
            "diff": self.diff.model_dump(mode="json", by_alias=True) if self.diff else None,
            "label": None
            if label is None
            else {
                "name": label.name,
                "from": label.from_version,
                "to": label.to_version,
                "moved": label.moved,
            },
        }


@dataclass(slots=True)
class PushResult:
    changes: list[Change] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def push(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    documents: list[Document],
    label: str | None,
    message: str,
    actor: Actor,
    renderer: Renderer,
) -> PushResult:
    """Apply `documents` in order in the session's transaction; the caller commits or not.

    Every document is tried, so one push reports every problem; when there is any, the caller
    must roll back, since the documents that did apply may rely on each other.
    """
    result = PushResult()
    for document in documents:
        try:
            change = await _push_one(
                session,
                tenant_id=tenant_id,
                document=document,
                message=message,
                actor=actor,
                renderer=renderer,
            )
            if label is not None:
                change.label = await _move_label(
                    session, tenant_id=tenant_id, change=change, label=label, actor=actor
                )
        except Problem as problem:
            result.problems += _problems_of(document.path, problem)
            continue
        result.changes.append(change)
    return result


def _problems_of(path: Path, problem: Problem) -> list[str]:
    if not problem.errors:
        return [f"{path}: {problem.detail}"]
    problems = []
    for error in problem.errors:
        where = str(error.get("field", "")).removeprefix("body.")
        problems.append(f"{path}: {where}: {error.get('message', problem.detail)}")
    return problems


async def _existing(session: AsyncSession, *, tenant_id: uuid.UUID, name: str) -> Prompt | None:
    try:
        return await service.get_prompt(session, tenant_id=tenant_id, name=name)
    except NotFound:
        return None


async def _push_one(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    document: Document,
    message: str,
    actor: Actor,
    renderer: Renderer,
) -> Change:
    file = document.file
    prompt = await _existing(session, tenant_id=tenant_id, name=file.name)
    updated: dict[str, tuple[Any, Any]] = {}
    if prompt is None:
        await service.create_prompt(
            session, tenant_id=tenant_id, body=file.prompt_create(), actor=actor, renderer=renderer
        )
        previous = None
    else:
        if prompt.kind != file.kind:
            raise InvalidInput.field(
                "kind", f"`{file.name}` is a {prompt.kind} prompt; a prompt's kind cannot change"
            )
        updated = await _update_settings(session, prompt=prompt, file=file, actor=actor)
        previous = prompt.latest_version or None
    saved = await service.create_version(
        session,
        tenant_id=tenant_id,
        name=file.name,
        body=file.version_create(message),
        actor=actor,
        renderer=renderer,
    )
    action: Action = "unchanged"
    if saved.created:
        action = "created" if prompt is None else "new_version"
    change = Change(
        name=file.name,
        file=str(document.path),
        kind=file.kind,
        action=action,
        version=saved.version.number,
        previous_version=previous,
        updated=updated,
    )
    if saved.created and previous is not None:
        old = await service.get_version(
            session, tenant_id=tenant_id, name=file.name, number=previous
        )
        change.diff = diff_versions(file.name, old, saved.version)
    return change


async def _update_settings(
    session: AsyncSession, *, prompt: Prompt, file: PromptFile, actor: Actor
) -> dict[str, tuple[Any, Any]]:
    """Bring the prompt's settings in line with the file; returns each change (from, to)."""
    wanted: dict[str, Any] = {
        "description": file.description,
        "protected_labels": sorted(set(file.protected_labels)),
        "archived": False,
    }
    current = {
        "description": prompt.description,
        "protected_labels": sorted(prompt.protected_labels),
        "archived": prompt.archived,
    }
    updated = {key: (current[key], wanted[key]) for key in wanted if current[key] != wanted[key]}
    if updated:
        await service.update_prompt(
            session,
            tenant_id=prompt.tenant_id,
            name=prompt.name,
            body=PromptUpdate(**{key: wanted[key] for key in updated}),
            actor=actor,
            may_move_protected=True,  # a platform operator
        )
    return updated


async def _move_label(
    session: AsyncSession, *, tenant_id: uuid.UUID, change: Change, label: str, actor: Actor
) -> LabelChange:
    """Point `label` at the pushed version, expecting it where it points now."""
    try:
        state = await service.get_label(session, tenant_id=tenant_id, name=change.name, label=label)
        current: int | None = state.version
    except NotFound:
        current = None
    if current != change.version:
        # The CLI acts as a platform operator, who may move protected labels.
        await service.move_label(
            session,
            tenant_id=tenant_id,
            name=change.name,
            label=label,
            version=change.version,
            expected_version=current,
            actor=actor,
            may_move_protected=True,
        )
    return LabelChange(label, current, change.version)


# Reporting


def _yaml_lines(value: Any) -> list[str]:
    if value is None or value == [] or value == {}:
        return []
    return dump(value).splitlines(keepends=True)


def _settings_diff(name: str, diff: DiffOut) -> list[str]:
    """A unified diff of each changed setting, written as in a file."""
    lines: list[str] = []
    for item in diff.settings:
        old, new = _ordered(item.from_value), _ordered(item.to_value)
        if item.field == "model" and _model_settings(old or {}) != _model_settings(new or {}):
            # As a file shows them; in full when they differ only in spelled-out defaults.
            old, new = _model_settings(old or {}), _model_settings(new or {})
        lines += difflib.unified_diff(
            _yaml_lines(old),
            _yaml_lines(new),
            f"{name}@{diff.from_version} {item.field}",
            f"{name}@{diff.to_version} {item.field}",
        )
    return [line if line.endswith("\n") else line + "\n" for line in lines]


def _diff_lines(change: Change) -> list[str]:
    if change.diff is None:
        return []
    text: list[str] = []
    for message in change.diff.messages:
        if message.role_from != message.role_to:
            text.append(
                f"messages[{message.index}] role: {message.role_from or '(none)'}"
                f" → {message.role_to or '(none)'}\n"
            )
        text += message.diff.splitlines(keepends=True)
    text += _settings_diff(change.name, change.diff)
    return [line.rstrip("\n") for line in text]


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def describe(change: Change) -> list[str]:
    """The text lines telling what a push did (or would do) to one prompt."""
    if change.action == "created":
        head = f"{change.name}: created {change.kind} prompt, version {change.version}"
    elif change.action == "new_version":
        was = f"was {change.previous_version}" if change.previous_version else "its first"
        head = f"{change.name}: new version {change.version} ({was})"
    else:
        head = f"{change.name}: unchanged (version {change.version})"
    lines = [head]
    for key, (old, new) in change.updated.items():
        if key == "archived":
            lines.append("    restored (it was archived)")
        else:
            lines.append(f"    {key}: {_shown(old)} → {_shown(new)}")
    lines += ["    " + line for line in _diff_lines(change)]
    label = change.label
    if label is not None:
        if label.moved:
            was = "none" if label.from_version is None else label.from_version
            lines.append(f"    label {label.name}: {was} → {label.to_version}")
        else:
            lines.append(f"    label {label.name}: already at {label.to_version}")
    return lines


def summary(changes: list[Change]) -> dict[str, int]:
    counts = {"created": 0, "new_version": 0, "unchanged": 0, "labels_moved": 0}
    for change in changes:
        counts[change.action] += 1
        counts["labels_moved"] += bool(change.label and change.label.moved)
    return counts
