"""The prompt file format: one readable YAML document per prompt, and the reading and writing
of a directory of them.

A file holds a prompt's settings (`name`, `kind`, `description`, `protected_labels`) and the
content of one version, with templates written as literal block strings. Writing and reading
are exact inverses, so pulling then pushing changes nothing and two pulls write the same bytes.
Kept apart from `gitops` (what a pull or push does to a tenant) so the format reads on its own
and needs no database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, ValidationError

from promptlogic import rendering
from promptlogic.prompts.models import Prompt, PromptVersion
from promptlogic.prompts.resolution import parse_include
from promptlogic.prompts.schemas import (
    Description,
    Kind,
    LabelName,
    ModelSettings,
    PromptCreate,
    PromptName,
    VersionContent,
    VersionCreate,
)

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


def ordered(value: Any) -> Any:
    """`value` with every mapping's keys in a stable, readable order."""
    if isinstance(value, dict):
        rank = {key: i for i, key in enumerate(FIRST_KEYS)}
        keys = sorted(value, key=lambda k: (rank.get(k, len(rank)), k))
        return {key: ordered(value[key]) for key in keys}
    if isinstance(value, list):
        return [ordered(item) for item in value]
    return value


def model_as_written(model: dict[str, Any]) -> dict[str, Any]:
    """The model settings without declared fields at their defaults (reading restores them)."""
    declared = ModelSettings.model_fields
    shown = {
        key: model[key]
        for key in declared
        if key in model and model[key] != declared[key].get_default(call_default_factory=True)
    }
    extras = {key: value for key, value in model.items() if key not in declared}
    return {**shown, **ordered(extras)}


def to_document(prompt: Prompt, version: PromptVersion) -> dict[str, Any]:
    """What a file holds for `version` of `prompt`: keys in file order, defaults left out."""
    document: dict[str, Any] = {"name": prompt.name, "kind": prompt.kind}
    if prompt.description:
        document["description"] = prompt.description
    document["protected_labels"] = sorted(prompt.protected_labels)
    if version.model:  # a context template has none
        document["model"] = model_as_written(version.model)
    for name in ("input_schema", "response_format", "tools", "context"):
        value = getattr(version, name)
        if value != VersionContent.model_fields[name].get_default(call_default_factory=True):
            document[name] = ordered(value)
    if version.messages is not None:
        document["messages"] = [
            {"role": message["role"], "content": message["content"]} for message in version.messages
        ]
    if version.template is not None:
        document["template"] = version.template
    return document


def dump(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=2**31 - 1)


@dataclass(frozen=True, slots=True)
class Pulled:
    """The file text of one prompt at the version pulled, ready to write."""

    name: str
    version: int
    text: str


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
