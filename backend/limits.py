"""Per-user concurrency limits on the expensive calls, so one user's burst cannot starve other tenants.

Each process keeps, per call and per user, how many such calls are running. Past the limit
(`GROUNDWORK_USER_CONCURRENCY`) a call is refused at once with 429 `too_many_concurrent` and `Retry-After`, before
it takes a database connection: a phone retrying in a loop, or forty parallel code entries, then hold at most a
few connections and the rest of the pool keeps serving everyone else. A refusal does nothing, so the client
simply sends the same request again later. The count is in-process (no shared state, no round trip): with N API
processes a user may run N times the limit, which still bounds each process's pool.

Login is limited by the username it names (there is no user yet), so parallel guesses at one account queue
behind a few password hashes instead of taking every core.

Some calls must run one at a time per record rather than be refused: forty parallel entries of one job's code
must each be counted, in order (each sees the attempts before it). `in_turn` queues them per key *before* they take a
connection: the waiting entries hold nothing but a coroutine, the running one holds one connection, so one job's
storm uses one connection of the pool however many entries it sends. The queue is bounded (`TURN_QUEUE` waiting
per key); past it an entry is refused like a burst (429 `too_many_concurrent`, nothing counted: nothing was
checked). Also in-process: across N processes the row lock (`SELECT ... FOR UPDATE`) still serialises them.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from backend.errors import RetryLater
from backend.observability import LIMITED
from mobile_contract.errors import ErrorCode


class Call(enum.StrEnum):
    """The expensive calls, each with its own count per user (a sync does not block a photo upload)."""

    SYNC = "sync"  # push and pull, both the native and the WatermelonDB endpoints
    PHOTO_UPLOAD = "photo_upload"
    DISPATCH = "dispatch"
    JOB_CODE = "job_code"
    LOGIN = "login"


TURN_QUEUE = 64  # calls waiting their turn per key (`in_turn`), beyond the one running


class _Turns:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()  # FIFO: waiters are let in in the order they came
        self.users = 0  # running + waiting


class UserConcurrency:
    def __init__(self, limit: int, retry_after_s: int, *, turn_queue: int = TURN_QUEUE) -> None:
        if limit < 1:
            raise ValueError("a per-user concurrency limit must be at least 1")
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.turn_queue = turn_queue
        self._running: dict[tuple[Call, Any], int] = {}
        self._turns: dict[tuple[Call, Any], _Turns] = {}

    @asynccontextmanager
    async def in_turn(self, call: Call, key: Any) -> AsyncIterator[None]:
        """`async with limits.in_turn(Call.JOB_CODE, (tenant_id, job_id)): ...`: one at a time per key, the others
        waiting (holding nothing) in arrival order; RetryLater (429) when `turn_queue` already wait."""
        turn_key = (call, key)
        turns = self._turns.get(turn_key)
        if turns is None:
            turns = self._turns[turn_key] = _Turns()
        elif turns.users > self.turn_queue:
            LIMITED.labels(call.value).inc()
            raise RetryLater(
                ErrorCode.TOO_MANY_CONCURRENT,
                f"{turns.users - 1} of these requests are already waiting their turn; retry later.",
                self.retry_after_s,
            )
        turns.users += 1
        try:
            async with turns.lock:
                yield
        finally:
            turns.users -= 1
            if not turns.users:
                del self._turns[turn_key]  # no entry per record ever touched: the map stays small

    def waiting_turn(self, call: Call, key: Any) -> int:
        """Calls running or waiting their turn for `key` (tests, metrics)."""
        turns = self._turns.get((call, key))
        return 0 if turns is None else turns.users

    def hold(self, call: Call, key: Any) -> _Slot:
        """`with limits.hold(Call.SYNC, principal.user_id): ...`: a slot for the duration of the block, or
        RetryLater (429) when the user already holds `limit` of them. Not a wait: nothing queues here."""
        slot_key = (call, key)
        running = self._running.get(slot_key, 0)
        if running >= self.limit:
            LIMITED.labels(call.value).inc()
            raise RetryLater(
                ErrorCode.TOO_MANY_CONCURRENT,
                f"You already have {running} of these requests running; wait for them, then retry.",
                self.retry_after_s,
            )
        self._running[slot_key] = running + 1
        return _Slot(self._running, slot_key)

    def running(self, call: Call, key: Any) -> int:
        return self._running.get((call, key), 0)


class _Slot:
    __slots__ = ("_key", "_running")

    def __init__(self, running: dict[tuple[Call, Any], int], key: tuple[Call, Any]) -> None:
        self._running = running
        self._key = key

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        left = self._running[self._key] - 1
        if left:
            self._running[self._key] = left
        else:
            del self._running[self._key]  # no entry per user who ever called: the map stays small
