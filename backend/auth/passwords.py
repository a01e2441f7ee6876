"""Password hashing with argon2id (argon2-cffi), under a concurrency cap.

One argon2id verification with the production parameters holds 64 MiB for ~50 ms of a core. Run in threads
without a cap, 16 parallel logins held a gigabyte (issue 8: 205 MB -> 923 MB) and took both cores from every
other tenant. `Passwords` lets `concurrency` hashes run at once, queues at most `queue` more, and refuses the
rest at once with 503 `server_busy` and `Retry-After`, so memory is bounded by the cap, not by the attackers.

With the production parameters the hashes run in worker *processes* (`isolate=True`) at nice 19, the lowest
CPU priority. The logins bench showed five production verifications in a thread of the app (the GIL released,
even at nice 10) taking tenant B's nearby p99 from ~20 ms to 100-250 ms on the busy 2-core machine, while the
same storm with the cheap parameters left it at 19 ms: 64 MiB of fresh memory per hash is faulted in inside the
app's own address space, and the app's other threads wait on it. In a worker process the faults and the memory
are the worker's, and the scheduler serves everything else first; on a saturated machine logins get slower
(and the bounded queue answers 503) instead of every other request. Tests keep threads (`isolate=False`).

Settings are passed in (issue 9: services do not read global settings); `fast` keeps the cheap parameters tests
need (they log in hundreds of times). A hash records its own parameters, so either hasher verifies both kinds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor, ThreadPoolExecutor
from functools import cache, partial
from multiprocessing import get_context
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backend.errors import DomainError
from backend.settings import Settings
from mobile_contract.errors import ErrorCode

BUSY_RETRY_AFTER_S = 1
HASHING_NICE = 19


def _lower_priority() -> None:
    """Runs in each hashing thread or process as it starts (on Linux a thread's nice value is its own)."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: hash at normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICE)


@cache
def hasher(fast: bool) -> PasswordHasher:
    if fast:
        return PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    return PasswordHasher()  # RFC 9106 low-memory profile: argon2id, t=3, m=64 MiB


def hash_password(password: str, *, fast: bool) -> str:
    return hasher(fast).hash(password)


def verify_password(password_hash: str, password: str, *, fast: bool) -> bool:
    try:
        return hasher(fast).verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class Passwords:
    """The app's one hasher: every hash and verification of a request goes through `verify` / `hash`."""

    def __init__(self, *, fast: bool, concurrency: int, queue: int, isolate: bool = False) -> None:
        if concurrency < 1 or queue < 0:
            raise ValueError("password hashing needs at least one slot and a queue of zero or more")
        self.fast = fast
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._isolate = isolate
        self._executor: Executor | None = None  # made on first use: no worker process for an app that never hashes
        self._queue = queue
        self._waiting = 0
        # Verified against when the username is unknown, so a wrong username costs as long as a wrong password
        # (no user enumeration by timing). Made once, on first use.
        self._dummy: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Passwords:
        return cls(
            fast=settings.argon2_fast,
            concurrency=settings.password_hash_concurrency,
            queue=settings.password_hash_queue,
            isolate=not settings.argon2_fast,
        )

    def _workers(self) -> Executor:
        if self._executor is None:
            if self._isolate:
                # spawn, not fork: the app has threads and an event loop that a forked child must not inherit.
                self._executor = ProcessPoolExecutor(
                    max_workers=self._concurrency, mp_context=get_context("spawn"), initializer=_lower_priority
                )
            else:
                self._executor = ThreadPoolExecutor(
                    max_workers=self._concurrency, thread_name_prefix="argon2", initializer=_lower_priority
                )
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    @property
    def waiting(self) -> int:
        return self._waiting

    async def dummy_hash(self) -> str:
        if self._dummy is None:  # hashed like any other (in a worker, under the cap), never on the event loop
            self._dummy = await self.hash("not-a-real-password")
        return self._dummy

    async def verify(self, password_hash: str, password: str) -> bool:
        # A module-level function and plain arguments: it must pickle, for a worker process.
        verified: bool = await self._run(partial(_verify_in_worker, password_hash, password, self.fast))
        return verified

    async def hash(self, password: str) -> str:
        hashed: str = await self._run(partial(_hash_in_worker, password, self.fast))
        return hashed

    async def _run(self, work: partial[Any]) -> Any:
        async with self._slot():
            try:
                return await asyncio.get_running_loop().run_in_executor(self._workers(), work)
            except BrokenExecutor as exc:
                # A worker died (killed for memory, say): start afresh on the next call; this one may retry.
                self.close()
                raise _busy() from exc

    def needs_rehash(self, password_hash: str) -> bool:
        return hasher(self.fast).check_needs_rehash(password_hash)

    def _slot(self) -> _Slot:
        if self._slots.locked() and self._waiting >= self._queue:
            raise _busy()
        return _Slot(self)


class _Slot:
    """One hashing slot: counted as waiting until the semaphore lets it in."""

    def __init__(self, owner: Passwords) -> None:
        self._owner = owner

    async def __aenter__(self) -> None:
        self._owner._waiting += 1
        try:
            await self._owner._slots.acquire()
        finally:
            self._owner._waiting -= 1

    async def __aexit__(self, *_: object) -> None:
        self._owner._slots.release()


def _busy() -> DomainError:
    return DomainError(
        ErrorCode.SERVER_BUSY, "Too many logins at once; retry in a moment.", retry_after_s=BUSY_RETRY_AFTER_S
    )


def _verify_in_worker(password_hash: str, password: str, fast: bool) -> bool:
    return verify_password(password_hash, password, fast=fast)


def _hash_in_worker(password: str, fast: bool) -> str:
    return hash_password(password, fast=fast)
