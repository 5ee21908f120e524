"""A corpus of known template-injection and resource-exhaustion payloads.

An escape payload must fail with a 422 or render without reaching anything but the data it
was given; an exhaustion payload must fail with a limit error within two seconds.
"""

from __future__ import annotations

import time

import pytest

from promptlogic.errors import InvalidInput
from promptlogic.rendering import LimitExceeded, Renderer, TemplateProblem
from tests.rendering.support import QUICK

VARIABLES = {"x": {"name": "Ada", "a": 1}, "items": ["a", "b"], "s": "text", "n": 3}
LEAKS = (
    "<class",
    "<function",
    "<built-in",
    "<bound",
    "<module",
    "<generator",
    "<jinja",
    " at 0x",
    "jinja2",
    "promptlogic",
    "Traceback",
    'File "',
    "site-packages",
    "environ",
    "__builtins__",
    "posix",
    "root:",
    "Undefined",
)

ESCAPES = [
    # the classic walk to object.__subclasses__()
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__ }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ [].__class__.__base__.__subclasses__()[40]('/etc/passwd').read() }}",
    "{{ {}.__class__.__base__ }}",
    "{{ (1).__class__.__base__.__subclasses__() }}",
    "{{ x.__class__ }}",
    "{{ x.__init__ }}",
    "{{ x.__getitem__ }}",
    "{{ s.__len__ }}",
    # globals reachable from functions in the template namespace
    "{{ cycler.__init__.__globals__.os }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ namespace.__init__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ range.__globals__ }}",
    "{{ range.__self__ }}",
    "{{ dict.__init__ }}",
    "{{ dict.fromkeys(range(10), 'x') }}",
    "{{ dict(a=1).items.__self__ }}",
    "{{ cycler(1).next.__func__.__globals__ }}",
    "{{ joiner()|attr('__call__') }}",
    # the template's own machinery
    "{{ self._TemplateReference__context }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os }}",
    "{{ self|attr('_TemplateReference__context') }}",
    "{{ self.__dict__ }}",
    "{{ self }}",
    "{% for i in [1] %}{{ loop._iterator }}{{ loop.__class__ }}{% endfor %}",
    "{% macro m() %}{% endmacro %}{{ m._func.__globals__ }}",
    "{% macro m() %}{% endmacro %}{{ m.__call__.__globals__ }}",
    # framework objects that are never given to a template
    "{{ config }}",
    "{{ config.items() }}",
    "{{ request }}",
    "{{ request.application.__globals__.__builtins__ }}",
    "{{ settings.secret_key }}",
    "{{ environment }}",
    "{{ context }}",
    # filters that look attributes up
    "{{ 'x'|attr('__class__') }}",
    "{{ ''|attr('__class__')|attr('__mro__') }}",
    "{{ ''|attr('format') }}",
    "{{ items|map(attribute='__class__')|list }}",
    "{{ items|map('attr', '__class__')|list }}",
    "{{ [x]|selectattr('__class__')|list }}",
    "{{ items|sort(attribute='__class__') }}",
    "{{ items|groupby('__class__') }}",
    "{{ items|join(attribute='__class__') }}",
    "{{ [x]|sum(attribute='__init__') }}",
    # escapes spelled with string escapes
    "{{ ''['\\x5f\\x5fclass\\x5f\\x5f'] }}",
    "{{ ''['\\u005f\\u005fclass\\u005f\\u005f'] }}",
    "{{ ()|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ ''[('_' * 2) ~ 'class' ~ ('_' * 2)] }}",
    # format strings reach attributes without the `.` operator
    "{{ '{0.__class__}'.format(1) }}",
    "{{ '{0.__class__.__mro__}'.format('') }}",
    "{{ '{0[__class__]}'.format(x) }}",
    "{{ '{x.__class__}'.format_map({'x': 1}) }}",
    "{{ '{0.upper.__self__}'.format(s) }}",
    "{{ '{!r}'.format(self) }}",
    "{{ '{0!s}'.format(cycler) }}",
    "{{ '%s'|format(cycler) }}",
    "{{ '%(a)s' % {'a': self} }}",
    "{{ ''.format.__globals__ }}",
    "{{ ''.center.environment }}",
    "{{ ''.format.environment.globals }}",
    "{{ ''.join.text }}",
    # methods that mutate, encode or allocate
    "{{ items.append(1) }}{{ items }}",
    "{{ items.pop() }}",
    "{{ x.clear() }}{{ x }}",
    "{{ x.update({'a': 2}) }}",
    "{{ s.encode('utf-8') }}",
    "{{ s.translate({116: 'x' * 1000}) }}",
    "{{ (1).to_bytes(10, 'big') }}",
    "{{ (1.5).hex() }}",
    "{{ (items|map('upper')).gi_frame.f_globals }}",
    "{{ (items|map('upper')).send }}",
    # odd calls and outputs
    "{% call dict() %}{% endcall %}",
    "{% call(user) namespace() %}{% endcall %}",
    "{{ caller() }}",
    "{{ [cycler] }}",
    "{{ x ~ joiner }}",
    "{{ dict(a=namespace) }}",
    "{% set ns = namespace() %}{% set ns.__class__ = 1 %}{{ ns.__class__ }}",
    # files, imports and includes
    "{% include '/etc/passwd' %}",
    "{% include '../../../etc/passwd' %}",
    "{% import 'os' as os %}{{ os.system('id') }}",
    "{% from 'os' import system %}",
    "{% extends '/etc/passwd' %}",
    "{% include s %}",
    "{{ lipsum(999999999) }}",
    "{{ url_for.__globals__ }}",
    "{{ get_flashed_messages.__globals__ }}",
    "{{ x|first }}{{ items|first|attr('__class__') }}",
    "{{ (items|list).copy }}",
    "{{ x.keys().mapping }}",
    "{{ range(3).__class__ }}",
    "{{ loop }}",
    "{% for c in ''.__class__.__mro__ %}{{ c }}{% endfor %}",
    "{{ namespace(a=1)._Namespace__attrs }}",
]

