"""Serve the fake OpenAI server in the foreground: `python -m tests.fakes --port 8100 --delay 1`.

For benchmarks, whose upstream must live in its own process so it does not share the GIL with
the service being measured, and for trying a client by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import threading

from tests.fakes.openai_server import FakeOpenAI, Reply


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake OpenAI-compatible server.")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each reply")
    args = parser.parse_args()
    fake = FakeOpenAI(keep_requests=0)  # nothing reads the record; keep memory flat
    fake.port = args.port
    fake.set_default(Reply(delay=args.delay))
    fake.set_default(Reply(delay=args.delay), endpoint="embeddings")
    with fake:
        print(f"fake OpenAI at {fake.base_url} (Ctrl-C stops)")  # noqa: T201
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
