"""What one worker's run path costs over the model call, with LiteLLM's proxy as the reference.

Three phases, each against the fake upstream alone (the floor), one `promptlogic serve`
worker running the demo `support-triage` prompt through `POST /v1/prompts/{name}/run`, and,
with `--litellm VENV`, LiteLLM's proxy (one worker) on `POST /v1/chat/completions`:

  a. concurrency 1, no upstream delay: p50 and p99; what the service adds is its latency
     minus the upstream's;
  b. concurrency 64, no delay: requests/s;
  c. concurrency 500, every upstream answer delayed 1 s: requests/s in steady state (the
     first third of the run is left out) and so how many calls stay in flight upstream
     (Little's law: rate x 1 s); 500 means no run waits inside the service.

`--phases l` adds layers: the same worker at concurrency 64 on `/healthz`, `/v1/me`, render
and run, which splits a run's CPU into HTTP and logging, authentication, render, and the rest.

The set-up, on a 2-core machine, nothing pinned: the upstream (`bench/fake_upstream.py`, a
bare asyncio server answering a fixed chat completion that satisfies the prompt's response
format), the service under test, its render workers, the embedded Postgres and the load
generator are separate processes sharing both cores. The load generator is `wrk` (C, one
thread, a Lua script for the POST body): the upstream alone measures what it can push, which
must stay far above what the services reach. Each process's CPU time is read from /proc, so
the table also gives CPU milliseconds per request: other load on the machine distorts it
less than it does rates and latencies (it still inflates it by 10-30 %; mind the `load` and
`cores busy` printed with each measurement, and re-run when other work was running).

promptlogic runs as a user would run it: `promptlogic serve`, one worker, log level `info`
(an access-log line per request, to a file here), `OPENAI_BASE_URL` and `OPENAI_API_KEY`
pointing at the upstream, so every run goes through the real openai SDK; run records buffered
(the default). LiteLLM runs with its default logging, a master key, and `gpt-4o-mini` routed
to the same upstream as `openai/gpt-4o-mini`.

    apt-get install -y wrk
    .venv/bin/python bench/run_overhead.py                              # promptlogic only
    python3 -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install 'litellm[proxy]'
    .venv/bin/python bench/run_overhead.py --litellm /tmp/litellm-venv   # side by side
    .venv/bin/python bench/run_overhead.py --phases l                    # CPU by layer
    # where the time goes: py-spy samples the worker and its render workers during a phase
    python3 -m venv /tmp/pyspy-venv && /tmp/pyspy-venv/bin/pip install py-spy
    .venv/bin/python bench/run_overhead.py --phases b --targets promptlogic \
        --profile /tmp/pyspy-venv/bin/py-spy --profile-output /tmp/profile-b.txt
    .venv/bin/python bench/profile_areas.py /tmp/profile-b.txt
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from common import BENCH_SECRET, bench_settings, free_port, live_server, seed_tenant

from promptlogic.demo_prompts import EXAMPLE_VARIABLES, TRIAGE_RESPONSE_FORMAT
from promptlogic.providers.openai_chat import build_request

BENCH_DIR = Path(__file__).resolve().parent
PROMPT = "support-triage"
MODEL = {"name": "gpt-4o-mini", "temperature": 0}  # the demo prompt's model settings
UPSTREAM_KEY = "sk-bench-upstream"
LITELLM_KEY = "sk-bench-litellm-master-key-0123456789"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DELAY = 1.0  # phase c: seconds before each upstream answer

LUA = """\
wrk.method = "{method}"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"

