"""The `eval` command: run an eval on a promptlogic server and hold it to a bar, for product CI.

It is a client of the HTTP API and nothing else: a CI job needs only PROMPTLOGIC_URL and
PROMPTLOGIC_API_KEY, no database and none of the server's settings. Its exit code tells a
prompt below the bar (1) from a job that could not judge it (2, 3, 4); docs/evals.md lists them.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer

from promptlogic.cli.common import JsonOption

# Exit codes (docs/evals.md): CI must tell a worse prompt from a broken job.
MET, NOT_MET, USAGE, EVAL_FAILED, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 4, 130

FINISHED = frozenset({"succeeded", "failed", "cancelled"})
DEFAULT_LABEL = "production"  # the server's default selector, and the gate a --version uses
DEFAULT_BAR = 1.0  # without --min-pass or a gate: every case must pass, as a gate's default
REQUEST_TIMEOUT = 30.0
POLL_RETRIES = 5  # consecutive failed polls tolerated: a network blip must not fail the job
PLAIN_EVERY = 10.0  # seconds between progress lines when stderr is a log, not a terminal
SHOWN_FAILURES = 5
SPEC_PARAMS = ("path", "value", "pattern", "max_ms", "max_usd", "prompt")


class _Stop(Exception):
    """Ends the command with `code`, after `lines` on stderr."""

    def __init__(self, code: int, *lines: str) -> None:
        super().__init__(*lines)
        self.code = code
        self.lines = lines


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to ask the server for, and the pass rate the answer must reach."""

    body: dict[str, Any]
    bar: float
    bar_from: str


# Evaluators from the command line


def _value(text: str) -> Any:
    """A parameter's value: JSON when it parses as JSON (not NaN or Infinity), else text."""

    def refuse(constant: str) -> Any:
        raise ValueError(constant)

    try:
        return json.loads(text, parse_constant=refuse)
    except ValueError:
        return text


def _parse_evaluator(text: str) -> dict[str, Any]:
    """`TYPE[:KEY=VALUE,…]` for the simple evaluators, or a whole JSON object for any."""
    if text.lstrip().startswith("{"):
        try:
            spec = json.loads(text)
        except ValueError as exc:
            message = f"{text!r} is not JSON: {exc}"
            raise typer.BadParameter(message, param_hint="--evaluator") from None
        return spec
    kind, _, params = text.partition(":")
    if not re.fullmatch(r"[a-z_]+", kind):
        raise typer.BadParameter(f"{text!r} is not TYPE[:KEY=VALUE,…]", param_hint="--evaluator")
    spec: dict[str, Any] = {"type": kind}
    for pair in filter(None, params.split(",")):
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise typer.BadParameter(
                f"{pair!r} in {text!r} is not KEY=VALUE", param_hint="--evaluator"
            )
        spec[key.strip()] = _value(value)
    return spec


def _read_evaluators(path: Path) -> list[Any]:
    """A JSON list of evaluators, or an object with one under `evaluators` (a gate's body)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        message = f"cannot read {path}: {exc}"
        raise typer.BadParameter(message, param_hint="--evaluators") from None
    if isinstance(data, dict) and "evaluators" in data:
        data = data["evaluators"]
    if not isinstance(data, list):
        raise typer.BadParameter(
            f"{path} holds no list of evaluators (a JSON list, or an object with `evaluators`)",
            param_hint="--evaluators",
        )
    return data


# The server


def _environment() -> tuple[str, str]:
    """The server's base URL and the API key: a client reads these two variables only."""
    url = os.environ.get("PROMPTLOGIC_URL", "").strip().rstrip("/")
    key = os.environ.get("PROMPTLOGIC_API_KEY", "").strip()
    missing = [
        name
        for name, value in (("PROMPTLOGIC_URL", url), ("PROMPTLOGIC_API_KEY", key))
        if not value
    ]
    if missing:
        raise _Stop(
            USAGE,
            f"{' and '.join(missing)} not set: `eval` needs the server's base URL and an API key "
            "with the `run` and `read` scopes in the environment",
        )
    if not re.match(r"https?://[^/\s]", url):
        raise _Stop(USAGE, "PROMPTLOGIC_URL must start with http:// or https://")
    if not re.fullmatch(r"[!-~]+", key):  # it goes in a header; never echo it
        raise _Stop(USAGE, "PROMPTLOGIC_API_KEY holds characters no API key has")
    return url, key


