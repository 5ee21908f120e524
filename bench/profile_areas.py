"""Where a worker's time goes, from a py-spy `--format raw` profile (collapsed stacks).

`bench/run_overhead.py --profile PY_SPY` records one; this reads it and prints, per process
(the service worker, its render workers), the share of samples: inclusive for each stage of
the run path (a sample counts for every stage on its stack), and by the package of the leaf
frame (where the CPU actually is). py-spy leaves idle threads out, but not all idling: uvloop
waits inside C under `Runner.run` (shown as `asyncio (uvloop, incl. idle)`), and a parked
thread of the default executor shows as `concurrent` (`_worker`). Count both as idle.

    .venv/bin/python bench/profile_areas.py /tmp/run-profile.txt [--top 25]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?):(?P<line>\d+)\)$")

# Stages of a run, each found by any of its markers (a function or file) on a sample's stack.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("uvicorn HTTP protocol (parse, send)", ("uvicorn/protocols/http/",)),
    ("access log and other logging", ("logging/__init__.py",)),
    ("ApiKeyGate (authentication)", ("ApiKeyGate",)),
    ("BodySizeLimit middleware", ("BodySizeLimit",)),
    ("FastAPI: dependencies + request body", ("solve_dependencies",)),
    ("FastAPI: response serialization", ("serialize_response",)),
    ("run_prompt (the endpoint, all below)", ("run_prompt (promptlogic/runs/router.py",)),
    ("  prepare_run: render_prompt", ("render_prompt (promptlogic/prompts/render.py",)),
    ("  resolve_connection / provider_for", ("ProviderRegistry.",)),
    ("  the provider call (OpenAIChatProvider)", ("OpenAIChatProvider.",)),
    ("    openai SDK request transform", ("openai/_utils/_transform.py",)),
    ("    openai SDK response to model", ("_process_response",)),
    ("    HTTP client (httpx, httpcore, aiohttp)", ("httpx2/", "httpcore2/", "aiohttp/")),
    ("  output validation (_parsed_output)", ("_parsed_output",)),
    ("  price lookup (_cost)", ("_cost (promptlogic/runs/pipeline.py",)),
    ("  recorder.persist", ("RunRecorder.persist",)),
    ("RunResult.model_validate / result_of", ("result_of",)),
    ("render pool IPC (Renderer._request)", ("Renderer._request",)),
    ("run recorder flush (writes, background)", ("RunRecorder._write_batch",)),
    ("SQLAlchemy + asyncpg (any)", ("sqlalchemy/", "asyncpg/")),
    ("json (any)", ("json/",)),
    ("pydantic (any)", ("pydantic",)),
]

PACKAGES = [
    ("promptlogic/", 2),  # promptlogic/<subpackage>
    ("openai/", 1),
    ("httpx2/", 1),
    ("httpcore2/", 1),
    ("aiohttp/", 1),
]


def parse(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            stacks.append((stack.split(";"), int(count)))
    return stacks


def process_of(frames: list[str]) -> tuple[str, list[str]]:
    """The process a stack belongs to (the deepest `process N:` frame) and its own frames."""
    where = max(i for i, frame in enumerate(frames) if frame.startswith("process "))
    label = "render worker" if " -I -c " in frames[where] else "service worker"
    return label, frames[where + 1 :]


def package_of(frame: str) -> str:
    match = FRAME.match(frame)
    if match is None:
        return "(native or no Python frame)"
    file = match["file"]
    if file.startswith("asyncio/runners.py"):
        return "asyncio (uvloop, incl. idle)"
    for prefix, depth in PACKAGES:
        if file.startswith(prefix):
            return "/".join(file.split("/")[:depth])
    head = file.split("/", 1)[0]
    return head.removesuffix(".py")


def report(path: Path, top: int) -> None:
    by_process: dict[str, list[tuple[list[str], int]]] = {}
    for frames, count in parse(path):
        label, own = process_of(frames)
        by_process.setdefault(label, []).append((own, count))
    total = sum(count for stacks in by_process.values() for _, count in stacks)
    print(f"{total} samples in {path}")
    for label, stacks in sorted(by_process.items(), key=lambda item: item[0] != "service worker"):
        samples = sum(count for _, count in stacks)
        print(f"\n== {label}: {samples} samples ({100 * samples / total:.1f}% of all)")
        if label == "service worker":
            print("  stage, inclusive (a sample counts for every stage on its stack)")
            for name, markers in STAGES:
                hits = sum(
                    count
                    for own, count in stacks
                    if any(marker in frame for frame in own for marker in markers)
                )
                print(f"  {100 * hits / samples:6.1f}%  {name}")
        print("  leaf frame's package (self time)")
        packages: Counter[str] = Counter()
        for own, count in stacks:
            packages[package_of(own[-1]) if own else "(no Python frame)"] += count
        for name, count in packages.most_common(top):
            print(f"  {100 * count / samples:6.1f}%  {name}")
        print("  leaf functions (self time)")
        functions: Counter[str] = Counter()
        for own, count in stacks:
            functions[own[-1] if own else "(no Python frame)"] += count
        for name, count in functions.most_common(top):
            print(f"  {100 * count / samples:6.1f}%  {name[:110]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    report(args.profile, args.top)