local threads = {{}}
function setup(thread) table.insert(threads, thread) end
{response}
function done(summary, latency, requests)
  local e = summary.errors
  local q = {{}}
  for _, p in ipairs({{50, 90, 99, 99.9}}) do
    q[#q + 1] = string.format('"%s": %d', p, latency:percentile(p))
  end
  local b = {{}}
  for _, thread in ipairs(threads) do
    local counts = thread:get("buckets")
    if counts then
      for second, n in pairs(counts) do b[#b + 1] = string.format("[%d, %d]", second, n) end
    end
  end
  io.write(string.format(
    '\\nWRK_JSON {{"requests": %d, "duration_us": %d, "mean_us": %.1f, "max_us": %d, ' ..
    '"errors": {{"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}, ' ..
    '"percentiles_us": {{%s}}, "buckets": [%s]}}\\n',
    summary.requests, summary.duration, latency.mean, latency.max, e.connect, e.read,
    e.write, e.status, e.timeout, table.concat(q, ", "), table.concat(b, ", ")))
end
"""
# Counts answers per wall-clock second, so phase c can leave out the ramp.
LUA_BUCKETS = """
buckets = {}
function response(status, headers, body)
  if status == 200 then
    local now = os.time()
    buckets[now] = (buckets[now] or 0) + 1
  end
end
"""


# --- CPU accounting -----------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces


def children_of(root: int) -> list[int]:
    """Every descendant of `root` (render workers, Postgres backends), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                parents.setdefault(int(_stat_fields(int(entry))[1]), []).append(int(entry))
    found, pending = [], [root]
    while pending:
        for child in parents.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of `pids` (those that are gone count as 0)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            fields = _stat_fields(pid)
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def load_average() -> str:
    """The 1, 5 and 15-minute load averages: other work on the machine skews the figures."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (everything but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / CLOCK_TICKS


# --- processes --------------------------------------------------------------------------


def wait_until_up(url: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    """Poll `url` until it answers 200; fail if `process` exits or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up (exit code {process.poll()})")
        time.sleep(0.2)


@dataclass
class Upstream:
    """The fake upstream process; its delay can change while it runs."""

    url: str
    process: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def set_delay(self, seconds: float) -> None:
        httpx.post(f"{self.url}/_bench/delay", json={"seconds": seconds}).raise_for_status()

    def stats(self) -> tuple[int, int]:
        """Chat completions served and connections opened, so far."""
        stats = httpx.get(f"{self.url}/_bench/stats").json()
        return int(stats["requests"]), int(stats["connections"])


@contextlib.contextmanager
def upstream() -> Iterator[Upstream]:
    port = free_port()
    command = [sys.executable, str(BENCH_DIR / "fake_upstream.py"), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: S603 - ours
    fake = Upstream(f"http://127.0.0.1:{port}", process)
    try:
        wait_until_up(f"{fake.url}/_bench/stats", process, 10)
        yield fake
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def litellm_proxy(venv: Path, upstream_base: str, workdir: Path) -> Iterator[tuple[str, int]]:
    """LiteLLM's proxy from `venv`, one worker, default logging, `gpt-4o-mini` routed to the
    upstream; yields its URL and pid. Its log goes to `workdir/litellm.log`."""
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-4o-mini\n"
        "    litellm_params:\n"
        "      model: openai/gpt-4o-mini\n"
        f"      api_base: {upstream_base}\n"
        f"      api_key: {UPSTREAM_KEY}\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n"
    )
    port = free_port()
    command = [str(venv / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--num_workers", "1"]
    # Without internet, its start retries fetching the price map for ~10 s; the copy it ships
    # is what it falls back to anyway.
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    with (workdir / "litellm.log").open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - the user's own LiteLLM
            command, env=env, stdout=log, stderr=log, cwd=workdir
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(f"{url}/health/liveliness", process, 180)
            yield url, process.pid
        finally:
            process.terminate()
            process.wait(timeout=30)


# --- load and measurement ---------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One HTTP endpoint under load, and the processes whose CPU it costs."""

    name: str
    url: str
    body: bytes | None  # None: a GET
    key: str
    service_pids: Callable[[], dict[str, list[int]]] = dict


@dataclass
class Measurement:
    phase: str
    target: str
    connections: int
    rate: float  # answers per second (phase c: steady state)
    p50_ms: float
    p99_ms: float
    mean_ms: float
    errors: int
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per request, by process group
    machine_cores: float = 0.0  # cores busy on average over the run
    load: str = ""  # the 1-minute load average when it started
    upstream_per_answer: float = 0.0  # upstream calls per answer: 1.00, or retries happened
    new_connections: int = 0  # opened to the upstream (a few, or connections are not reused)


def wrk(target: Target, connections: int, seconds: float, *, buckets: bool = False) -> dict:
    """Run wrk once (one thread, `connections` keep-alive connections); its summary, plus
    `cpu_s`: the CPU time wrk itself used."""
    if target.body is not None and b"]==]" in target.body:
        raise ValueError("the body would end the Lua long string early")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        body = "nil" if target.body is None else f"[==[{target.body.decode()}]==]"
        script.write(
            LUA.format(
                method="GET" if target.body is None else "POST",
                body=body,
                key=target.key,
                response=LUA_BUCKETS if buckets else "",
            )
        )
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s"]
    command += ["-s", script.name, target.url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        output = subprocess.run(  # noqa: S603 - wrk with our arguments
            command, capture_output=True, text=True, check=False
        ).stdout
    finally:
        os.unlink(script.name)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # only wrk ended since `before`
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    line = next((x for x in output.splitlines() if x.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed:\n{output}")
    summary = json.loads(line.removeprefix("WRK_JSON "))
    summary["cpu_s"] = cpu
    return summary


def snapshot(groups: dict[str, list[int]], fake: Upstream) -> dict[str, float]:
    """CPU seconds used so far by each process group and the machine, the upstream's call
    count, and the time."""
    taken = {name: cpu_seconds(pids) for name, pids in groups.items()}
    machine, (calls, connections) = machine_busy_seconds(), fake.stats()
    return {
        **taken,
        "machine": machine,
        "calls": calls,
        "connections": connections,
        "time": time.monotonic(),
    }


def measure(
    phase: str,
    target: Target,
    connections: int,
    seconds: float,
    *,
    warmup: float,
    others: dict[str, list[int]],
    fake: Upstream,
    steady: bool = False,
) -> Measurement:
    """Warm up, then one measured wrk run, with every process group's CPU time around it.

    With `steady`, rate and CPU are taken over a window that leaves out the first third of the
    run (connections opening, queues filling) and its last second (a partial one).
    """
    if warmup > 0:
        wrk(target, connections, warmup)
    groups = {**target.service_pids(), **others}
    load = load_average().split()[0]
    seconds = max(1, round(seconds))
    marks: dict[str, dict[str, float]] = {}
    started_at = time.time()
    # The steady window starts and ends on whole wall-clock seconds, as wrk's buckets do.
    first = math.ceil(started_at + seconds / 3)
    last = math.floor(started_at + seconds - 1)
    timers = [
        threading.Timer(
            at - time.time(), lambda key=key: marks.__setitem__(key, snapshot(groups, fake))
        )
        for key, at in (("from", first), ("to", last))
        if steady
    ]
    marks["start"] = snapshot(groups, fake)
    for timer in timers:
        timer.start()
    summary = wrk(target, connections, seconds, buckets=steady)
    for timer in timers:
        timer.join()
    marks["end"] = snapshot(groups, fake)
    count = summary["requests"]
    if steady:
        answered = sum(n for second, n in summary["buckets"] if first <= second < last)
        rate = answered / (last - first)  # seconds without an answer count too
        before, after = marks["from"], marks["to"]
    else:
        answered = count
        rate = count / (summary["duration_us"] / 1e6)
        before, after = marks["start"], marks["end"]
    elapsed = after["time"] - before["time"]
    cpu_ms = {name: 1000 * (after[name] - before[name]) / max(1, answered) for name in groups}
    cpu_ms["wrk"] = 1000 * summary["cpu_s"] / max(1, count)
    pct = summary["percentiles_us"]
    return Measurement(
        phase=phase,
        target=target.name,
        connections=connections,
        rate=rate,
        p50_ms=pct["50"] / 1000,
        p99_ms=pct["99"] / 1000,
        mean_ms=summary["mean_us"] / 1000,
        errors=sum(summary["errors"].values()),
        cpu_ms=cpu_ms,
        machine_cores=(after["machine"] - before["machine"]) / elapsed,
        load=load,
        upstream_per_answer=(after["calls"] - before["calls"]) / max(1, answered),
        new_connections=after["connections"] - before["connections"],
    )


# --- set-up -----------------------------------------------------------------------------


def postgres_pids() -> list[int]:
    """The embedded Postgres of the benchmarks and its backends (none with an external URL)."""
    pid_file = BENCH_DIR.parent / ".promptlogic" / "bench-pgdata" / "postmaster.pid"
    if os.environ.get("PROMPTLOGIC_DATABASE_URL") or not pid_file.exists():
        return []
    postmaster = int(pid_file.read_text().split("\n", 1)[0])
    return [postmaster, *children_of(postmaster)]


def check_run(url: str, key: str, variables: dict) -> dict:
    """One run answered by the upstream through the SDK (not the offline provider)."""
    response = httpx.post(
        url, json={"variables": variables}, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    result = response.json()
    assert response.status_code == 200, result
    assert result["provider"] != "offline", result
    assert result["parsed"], result
    return result


def rendered_messages(base: str, key: str) -> list[dict[str, str]]:
    response = httpx.post(
        f"{base}/v1/prompts/{PROMPT}/render",
        json={"variables": EXAMPLE_VARIABLES},
        headers={"Authorization": f"Bearer {key}"},
    )
    response.raise_for_status()
    return response.json()["messages"]


def direct_body(messages: list[dict[str, str]]) -> bytes:
    """The chat completion request the run sends upstream, byte for byte the same shape."""
    request = build_request(messages, MODEL, TRIAGE_RESPONSE_FORMAT, stream=False)
    return json.dumps(request).encode()


# --- the phases -------------------------------------------------------------------------


@dataclass(frozen=True)
class Durations:
    latency: float
    throughput: float
    delayed: float
    warmup: float


def run_phases(
    phases: str,
    targets: list[Target],
    fake: Upstream,
    durations: Durations,
    others: dict[str, list[int]],
    before_phase: Callable[[str, Target], None] | None = None,
) -> list[Measurement]:
    """Each phase for each target in turn; prints each measurement as it is taken."""
    plans = {
        "a": (1, 0.0, durations.latency, False),
        "b": (64, 0.0, durations.throughput, False),
        "c": (500, DELAY, durations.delayed, True),
    }
    results: list[Measurement] = []
    for phase in (p for p in phases if p in plans):
        connections, delay, seconds, steady = plans[phase]
        fake.set_delay(delay)
        for target in targets:
            if before_phase is not None:
                before_phase(phase, target)
            measurement = measure(
                phase,
                target,
                connections,
                seconds,
                warmup=0 if steady else durations.warmup,  # c leaves its ramp out instead
                others=others,
                fake=fake,
                steady=steady,
            )
            results.append(measurement)
            print(f"  {describe(measurement)}", flush=True)
    fake.set_delay(0)
    return results


def layers(
    base: str, run: Target, durations: Durations, others: dict[str, list[int]], fake: Upstream
) -> None:
    """Phase l: the same worker at concurrency 64 on ever more of the run path, so the CPU a
    run costs splits into HTTP + logging, authentication, render, and the rest of the run
    (provider call, output check, record)."""
    render_body = json.dumps({"variables": EXAMPLE_VARIABLES}).encode()
    steps = [
        Target("/healthz", f"{base}/healthz", None, run.key, run.service_pids),
        Target("/v1/me", f"{base}/v1/me", None, run.key, run.service_pids),
        Target(
            "render", f"{base}/v1/prompts/{PROMPT}/render", render_body, run.key, run.service_pids
        ),
        Target("run", run.url, run.body, run.key, run.service_pids),
    ]
    fake.set_delay(0)
    print(
        "\nl. one worker, c=64        req/s   service CPU ms/req  (+ over previous)  render workers"
    )
    previous = 0.0
    for step in steps:
        m = measure(
            "l", step, 64, durations.throughput, warmup=durations.warmup, others=others, fake=fake
        )
        service = m.cpu_ms["service"]
        print(
            f"   {step.name:<20} {m.rate:8,.0f}   {service:18.2f}  {service - previous:+17.2f}  "
            f"{m.cpu_ms['render workers']:14.2f}   (errors {m.errors}, load {m.load}, "
            f"cores busy {m.machine_cores:.2f})",
            flush=True,
        )
        previous = service


def describe(m: Measurement) -> str:
    cpu = "  ".join(f"{k}={v:.2f}" for k, v in m.cpu_ms.items())
    return (
        f"{m.phase} {m.target:<12} c={m.connections:<3} {m.rate:9,.0f} req/s  "
        f"p50={m.p50_ms:8.2f} ms  p99={m.p99_ms:8.2f} ms  errors={m.errors}  "
        f"load={m.load}  cores busy={m.machine_cores:.2f}  "
        f"upstream calls/answer={m.upstream_per_answer:.2f}  "
        f"new upstream connections={m.new_connections}  CPU ms/req: {cpu}"
    )


def report(results: list[Measurement]) -> None:
    if not results:
        return
    by = {(m.phase, m.target): m for m in results}
    names = list(dict.fromkeys(m.target for m in results))
    print("\nphase                                      " + "".join(f"{n:>16}" for n in names))

    def row(label: str, cell: Callable[[Measurement], str], phase: str) -> None:
        cells = [cell(by[(phase, n)]) if (phase, n) in by else "-" for n in names]
        print(f"{label:<43}" + "".join(f"{c:>16}" for c in cells))

    row("a. c=1, no delay: p50 ms", lambda m: f"{m.p50_ms:.2f}", "a")
    row("   p99 ms", lambda m: f"{m.p99_ms:.2f}", "a")
    if ("a", "upstream") in by:
        base = by[("a", "upstream")]
        row("   added p50 ms (minus upstream's)", lambda m: f"{m.p50_ms - base.p50_ms:.2f}", "a")
        row("   added p99 ms (minus upstream's)", lambda m: f"{m.p99_ms - base.p99_ms:.2f}", "a")
    row("   requests/s", lambda m: f"{m.rate:,.0f}", "a")
    row("b. c=64, no delay: requests/s", lambda m: f"{m.rate:,.0f}", "b")
    row("   p50 / p99 ms", lambda m: f"{m.p50_ms:.1f}/{m.p99_ms:.1f}", "b")
    row("   service CPU ms/request", lambda m: f"{service_cpu(m):.2f}", "b")
    row("   errors", lambda m: str(m.errors), "b")
    row("c. c=500, 1 s upstream delay: requests/s", lambda m: f"{m.rate:,.0f}", "c")
    # Little's law: with every answer 1 s late, rate x 1 s calls wait on the upstream at once;
    # the other connections' runs are queued inside the service.
    row("   in flight upstream (rate x 1 s)", lambda m: f"{m.rate * DELAY:,.0f}", "c")
    row("   p50 / p99 ms", lambda m: f"{m.p50_ms:.0f}/{m.p99_ms:.0f}", "c")
    row("   service CPU ms/request", lambda m: f"{service_cpu(m):.2f}", "c")
    row("   errors", lambda m: str(m.errors), "c")
    ours = "promptlogic"
    checks = [
        ("a", "added p50 <= 2 ms", lambda m: m.p50_ms - by[("a", "upstream")].p50_ms <= 2),
        ("b", ">= 500 runs/s at c=64", lambda m: m.rate >= 500),
        ("c", ">= 450 runs/s at c=500, 1 s delay", lambda m: m.rate >= 450),
    ]
    print()
    for phase, label, ok in checks:
        if (phase, ours) in by and (phase != "a" or ("a", "upstream") in by):
            met = "met" if ok(by[(phase, ours)]) and by[(phase, ours)].errors == 0 else "NOT met"
            print(f"target {label:<36} {met}")


def service_cpu(m: Measurement) -> float:
    return sum(v for k, v in m.cpu_ms.items() if k in ("service", "render workers"))


# --- profiling --------------------------------------------------------------------------


class Profiler:
    """Starts py-spy on promptlogic (and its render workers) as `phase` starts on it."""

    def __init__(self, py_spy: str, phase: str, seconds: float, output: Path) -> None:
        self.py_spy, self.phase, self.seconds, self.output = py_spy, phase, seconds, output
        self.process: subprocess.Popen[bytes] | None = None

    def __call__(self, phase: str, target: Target) -> None:
        if phase != self.phase or target.name != "promptlogic":
            return
        pid = target.service_pids()["service"][0]
        command = [self.py_spy, "record", "--pid", str(pid), "--subprocesses", "--rate", "200"]
        command += ["--format", "raw", "--output", str(self.output)]
        command += ["--duration", str(round(self.seconds))]
        self.process = subprocess.Popen(  # noqa: S603 - the user's py-spy
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        print(f"  py-spy samples pid {pid} and its children for {self.seconds:.0f} s")

    def wait(self) -> None:
        """Until py-spy has written its profile (before the server stops)."""
        if self.process is not None:
            self.process.wait(timeout=self.seconds + 60)
            print(f"profile: {self.output}  (read it with bench/profile_areas.py)")


# --- main -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--phases", default="abc", help="any of a, b, c, and l for layers (default: abc)"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="each measured run (a, b)")
    parser.add_argument("--delayed-seconds", type=float, default=30.0, help="each run of c")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--litellm", type=Path, help="a venv with `litellm[proxy]` installed")
    parser.add_argument("--log-level", default="info", help="promptlogic's (default: info)")
    parser.add_argument("--targets", help="only these, e.g. `promptlogic` (default: all)")
    parser.add_argument("--profile", metavar="PY_SPY", help="sample promptlogic with py-spy")
    parser.add_argument("--profile-phase", default="b", choices=["a", "b", "c"])
    parser.add_argument("--profile-output", type=Path, help="default: profile.txt in the logs")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    durations = Durations(args.seconds, args.seconds, args.delayed_seconds, args.warmup)
    settings = bench_settings()
    key = asyncio.run(seed_tenant(settings))
    workdir = Path(tempfile.mkdtemp(prefix="run-overhead-"))
    print(f"load average {load_average()}; logs in {workdir}")
    with contextlib.ExitStack() as stack:
        fake = stack.enter_context(upstream())
        env = {
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_API_KEY": UPSTREAM_KEY,
            "PROMPTLOGIC_LOG_LEVEL": args.log_level,
            "PROMPTLOGIC_SECRET_KEY": BENCH_SECRET,
        }
        log = stack.enter_context((workdir / "promptlogic.log").open("wb"))
        base, process = stack.enter_context(live_server(settings, env=env, output=log))
        run_url = f"{base}/v1/prompts/{PROMPT}/run"
        check_run(run_url, key, EXAMPLE_VARIABLES)
        body = direct_body(rendered_messages(base, key))
        server_pid = process.pid
        ours = Target(
            "promptlogic",
            run_url,
            json.dumps({"variables": EXAMPLE_VARIABLES}).encode(),
            key,
            lambda: {"service": [server_pid], "render workers": children_of(server_pid)},
        )
        targets = [
            Target("upstream", f"{fake.base_url}/chat/completions", body, UPSTREAM_KEY),
            ours,
        ]
        if args.litellm is not None:
            url, pid = stack.enter_context(litellm_proxy(args.litellm, fake.base_url, workdir))
            targets.append(
                Target(
                    "litellm",
                    f"{url}/v1/chat/completions",
                    body,
                    LITELLM_KEY,
                    lambda: {"service": [pid, *children_of(pid)]},
                )
            )
        others = {"upstream": [fake.process.pid], "postgres": postgres_pids()}
        profiler = None
        if args.profile:
            phase = args.profile_phase
            seconds = durations.delayed if phase == "c" else durations.warmup + args.seconds
            output = args.profile_output or workdir / f"profile-{phase}.txt"
            profiler = Profiler(args.profile, phase, seconds, output)
        if args.targets:
            targets = [target for target in targets if target.name in args.targets.split(",")]
        results = run_phases(args.phases, targets, fake, durations, others, profiler)
        if profiler is not None:
            profiler.wait()
        if "l" in args.phases:
            layers(base, ours, durations, others, fake)
    report(results)
    print(f"load average {load_average()}")


if __name__ == "__main__":
    main()