def _shown(url: str) -> str:
    """The URL without any user:password part, fit to print."""
    return re.sub(r"//[^/@]*@", "//", url, count=1)


def _problem(response: httpx.Response) -> list[str]:
    """A problem+json answer as lines: its detail, then each field problem the detail lacks."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not body.get("detail"):
        return [f"the server answered {response.status_code} {response.reason_phrase}"]
    detail = str(body["detail"])
    lines = [f"{detail} ({response.status_code})"]
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            line = f"{error.get('field')}: {error.get('message')}"
            if line not in detail:
                lines.append(f"  {line}")
    return lines


class _Server:
    """The API at PROMPTLOGIC_URL; transport failures and problems become `_Stop`s."""

    def __init__(self, url: str, key: str) -> None:
        self.url = _shown(url)
        self._http = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {key}", "User-Agent": "promptlogic-eval"},
            timeout=REQUEST_TIMEOUT,
        )

    def close(self) -> None:
        self._http.close()

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        try:
            return self._http.request(method, path, json=body, headers=headers)
        except httpx.TransportError as exc:
            reason = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
            raise _Stop(UNREACHABLE, f"cannot reach {self.url} ({reason})") from None

    def json(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        return self.answer(self.call(method, path, body, headers))

    def answer(self, response: httpx.Response) -> Any:
        """The answer's JSON; a 4xx is the caller's mistake (2), a 5xx the server's (4)."""
        if response.status_code >= 500:
            first, *rest = _problem(response)
            raise _Stop(UNREACHABLE, f"the server failed: {first}", *rest)
        if response.status_code >= 400:
            raise _Stop(USAGE, *_problem(response))
        try:
            return response.json()
        except ValueError:
            raise _Stop(
                USAGE, f"the answer from {self.url} is not JSON: is it a promptlogic server?"
            ) from None


# Planning, waiting, reporting


def _gate(server: _Server, prompt: str, label: str) -> dict[str, Any]:
    """The label's promotion gate, which supplies evaluators, dataset and bar when none given."""
    response = server.call("GET", f"/v1/prompts/{quote(prompt, safe='')}/gates/{quote(label)}")
    if response.status_code == 404:
        first, *rest = _problem(response)
        raise _Stop(
            USAGE, f"no evaluators given (--evaluator, --evaluators) and no gate: {first}", *rest
        )
    return server.answer(response)


def _plan(
    server: _Server,
    body: dict[str, Any],
    specs: list[Any],
    *,
    gate: str | None,
    min_pass: float | None,
) -> _Plan:
    """The eval's body and bar: the given evaluators, or the gate's with its dataset and bar."""
    if specs:
        body = {**body, "evaluators": specs}
        default, source = DEFAULT_BAR, "the default"
    else:
        label = gate or body.get("label") or DEFAULT_LABEL
        found = _gate(server, body["prompt"], label)
        body = {"dataset": found["dataset"], **body, "evaluators": found["evaluators"]}
        default, source = float(found["min_pass_rate"]), f"the {label} gate"
    if min_pass is not None:
        return _Plan(body, min_pass, "--min-pass")
    return _Plan(body, default, source)


