"""The lead pool's clock: every rule of the pool reads the time from here (routes, the sync collection and
mutation) or is handed `now` (the scheduler's sweeps). Tests pin it and move it; nothing sleeps."""

from __future__ import annotations

from datetime import UTC, datetime


class Clock:
    def __init__(self) -> None:
        self._pinned: datetime | None = None

    def now(self) -> datetime:
        return self._pinned if self._pinned is not None else datetime.now(UTC)

    def pin(self, at: datetime | None) -> None:
        """Stop the clock at `at` (None: back to the wall clock)."""
        self._pinned = at


CLOCK = Clock()
