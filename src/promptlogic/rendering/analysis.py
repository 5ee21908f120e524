"""What a template source uses and includes, found by parsing it: nothing is evaluated.

Parsing is safe where compiling is not, but not cheap: 64 KiB of hostile source can take a
second of CPU, so the web process runs this in a worker (`Renderer.check`); `analyze()` runs it
in the calling thread for tools and tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jinja2 import Template, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import Environment
from jinja2.exceptions import TemplateSyntaxError

from promptlogic.rendering.failures import SourceFailure
from promptlogic.rendering.limits import RenderLimits

_NAME = r"[a-z0-9][a-z0-9._-]{0,99}"
INCLUDE_NAME = re.compile(rf"{_NAME}(?:@{_NAME})?")
_FORBIDDEN = {
    nodes.Extends: "extends",
    nodes.Import: "import",
    nodes.FromImport: "from ... import",
}


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    """The variables a template reads from its context, and the templates it includes;
    `straight_nodes` is its node count when it is straight-line (see `straight_line_nodes`)."""

    variables: frozenset[str]
    includes: tuple[str, ...]
    straight_nodes: int | None = None


# A straight-line template: text, variables, item and attribute look-ups, literals,
# comparisons, `if`, `~` and includes, and filters whose work and output are at most linear in
# their input. No loop, call, arithmetic, slice, assignment or macro: rendering it costs about
# its node count times the size of the variables, whatever the values, so the web process may
# render it itself (`rendering.inline`) instead of paying a round trip to a worker.
_STRAIGHT_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Const,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Filter,
    nodes.Test,
    nodes.If,
    nodes.CondExpr,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
    nodes.Concat,
    nodes.Include,
    nodes.List,
    nodes.Tuple,
)
_STRAIGHT_FILTERS = frozenset(
    {
        "abs", "capitalize", "count", "d", "default", "first", "float", "int", "last",
        "length", "lower", "round", "string", "title", "tojson", "trim", "truncate", "upper",
        "wordcount",
    }
)  # fmt: skip
STRAIGHT_MAX_SOURCE_CHARS = 16_384  # compiling more in the web process could stall it


def straight_line_nodes(tree: nodes.Template, source_chars: int) -> int | None:
    """The node count of a straight-line template (see above), None for any other."""
    if source_chars > STRAIGHT_MAX_SOURCE_CHARS:
        return None
    count = 0
    for node in (tree, *tree.find_all(nodes.Node)):
        count += 1
        if type(node) not in _STRAIGHT_NODES:
            return None
        if isinstance(node, nodes.Filter) and node.name not in _STRAIGHT_FILTERS:
            return None
    return count


class _VariableTracker(CodeGenerator):
    """Jinja's `meta.find_undeclared_variables`, without its optimizer (which folds constants,
    so `{{ 9**(9**9) }}` would be computed while merely analysing)."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment, "<analysis>", "<analysis>", optimized=False)
        self.undeclared: set[str] = set()

    def write(self, x: str) -> None:
        """Nothing is generated."""

    def enter_frame(self, frame: Frame) -> None:
        super().enter_frame(frame)
        for action, name in frame.symbols.loads.values():
            if action == "resolve" and name not in self.environment.globals:
                self.undeclared.add(name)


def parse(environment: Environment, source: str, limits: RenderLimits) -> nodes.Template:
    """The syntax tree of `source`, or a `SourceFailure` with the message and line."""
    if not isinstance(source, str):
        raise SourceFailure("a template must be a string")
    if len(source) > limits.max_source_chars:
        raise SourceFailure(
            f"the template has {len(source)} characters; the limit is "
            f"{limits.max_source_chars} (max_source_chars)",
            limit="max_source_chars",
        )
    try:
        return environment.parse(source)
    except TemplateSyntaxError as exc:
        raise SourceFailure(exc.message or "invalid syntax", line=exc.lineno) from None
    except RecursionError:
        raise SourceFailure("the template nests too deeply") from None
    except (ValueError, OverflowError) as exc:
        raise SourceFailure(f"the template cannot be parsed: {exc}") from None


def _check_nodes(environment: Environment, tree: nodes.Template) -> tuple[str, ...]:
    """Refuse what prompt templates may not do; return the include names in source order."""
    includes: dict[str, None] = {}
    stack: list[nodes.Node] = [tree]
    while stack:  # iterative: a deep tree must not exhaust the stack here
        node = stack.pop()
        line = getattr(node, "lineno", None)
        for kind, tag in _FORBIDDEN.items():
            if isinstance(node, kind):
                raise SourceFailure(
                    f"`{{% {tag} %}}` is not supported; a prompt can only "
                    '`{% include "NAME" %}` a context template',
                    line=line,
                )
        if isinstance(node, nodes.Include):
            includes[_include_name(node)] = None
        elif isinstance(node, nodes.EvalContextModifier):
            raise SourceFailure("`{% autoescape %}` is not supported: prompts are text", line=line)
        elif isinstance(node, nodes.Filter) and node.name not in environment.filters:
            raise SourceFailure(f"unknown filter `{node.name}`", line=line)
        elif isinstance(node, nodes.Test) and node.name not in environment.tests:
            raise SourceFailure(f"unknown test `{node.name}`", line=line)
        stack.extend(reversed(list(node.iter_child_nodes())))
    return tuple(includes)


def _include_name(node: nodes.Include) -> str:
    target = node.template
    if not (isinstance(target, nodes.Const) and isinstance(target.value, str)):
        raise SourceFailure(
            'an include must name its template as a string, like `{% include "policy" %}`',
            line=node.lineno,
        )
    if node.ignore_missing:
        raise SourceFailure(
            "`ignore missing` is not supported: an include must exist", line=node.lineno
        )
    name = target.value
    if not INCLUDE_NAME.fullmatch(name):
        raise SourceFailure(
            f"`{name[:120]}` is not a template name: use NAME or NAME@LABEL "
            "(lowercase letters, digits, `.`, `_`, `-`)",
            line=node.lineno,
        )
    return name


def inspect(
    environment: Environment, source: str, limits: RenderLimits
) -> tuple[nodes.Template, TemplateInfo]:
    """Parse and check `source`; return its tree (to compile) and what it uses."""
    tree = parse(environment, source, limits)
    includes = _check_nodes(environment, tree)
    tracker = _VariableTracker(environment)
    try:
        tracker.visit(tree)
    except TemplateSyntaxError as exc:
        raise SourceFailure(exc.message or "invalid template", line=exc.lineno) from None
    except RecursionError:
        raise SourceFailure("the template nests too deeply") from None
    straight = straight_line_nodes(tree, len(source))
    return tree, TemplateInfo(frozenset(tracker.undeclared), includes, straight)


def compile_tree(environment: Environment, tree: nodes.Template) -> Template:
    """Compile a checked tree. In a worker: compiling is CPU-heavy on hostile input (the web
    process compiles only a straight-line template a worker has compiled before)."""
    try:
        code = environment.compile(tree)
    except TemplateSyntaxError as exc:
        raise SourceFailure(exc.message or "invalid template", line=exc.lineno) from None
    except (RecursionError, SyntaxError, MemoryError):
        raise SourceFailure("the template nests too deeply") from None
    return environment.template_class.from_code(environment, code, environment.make_globals(None))
