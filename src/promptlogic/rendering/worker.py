"""A render worker: a child process that checks and renders templates for the web process.

Started by `pool` as `python -I -c BOOTSTRAP CONFIG` (a fresh interpreter, an empty
environment, so no secret of the web process is in reach), it answers one request at a time on
stdin/stdout. A timer interrupts a render at its deadline; work stuck inside one C call is
ended by the web process killing this process. The address space is capped, so an allocation
bomb fails here with a MemoryError, and the worker then exits to be replaced.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from promptlogic.rendering import protocol
from promptlogic.rendering.engine import Deadline, Engine
from promptlogic.rendering.failures import Failure, LimitFailure
from promptlogic.rendering.limits import DEFAULT_LIMITS, RenderLimits

BOOTSTRAP = (
    "import json, sys; config = json.loads(sys.argv[1]); sys.path[:] = config['path']; "
    "from promptlogic.rendering.worker import main; main(config)"
)
_WARM_UP = "{% for i in range(1) %}{{ x|default('')|upper ~ i }}{% endfor %}"


class _Alarm:
    """Raises `Deadline` in this (single-threaded) process when a request runs out of time."""

    def __init__(self) -> None:
        self._armed = False
        signal.signal(signal.SIGALRM, self._ring)

    def _ring(self, signum: int, frame: FrameType | None) -> None:
        if self._armed:
            self._armed = False
            raise Deadline

    @contextmanager
    def armed(self, seconds: float) -> Iterator[None]:
        self._armed = True
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            self._armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)


def _claim_stdio() -> tuple[int, int]:
    """Keep stdin/stdout for the protocol; send any stray print to stderr instead."""
    reader, writer = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return reader, writer


def _limit_resources(memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_bytes > 0:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int) -> dict[str, Any] | None:
    header = _read_exactly(fd, protocol.HEADER.size)
    if header is None:
        return None
    (size,) = protocol.HEADER.unpack(header)
    body = _read_exactly(fd, size)
    return None if body is None else protocol.read_request(body)


def _send(fd: int, message: dict[str, Any]) -> None:
    view = memoryview(protocol.reply_frame(message))
    while view:
        view = view[os.write(fd, view) :]


def _dispatch(engine: Engine, request: dict[str, Any], limits: RenderLimits) -> Any:
    op = request["op"]
    if op == "render":
        if request.get("schema") is not None:
            from promptlogic.rendering.schema import validate_variables

            problems = validate_variables(request["schema"], request["variables"])
            if problems:
                return {"problems": problems}
        templates, includes = request["templates"], request["includes"]
        outputs = engine.render(templates, includes, request["variables"], limits)
        # The web process renders the same sources itself next time when this is not None.
        return {"outputs": outputs, "straight": engine.straight_cost(templates, includes, limits)}
    if op == "check":
        info = engine.check(request["source"], limits)
        return {"variables": sorted(info.variables), "includes": list(info.includes)}
    if op == "check_schema":
        from promptlogic.rendering.schema import check_schema

        return check_schema(request["schema"])
    if op == "validate":
        from promptlogic.rendering.schema import validate_variables

        return validate_variables(request["schema"], request["variables"])
    if op == "ping":
        return os.getpid()
    raise ValueError(f"unknown request {op!r}")


def _handle(engine: Engine, alarm: _Alarm, request: dict[str, Any]) -> dict[str, Any]:
    limits = RenderLimits(**request.get("limits", {}))
    try:
        with alarm.armed(limits.render_seconds):
            return {"ok": _dispatch(engine, request, limits)}
    except Failure as failure:
        return {"error": failure.as_dict(), "recycle": failure.limit == "memory"}
    except Deadline:
        failure = LimitFailure(
            "render_seconds",
            f"the work took longer than {limits.render_seconds} s",
        )
        return {"error": failure.as_dict()}
    except MemoryError:
        failure = LimitFailure("memory", "the work needed more memory than a worker may use")
        return {"error": failure.as_dict(), "recycle": True}
    except Exception:
        traceback.print_exc()
        failure = Failure("the renderer failed unexpectedly")
        return {"error": failure.as_dict(), "recycle": True}


def main(config: dict[str, Any]) -> None:
    reader, writer = _claim_stdio()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the web process decides when we stop
    engine = Engine(config.get("cache_size", 256))
    engine.check(_WARM_UP, DEFAULT_LIMITS)  # Jinja's lexer and caches, before any deadline
    _limit_resources(config.get("memory_bytes", 0))
    alarm = _Alarm()
    _send(writer, {"ready": os.getpid()})
    while (request := _receive(reader)) is not None:
        reply = _handle(engine, alarm, request)
        _send(writer, reply)
        if reply.get("recycle"):
            break
    sys.exit(0)
