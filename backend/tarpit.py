"""A tarpit for abuse refusals: the answer is held, the connection and the CPU are not.

A closed-loop attacker (forty connections POSTing a wrong code, sixteen guessing a password) sends its next
request the moment the last one is answered. A refusal that is answered at once, however cheap, then costs the
server thousands of requests a second on the event loop every other tenant shares (the logins bench: 1,700
refused code entries a second took tenant B's nearby p99 to 6.5x its quiet value). Held for about a second, the
same storm is about one request a second per attacking connection, whatever the refusal cost.

How: the error handler marks the request (`hold`), and the `Tarpit` layer, outermost but for the request id,
waits before it forwards the answer's first message. By then the handler has returned and its dependencies are
closed, so the session has given its connection back: a held answer is a sleeping coroutine and an open socket,
nothing else. Waits are jittered (0.5x-1.5x), so parallel guessers do not come back in one burst, and bounded in
number (`max_held`): past it, refusals are answered at once, so a flood of connections cannot make the tarpit
itself the thing that runs out of memory.

Held: the refusals that say "too often" or "locked", the ones a loop hits again and again (`HELD`). Not held:
ordinary errors a phone makes once (validation, not found), and answers that did work (a wrong password was
verified; a wrong code was counted).

`sleep` and `jitter` are injectable: tests pass a fake sleep that records the waits (and what was held meanwhile)
instead of waiting.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request
from litestar.types import ASGIApp, Message, Receive, Send

from mobile_contract.errors import ErrorCode

# The refusals a loop hits again and again: "you are locked", "too many at once", "too often", "too busy".
HELD: frozenset[ErrorCode] = frozenset(
    {
        ErrorCode.TOO_MANY_ATTEMPTS,
        ErrorCode.TOO_MANY_CONCURRENT,
        ErrorCode.CODE_ATTEMPTS_EXCEEDED,
        ErrorCode.CODE_RESEND_LIMITED,
        ErrorCode.SERVER_BUSY,
    }
)

_STATE_KEY = "tarpit"


def _jitter() -> float:
    return 0.5 + secrets.randbelow(1001) / 1000


class Holds:
    """The tarpit's settings and its count of answers held right now (one per app)."""

    def __init__(
        self,
        delay_s: float,
        *,
        max_held: int = 10_000,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = _jitter,
    ) -> None:
        self.delay_s = delay_s
        self.max_held = max_held
        self.sleep = sleep
        self.jitter = jitter
        self.held = 0

    async def wait(self) -> bool:
        """Hold one answer; False (at once) when the tarpit is off or full."""
        if self.delay_s <= 0 or self.held >= self.max_held:
            return False
        self.held += 1
        try:
            await self.sleep(self.delay_s * self.jitter())
        finally:
            self.held -= 1
        return True


def hold(request: Request[Any, Any, Any], code: ErrorCode) -> None:
    """Called by the error handlers: mark this answer for the tarpit when its code is a held refusal."""
    if code in HELD:
        request.scope["state"][_STATE_KEY] = True


class Tarpit:
    """ASGI layer: an answer marked by `hold` waits (`Holds.wait`) before its first message leaves."""

    def __init__(self, app: ASGIApp, holds: Holds) -> None:
        self.app = app
        self.holds = holds

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def held_send(message: Message) -> None:
            if message["type"] == "http.response.start" and state.pop(_STATE_KEY, False):
                await self.holds.wait()
            await send(message)

        await self.app(scope, receive, held_send)
