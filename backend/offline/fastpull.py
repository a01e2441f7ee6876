"""The no-change pull without Litestar's per-request machinery: a front door on the app for POST /v1/sync/pull.

A phone polls POST /v1/sync/pull, and most polls find nothing: one index lookup in PostgreSQL, then, on the Python
side, mostly Litestar routing the request, resolving the handler's arguments (the body, the request), validating
them and rendering the answer (~110 of the ~390 Python calls a pull cost, the largest share of its CPU, measured
with cProfile in bench/). On the ordinary path this layer does that work itself: reads the body, decodes it with
one prebuilt msgspec decoder, authenticates with the same TokenCodec and user-state cache, calls the same
`engine.pull` through the route's own PullPages, which encodes the answer (an empty page is a precomputed byte
string around the cursor). On anything else (another path or method, an invalid Host, a body too large or not
matching the contract, no or a bad token, a cursor the engine refuses, any error) it hands the request, body
replayed, to the app as Litestar runs it, so every problem answer stays the one the route gives. The route's
signature stays the documented contract.

It sits outside Litestar's router and exception middleware (inside RequestContext, which still gives every answer
its request id and metrics): as route middleware it paid the router, the exception layer and the route's own
middleware stack on every poll (~25 us of the ~160 us a pull cost, py-spy and cProfile in bench/).
"""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING, Any

import msgspec
from litestar._asgi.utils import is_valid_host
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

from backend.auth.tokens import TokenCodec
from backend.auth.userstate import UserStates
from backend.db.engine import Database
from backend.errors import DomainError
from backend.limits import Call, UserConcurrency
from mobile_contract.sync import PullRequest

if TYPE_CHECKING:
    from backend.offline.routes import PullPages  # the route module imports this one

PATH = "/v1/sync/pull"
_DECODER = msgspec.json.Decoder(PullRequest)
_AUTHORIZATION = b"authorization"
_HOST = b"host"
_HEADERS_JSON = (b"content-type", b"application/json")


class FastPull:
    """The front door of POST /v1/sync/pull (see the module docstring): wraps the app's ASGI handler; `pages` is
    the pull route's own PullPages."""

    __slots__ = ("app", "pages")

    def __init__(self, app: ASGIApp, pages: PullPages) -> None:
        self.app = app
        self.pages = pages

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:  # Any: http, websocket, lifespan
        # Exactly what Litestar routes to the pull handler's fast case; a trailing slash, a root path or an invalid
        # Host (Litestar answers 400) go the ordinary way.
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        host = _header(scope, _HOST)
        if host and not is_valid_host(host):
            await self.app(scope, receive, send)
            return
        limit = scope["litestar_app"].request_max_body_size
        body, complete = await _read_body(receive, limit if isinstance(limit, int) else None)
        if not complete:  # too large (Litestar answers 413), or the client went away
            await self.app(scope, _replay(body, receive, more=True), send)
            return
        answer = await _answer(scope, body, self.pages)
        if answer is None:
            await self.app(scope, _replay(body, receive), send)
            return
        scope["path_template"] = PATH  # as Litestar's router sets it: the metrics' route label (observability.py)
        headers = [_HEADERS_JSON]
        # Litestar's compression middleware sits inside the router, so a large page is gzipped here, by the app's
        # compression settings (a first sync is megabytes of JSON).
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
            return await pages.encoded(database, state.cursors, principal, data)
    except Exception:  # the route runs it again and answers as it does (cursor refused: 400/410; a bug: 500)
        return None


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
