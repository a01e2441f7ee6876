"""A process's memory of locked customer codes: a locked code's entries answered without a transaction.

Once a code is locked (`CODE_ATTEMPTS` wrong codes, service.enter_code), every further entry is refused 423
whatever it says, until dispatch sends a new code. Refusing it through the table costs a transaction with two
row locks and a write per entry; the logins bench measured forty connections doing that (about 35 a second, even
tarpitted) taking another tenant's nearby p99 from ~10 ms to 100-360 ms, while the same rate of refusals answered
from memory (the login locks, auth/throttle.py) left it at its quiet value. So the route remembers, per job,
that the code its assigned technician just met was locked, and answers that technician's next entries from here
for `ttl_s` seconds (then one entry reads the table again, and refreshes the memory while it is still locked).

What it changes: a refused entry on a locked code no longer reaches the table, so `job_codes.attempts` counts
every code that was compared (each wrong code, in order, the lock at the limit) and the refusals that reached the
table, not each refusal answered from here. Nothing is compared here, so no guess goes uncounted.

Staleness: a resend in this process forgets the job at once (`forget`); one in another process is seen here
within `ttl_s` seconds, during which this process still answers 423 (the technician retries after the SMS comes).
The memory is keyed by the technician who met the lock: nobody else learns from it that the job exists.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from uuid import UUID

CODE_LOCK_MEMORY_S = 5.0
_LIMIT = 100_000


class KnownCodeLocks:
    def __init__(self, ttl_s: float = CODE_LOCK_MEMORY_S, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock  # public: tests move it
        self._until: dict[tuple[UUID, UUID], tuple[UUID, float]] = {}  # (tenant, job) -> (technician, until)

    def locked(self, tenant_id: UUID, job_id: UUID, user_id: UUID) -> bool:
        """Whether this user met this job's code locked less than `ttl_s` seconds ago."""
        entry = self._until.get((tenant_id, job_id))
        if entry is None:
            return False
        who, until = entry
        if until <= self.clock():
            del self._until[(tenant_id, job_id)]
            return False
        return who == user_id

    def remember(self, tenant_id: UUID, job_id: UUID, user_id: UUID) -> None:
        if len(self._until) >= _LIMIT:
            self._until.clear()  # bounded: forgetting a lock only means reading it from the table again
        self._until[(tenant_id, job_id)] = (user_id, self.clock() + self.ttl_s)

    def forget(self, tenant_id: UUID, job_id: UUID) -> None:
        """A new code was sent (it unlocks): the next entry is judged by the table."""
        self._until.pop((tenant_id, job_id), None)