EXHAUSTION = [
    "{{ 9**(9**9) }}",
    "{{ 2**(2**64) }}",
    "{{ (2**2000) * (2**2000) * (2**2000) }}",
    "{{ 'a' * 10**9 }}",
    "{{ 10**9 * 'a' }}",
    "{{ [1] * 10**9 }}",
    "{{ (1,) * 10**8 }}",
    "{{ items * 100000 }}",
    "{{ 'a' ~ 'b' * 999999999 }}",
    "{{ 'a' * 200000 + 'a' * 200000 }}",
    "{% set ns = namespace(x='ab') %}{% for i in range(64) %}{% set ns.x = ns.x ~ ns.x %}"
    "{% endfor %}{{ ns.x|length }}",
    "{% set ns = namespace(x='ab') %}{% for i in range(64) %}{% set ns.x = ns.x + ns.x %}"
    "{% endfor %}",
    "{% set ns = namespace(x=[1]) %}{% for i in range(64) %}{% set ns.x = ns.x + ns.x %}"
    "{% endfor %}",
    "{% set ns = namespace(x='ab') %}{% for i in range(64) %}"
    "{% set ns.x %}{{ ns.x }}{{ ns.x }}{% endset %}{% endfor %}",
    "{% set b = 'x' * 200000 %}{{ [b, b, b] }}",
    "{% set b = 'x' * 200000 %}{{ [b, b]|tojson }}",
    "{{ dict(a='x' * 200000, b='x' * 200000) }}",
    "{{ '%999999999s' % 'a' }}",
    "{{ '%.999999999f' % 1.0 }}",
    "{{ '%*s' % (999999999, 'a') }}",
    "{{ '%(a(b))999999999s' % {'a(b)': 1} }}",
    "{{ ('%s' * 1000) % (('x' * 1000,) * 1000) }}",
    "{{ '%s'|format('x') ~ '%999999999d'|format(1) }}",
    "{{ '{:999999999}'.format('a') }}",
    "{{ '{:{}}'.format('a', 999999999) }}",
    "{{ '{:.999999999f}'.format(1.5) }}",
    "{{ '{0}{0}{0}{0}{0}{0}{0}{0}'.format('a' * 100000) }}",
    "{{ '{x}{x}{x}{x}'.format_map({'x': 'a' * 100000}) }}",
    "{{ 'a'|center(999999999) }}",
    "{{ 'a'.center(999999999) }}",
    "{{ 'a'.ljust(999999999) }}",
    "{{ 'a'.rjust(999999999) }}",
    "{{ '1'.zfill(999999999) }}",
    "{{ ('\\t' * 1000).expandtabs(999999) }}",
    "{{ 'a'|indent(999999999) }}",
    "{{ ('a\\n' * 10000)|indent('x' * 100) }}",
    "{{ ('a ' * 1000)|wordwrap(1, wrapstring='x' * 1000) }}",
    "{{ ('a' * 1000)|replace('', 'b' * 1000) }}",
    "{{ ('a' * 1000).replace('a', 'b' * 1000) }}",
    "{{ range(10000)|join('x' * 100) }}",
    "{{ ('x' * 100).join(range(10000)) }}",
    "{{ range(10**9)|list }}",
    "{{ range(10**9)|join }}",
    "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
    "{% for a in range(10000) %}{% for b in range(10000) %}x{% endfor %}{% endfor %}",
    "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}"
    "{% endfor %}{% endfor %}{% endfor %}",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "{% macro m(n) %}{{ m(n) }}{{ m(n) }}{% endmacro %}{{ m(1) }}",
    "{% macro d(n) %}{% if n %}{{ d(n - 1) }}{{ d(n - 1) }}{% else %}xxxx{% endif %}"
    "{% endmacro %}{{ d(30) }}",
    "{% for i in range(10000) recursive %}{{ loop(range(10000)) }}{% endfor %}",
    "{% set x %}{% for i in range(10000) %}{{ 'a' * 1000 }}{% endfor %}{% endset %}{{ x|length }}",
    "{% filter upper %}{% for i in range(10000) %}{{ 'a' * 1000 }}{% endfor %}{% endfilter %}",
    "{{ range(10000)|map('center', 262144)|list|length }}",
    "{{ 5|round(-1000000000) }}",
    "{{ [1]|batch(999999999, 'x')|list }}",
    "{{ [1]|slice(999999999)|list }}",
    "{{ x|tojson(indent=999999999) }}",
    "{{ '2020-01-01'|date('%c' * 100000) }}",
    "{{ range(10000)|map('string')|map('center', 1000)|join }}",
]