@contextmanager
def _progress(started: dict[str, Any], *, as_json: bool) -> Iterator[Callable[[dict], None]]:
    """A bar on a terminal; in a CI log a line now and then (none with --json)."""
    total = started["progress"]["total"]
    if sys.stderr.isatty():
        with typer.progressbar(
            length=total, label=f"eval {started['id'][:8]}", file=sys.stderr, show_pos=True
        ) as bar:
            yield lambda body: bar.update(body["progress"]["completed"] - bar.pos)
        return
    if as_json:
        yield lambda body: None
        return
    shown: dict[str, Any] = {"status": None, "completed": None, "at": 0.0}

    def line(body: dict[str, Any]) -> None:
        completed, now = body["progress"]["completed"], time.monotonic()
        if body["status"] == shown["status"] and (
            completed == shown["completed"] or now - shown["at"] < PLAIN_EVERY
        ):
            return
        shown.update(status=body["status"], completed=completed, at=now)
        typer.echo(f"eval {body['id']}: {body['status']}, {completed} of {total} runs", err=True)

    line(started)
    yield line


def _start(server: _Server, body: dict[str, Any], wait: float) -> dict[str, Any]:
    """Start the eval, retrying while the server cannot be reached, under one Idempotency-Key:
    a retry after an answer that got lost gets the same eval, never a second one."""
    headers = {"Idempotency-Key": f"promptlogic-eval-{uuid.uuid4()}"}
    attempts = 1
    while True:
        try:
            return server.json("POST", "/v1/evals", body, headers)
        except _Stop as stop:
            if stop.code != UNREACHABLE or attempts >= POLL_RETRIES:
                raise
        attempts += 1
        time.sleep(wait)


def _poll(server: _Server, path: str, failures: int) -> tuple[dict[str, Any] | None, int]:
    """One look at the eval; a failure to reach the server is retried a few times over."""
    try:
        return server.json("GET", path), 0
    except _Stop as stop:
        if stop.code != UNREACHABLE or failures + 1 >= POLL_RETRIES:
            raise
        return None, failures + 1


def _wait(
    server: _Server,
    started: dict[str, Any],
    show: Callable[[dict], None],
    timeout: float,
    poll: float,
) -> tuple[dict[str, Any], bool]:
    """Poll until the eval ends or `timeout` passes; returns the last body and whether it ended."""
    path = f"/v1/evals/{started['id']}"
    deadline = time.monotonic() + timeout
    body, failures = started, 0
    while body["status"] not in FINISHED:
        left = deadline - time.monotonic()
        if left <= 0:
            return body, False
        time.sleep(min(poll, left))
        seen, failures = _poll(server, path, failures)
        if seen is not None:
            body = seen
            show(body)
    return body, True


def _cancel(server: _Server, body: dict[str, Any]) -> dict[str, Any]:
    """Stop an eval nobody waits for any more (its runs cost money); best effort."""
    try:
        response = server.call("POST", f"/v1/evals/{body['id']}:cancel")
    except _Stop:
        return body
    try:
        return response.json() if response.status_code == 200 else body
    except ValueError:
        return body


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def _describe(spec: dict[str, Any]) -> str:
    """An evaluator in a few words: its type and what it looks for."""
    params = [f"{key}={_brief(spec[key])}" for key in SPEC_PARAMS if spec.get(key) is not None]
    text = " ".join([spec.get("type", "?"), *params])
    return text if len(text) <= 40 else text[:39] + "…"


