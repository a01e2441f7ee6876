"""The no-change pull without Litestar's per-request machinery: a middleware on the pull route only.

A phone polls POST /v1/sync/pull, and most polls find nothing: one index lookup in PostgreSQL, then, on the Python
side, mostly Litestar resolving the handler's arguments (the body, the request), validating them and rendering the
answer (~110 of the ~390 Python calls a pull costs, the largest share of its CPU, measured with cProfile in
bench/). On the ordinary path this middleware does that work itself: reads the body, decodes it with one prebuilt
msgspec decoder, authenticates with the same TokenCodec, calls the same `engine.pull` and encodes the same
PullResponse with msgspec. On anything else (a body too large or not matching the contract, no or a bad token, a
cursor the engine refuses, any error) it hands the request, body replayed, to the route as Litestar runs it, so
every problem answer stays the one the route gives. The route's signature stays the documented contract.
"""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

from backend.auth.tokens import TokenCodec
from backend.auth.userstate import UserStates
from backend.db.engine import Database
from backend.errors import DomainError
from backend.limits import Call, UserConcurrency
from mobile_contract.sync import PullRequest

if TYPE_CHECKING:
    from backend.offline.routes import PullPages  # the route module imports this one

_DECODER = msgspec.json.Decoder(PullRequest)
_ENCODER = msgspec.json.Encoder()
_AUTHORIZATION = b"authorization"
_HEADERS_JSON = (b"content-type", b"application/json")


class FastPull:
    """Route middleware of POST /v1/sync/pull (see the module docstring). `pages` is the route's own PullPages."""

    __slots__ = ("app", "pages")

    def __init__(self, app: ASGIApp, pages: PullPages) -> None:
        self.app = app
        self.pages = pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = scope["litestar_app"].request_max_body_size
        body, complete = await _read_body(receive, limit if isinstance(limit, int) else None)
        if not complete:  # too large (Litestar answers 413), or the client went away
            await self.app(scope, _replay(body, receive, more=True), send)
            return
        answer = await _answer(scope, body, self.pages)
        if answer is None:
            await self.app(scope, _replay(body, receive), send)
            return
        headers = [_HEADERS_JSON]
        # Litestar's compression middleware sits inside route middleware, so a large page is gzipped here, by the
        # app's compression settings (a first sync is megabytes of JSON).
        config = scope["litestar_app"].compression_config
        if config is not None and len(answer) >= config.minimum_size and b"gzip" in _header(scope, b"accept-encoding"):
            answer = gzip.compress(answer, compresslevel=config.gzip_compress_level, mtime=0)
            headers += [(b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")]
        headers.append((b"content-length", str(len(answer)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer, "more_body": False})


async def _answer(scope: Scope, body: bytes, pages: PullPages) -> bytes | None:
    """The encoded answer of the ordinary path, or None: let the route answer (and raise what it raises)."""
    token = _bearer(scope)
    if token is None:
        return None
    state = scope["litestar_app"].state
    tokens: TokenCodec = state.tokens
    user_states: UserStates = state.user_states
    limits: UserConcurrency = state.limits
    try:
        principal = tokens.decode(token)
        await user_states.check(principal)  # disabled or changed since the token: the route answers the 401
        data = _DECODER.decode(body)
    except (DomainError, msgspec.DecodeError):
        return None
    database: Database = state.database
    try:
        with limits.hold(Call.SYNC, principal.user_id):
            response = await pages(database, state.cursors, principal, data)
    except Exception:  # the route runs it again and answers as it does (cursor refused: 400/410; a bug: 500)
        return None
    return _ENCODER.encode(response)


def _header(scope: Scope, wanted: bytes) -> bytes:
    for name, value in scope["headers"]:
        if name == wanted:
            return bytes(value)
    return b""


def _bearer(scope: Scope) -> str | None:
    scheme, _, token = _header(scope, _AUTHORIZATION).decode("latin-1").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def _read_body(receive: Receive, limit: int | None) -> tuple[bytes, bool]:
    """The body, and whether it is all of it: False once it exceeds `limit` or the client went away (then what
    was read so far, to replay)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if limit is not None and size > limit:
            return b"".join(chunks), False
        if not message.get("more_body", False):
            return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), True


def _replay(body: bytes, receive: Receive, *, more: bool = False) -> Receive:
    """A receive that gives `body` first, then whatever the client still sends."""
    sent = False

    async def replay() -> ReceiveMessage:
        nonlocal sent
        if not sent:
            sent = True
            message: Any = {"type": "http.request", "body": body, "more_body": more}
            return message  # type: ignore[no-any-return]
        return await receive()

    return replay