def _no_leak(text: str, payload: str) -> None:
    """No marker of Python internals, unless the payload wrote it itself (errors quote names)."""
    for marker in LEAKS:
        if marker not in payload:
            assert marker not in text, f"{marker!r} in {text[:300]!r}"


@pytest.mark.parametrize("payload", ESCAPES)
async def test_escape_payload_reaches_nothing(renderer: Renderer, payload: str) -> None:
    # Twice: a straight-line template a worker rendered is rendered in the web process next.
    for _ in range(2):
        try:
            (text,) = await renderer.render([payload], variables=VARIABLES, limits=QUICK)
        except InvalidInput as error:  # every RenderError is one: a 422, never a 500
            _no_leak(error.detail, payload)
            _no_leak(str(error.errors), payload)
        else:
            _no_leak(text, payload)


@pytest.mark.parametrize("payload", EXHAUSTION)
async def test_exhaustion_payload_hits_a_limit_quickly(renderer: Renderer, payload: str) -> None:
    started = time.perf_counter()
    with pytest.raises((LimitExceeded, TemplateProblem)) as caught:
        await renderer.render([payload], variables=VARIABLES, limits=QUICK)
    assert time.perf_counter() - started < 2
    error = caught.value
    if isinstance(error, TemplateProblem):  # refused before it ran: unknown name, bad argument
        assert "undefined" not in error.detail
    else:
        assert error.limit in error.detail or error.limit == "memory"


def test_the_corpus_is_large() -> None:
    assert len(ESCAPES) + len(EXHAUSTION) >= 150