def _brief(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _failures(body: dict[str, Any]) -> list[str]:
    """The first failed cases with the reason of their first failed evaluator."""
    lines = []
    for result in [r for r in body.get("results") or [] if not r["passed"]][:SHOWN_FAILURES]:
        reason = result.get("error") or next(
            (s.get("reason") for s in result["scores"] if not s.get("passed")), ""
        )
        reason = " ".join(str(reason).split())
        reason = reason if len(reason) <= 100 else reason[:99] + "…"
        lines.append(f"  case {result['case_id']} (attempt {result['attempt']}): {reason}")
    return lines


def _met(summary: dict[str, Any] | None, bar: float) -> bool:
    """Counted, not the rounded rate: 2 of 3 meets a bar of 0.6667 and of 2/3."""
    if not summary or not summary.get("results"):
        return False
    return summary["passed"] >= bar * summary["results"] - 1e-9


def _table(body: dict[str, Any], plan: _Plan, url: str) -> str:
    """The summary as aligned rows of text."""
    summary = body.get("summary") or {}
    selector = f"v{body['version']}" + (f" ({body['label']})" if body.get("label") else "")
    rows = [
        ("eval", f"{body['id']}  {url}/v1/evals/{body['id']}"),
        ("prompt", f"{body['prompt']} {selector}"),
        ("dataset", f"{body['dataset']} revision {body['dataset_revision']}"),
        ("status", body["status"]),
    ]
    if summary.get("results"):
        verdict = body["status"]  # a bar is met only by an eval that ran to the end
        if verdict == "succeeded":
            verdict = "met" if _met(summary, plan.bar) else "NOT MET"
        rows.append(
            (
                "pass rate",
                f"{_percent(summary['pass_rate'])} ({summary['passed']} of {summary['results']}),"
                f" bar {_percent(plan.bar)} from {plan.bar_from}: {verdict}",
            )
        )
        rows.append(("mean score", f"{summary['mean_score']:.3f}"))
        specs = body.get("evaluators") or []
        for index, item in enumerate(summary.get("evaluators") or []):
            spec = specs[index] if index < len(specs) else {"type": item["evaluator"]}
            rows.append((f"  {index + 1}. {_describe(spec)}", f"{item['mean_score']:.3f}"))
        rows.append(("failed runs", str(summary.get("failed_runs", 0))))
        rows.append(("cost", _cost(summary)))
        latency = summary.get("latency_ms") or {}
        rows.append(("latency", f"p50 {_ms(latency.get('p50'))}, p95 {_ms(latency.get('p95'))}"))
        variance = summary.get("score_variance")
        rows.append(("variance", "- (no repeats)" if variance is None else f"{variance:.4f}"))
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    failed = _failures(body)
    if failed:
        lines += [f"failed cases (first {len(failed)}):", *failed]
    return "\n".join(lines)


def _cost(summary: dict[str, Any]) -> str:
    cost = summary.get("cost")
    if cost is None:
        return "unknown"
    return f"${cost:.6f}" + ("" if summary.get("cost_known", True) else " (some runs unknown)")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _verdict(body: dict[str, Any], plan: _Plan, ended: bool, timeout: float) -> int:
    """The exit code of a started eval, with its reason on stderr."""
    if not ended:
        typer.echo(f"error: eval not finished within {timeout:g} s; cancelled it", err=True)
        return EVAL_FAILED
    if body["status"] != "succeeded":
        reason = body.get("error") or "no reason given"
        typer.echo(f"error: the eval ended {body['status']}: {reason}", err=True)
        return EVAL_FAILED
    if not _met(body.get("summary"), plan.bar):
        rate = _percent((body.get("summary") or {}).get("pass_rate"))
        typer.echo(f"eval below the bar: {rate} passed, {_percent(plan.bar)} needed", err=True)
        return NOT_MET
    return MET


def _run(server: _Server, plan: _Plan, *, as_json: bool, timeout: float, poll: float) -> int:
    """Start the eval, wait for it, print the report; the exit code."""
    started = _start(server, plan.body, poll)
    try:
        with _progress(started, as_json=as_json) as show:
            body, ended = _wait(server, started, show, timeout, poll)
    except KeyboardInterrupt:
        _cancel(server, started)
        raise _Stop(INTERRUPTED, f"interrupted: cancelled eval {started['id']}") from None
    if not ended:
        body = _cancel(server, body)
    if as_json:
        typer.echo(json.dumps(body, indent=2))
    else:
        typer.echo(_table(body, plan, server.url))
    return _verdict(body, plan, ended, timeout)


def _request(
    prompt: str,
    version: int | None,
    label: str | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The eval's body but its evaluators: a version or a label, and the options given."""
    if version is not None and label is not None:
        raise typer.BadParameter("give --version or --label, not both", param_hint="--version")
    selector = {"version": version} if version is not None else {"label": label or DEFAULT_LABEL}
    return {"prompt": prompt, **selector, **{k: v for k, v in extra.items() if v is not None}}


def _specs(
    given: list[str], file: Path | None, *, gate: str | None, dataset: str | None
) -> list[Any]:
    """The evaluators of the command line (the file's first), checked against the other flags."""
    specs = [_parse_evaluator(text) for text in given]
    if file is not None:
        specs = _read_evaluators(file) + specs
    if specs and gate is not None:
        raise typer.BadParameter(
            "the gate supplies the evaluators: drop --evaluator(s)", param_hint="--gate"
        )
    if specs and dataset is None:
        raise typer.BadParameter(
            "give the dataset to run the evaluators on", param_hint="--dataset"
        )
    return specs


def _fail(stop: _Stop, key: str) -> None:
    """The reason on stderr, the key masked: the server never echoes it, and this keeps it so."""
    for index, line in enumerate(stop.lines):
        text = line.replace(key, "***") if key else line
        typer.echo(f"error: {text}" if index == 0 else text, err=True)


def evaluate(
    prompt: Annotated[str, typer.Argument(metavar="PROMPT", help="The prompt's name.")],
    version: Annotated[int | None, typer.Option(min=1, help="The version to evaluate.")] = None,
    label: Annotated[
        str | None,
        typer.Option(help="Evaluate the version this label points at now (default: production)."),
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="The dataset (default: the gate's, without evaluators).")
    ] = None,
    evaluator: Annotated[
        list[str] | None,
        typer.Option(
            "--evaluator",
            "-e",
            metavar="TYPE[:KEY=VALUE,…]",
            help="An evaluator, repeatable: `exact`, `json_field:path=priority`, "
            "`latency:max_ms=3000,weight=0.5`, or a JSON object. Values are JSON, else text.",
        ),
    ] = None,
    evaluators_file: Annotated[
        Path | None,
        typer.Option(
            "--evaluators",
            metavar="FILE",
            exists=True,
            dir_okay=False,
            help="A JSON list of evaluators (or a gate's JSON); with --evaluator, both count.",
        ),
    ] = None,
    gate: Annotated[
        str | None,
        typer.Option(
            metavar="LABEL",
            help="Without evaluators, take them, the dataset and the bar from this label's "
            "gate (default: --label, else production).",
        ),
    ] = None,
    min_pass: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="The pass rate to reach, 0 to 1 (default: the gate's, else 1: every case).",
        ),
    ] = None,
    repeat: Annotated[int | None, typer.Option(min=1, help="Run each case N times.")] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Cases run at a time (server default 4).")
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=1.0, help="Seconds to wait before cancelling it (exit 3).")
    ] = 1800.0,
    poll: Annotated[float, typer.Option(min=0.1, help="Seconds between status checks.")] = 2.0,
    as_json: JsonOption = False,
) -> None:
    """Run an eval on the server at PROMPTLOGIC_URL (key: PROMPTLOGIC_API_KEY), wait for it,
    print its summary. Exit 0 bar met, 1 not met, 2 usage or request refused, 3 eval failed,
    cancelled or timed out, 4 server unreachable or failing."""
    extra = {"dataset": dataset, "repeat": repeat, "concurrency": concurrency}
    body = _request(prompt, version, label, extra)
    specs = _specs(evaluator or [], evaluators_file, gate=gate, dataset=dataset)
    key = ""
    try:
        url, key = _environment()
        server = _Server(url, key)
        try:
            plan = _plan(server, body, specs, gate=gate, min_pass=min_pass)
            code = _run(server, plan, as_json=as_json, timeout=timeout, poll=poll)
        finally:
            server.close()
    except _Stop as stop:
        _fail(stop, key)
        raise typer.Exit(stop.code) from None
    except KeyboardInterrupt:  # not click's Abort: its exit code 1 would read "bar not met"
        typer.echo("error: interrupted", err=True)
        raise typer.Exit(INTERRUPTED) from None
    raise typer.Exit(code)
