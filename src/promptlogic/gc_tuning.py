"""Garbage-collector settings for a long-running async server.

With hundreds of runs in flight, a worker holds many live objects, and CPython's default
young-generation threshold (700 allocations) starts a collection that walks them every few
requests: at 500 concurrent runs that was a third of the worker's CPU (`bench/run_overhead.py`,
phase c). Collecting the young generation every 50 000 allocations instead, and freezing what
start-up created (modules, settings, caches' skeletons) out of every later collection, keeps
reference cycles collected while spending the CPU on runs.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
OLDER_THRESHOLDS = (50, 100)


def tune_for_serving() -> None:
    """Call once the app has started: what exists now lives as long as the process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
