"""Progress lines for humans and the one error type whose message says what to do next."""

from __future__ import annotations

import sys


class BenchError(RuntimeError):
    """The benchmark cannot go on; the message says what to do next."""


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
