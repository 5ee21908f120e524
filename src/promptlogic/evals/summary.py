"""What an eval's results add up to, and how two evals compare, case by case.

Pure functions over result rows, so the API, the CLI and the UI report the same figures.
A case "passes" when every evaluator passed its threshold; with repeats, each attempt counts
once in the pass rate, and the spread of a case's scores across its attempts is its variance.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt of one case, as the summary needs it."""

    case_id: str
    attempt: int
    passed: bool
    score: float
    scores: Sequence[dict[str, Any]]  # each evaluator's {"type", "score", "passed", …}
    latency_ms: int | None
    cost: float | None
    failed_run: bool


def _percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarize(outcomes: Iterable[Outcome]) -> dict[str, Any]:
    """The figures of an eval: pass rate, mean score per evaluator, cost, latency p50/p95 and
    the variance of scores across repeats."""
    rows = list(outcomes)
    if not rows:
        return {"results": 0, "passed": 0, "pass_rate": None, "mean_score": None}
    by_evaluator: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        for index, score in enumerate(row.scores):
            by_evaluator[f"{index}:{score['type']}"].append(float(score["score"]))
    by_case: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        by_case[row.case_id].append(row.score)
    spreads = [statistics.pvariance(scores) for scores in by_case.values() if len(scores) > 1]
    latencies = [float(row.latency_ms) for row in rows if row.latency_ms is not None]
    costs = [row.cost for row in rows if row.cost is not None]
    passed = sum(row.passed for row in rows)
    return {
        "results": len(rows),
        "cases": len(by_case),
        "passed": passed,
        "pass_rate": round(passed / len(rows), 4),
        "mean_score": round(statistics.fmean(row.score for row in rows), 4),
        "evaluators": [
            {"evaluator": key, "mean_score": round(statistics.fmean(values), 4)}
            for key, values in by_evaluator.items()
        ],
        "failed_runs": sum(row.failed_run for row in rows),
        "cost": round(sum(costs), 6) if costs else None,
        "cost_known": len(costs) == len(rows),
        "latency_ms": {"p50": _percentile(latencies, 0.5), "p95": _percentile(latencies, 0.95)},
        "score_variance": round(statistics.fmean(spreads), 6) if spreads else None,
    }


def _per_case(outcomes: Iterable[Outcome]) -> dict[str, tuple[float, float]]:
    """Each case's pass rate and mean score over its attempts."""
    attempts: dict[str, list[Outcome]] = defaultdict(list)
    for row in outcomes:
        attempts[row.case_id].append(row)
    return {
        case: (
            sum(row.passed for row in rows) / len(rows),
            statistics.fmean(row.score for row in rows),
        )
        for case, rows in attempts.items()
    }


def compare(base: Iterable[Outcome], head: Iterable[Outcome]) -> dict[str, Any]:
    """`head` against `base`, per case both have: a case regressed when it passed (more often,
    or with a higher mean score) in `base` than in `head`, improved the other way round."""
    before, after = _per_case(base), _per_case(head)
    cases = []
    for case in sorted(before.keys() & after.keys()):
        (base_rate, base_score), (head_rate, head_score) = before[case], after[case]
        if (head_rate, head_score) < (base_rate, base_score):
            change = "regressed"
        elif (head_rate, head_score) > (base_rate, base_score):
            change = "improved"
        else:
            change = "same"
        cases.append(
            {
                "case_id": case,
                "change": change,
                "base": {"pass_rate": base_rate, "score": round(base_score, 4)},
                "head": {"pass_rate": head_rate, "score": round(head_score, 4)},
            }
        )
    return {
        "cases": cases,
        "regressed": sum(case["change"] == "regressed" for case in cases),
        "improved": sum(case["change"] == "improved" for case in cases),
        "same": sum(case["change"] == "same" for case in cases),
        "only_in_base": sorted(before.keys() - after.keys()),
        "only_in_head": sorted(after.keys() - before.keys()),
    }
