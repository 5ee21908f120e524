"""The bounds on the work one render or one save-time check may do.

Every field is the name a `LimitExceeded` error reports, so a user who hits a bound learns which
one. The defaults keep a hostile template within about 1.5 s of one worker process's time and a
few megabytes of its memory; the web process itself never does template work.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

KIB = 1024


@dataclass(frozen=True, slots=True)
class RenderLimits:
    """Bounds on a render (all templates of one request together) or on a save-time check."""

    render_seconds: float = 1.0
    """Wall-clock time of one render or check inside a worker, compiling included."""
    max_output_chars: int = 256 * KIB
    """Characters one template may output; also the largest string or list a template may build."""
    max_total_output_chars: int = 256 * KIB
    """Characters all the templates of one render may output together."""
    max_range: int = 10_000
    """Items one `range()` call, `batch` or `slice` may produce."""
    max_include_depth: int = 5
    """Nesting of `{% include %}`: an entry template including one that includes one is depth 2."""
    max_call_depth: int = 32
    """Nesting of calls to macros, `caller()`, recursive loops and blocks."""
    max_source_chars: int = 64 * KIB
    """Characters of one template's source, checked before it is parsed."""
    max_int_bits: int = 4096
    """Bits of an integer computed by `*` or `**` (4096 bits is a 1234-digit number)."""

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"RenderLimits.{item.name} must be a positive number")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_LIMITS = RenderLimits()
