"""What an operator watches: request ids, log lines, Prometheus metrics.

- Request ids: every request gets one (a well-formed incoming `X-Request-ID` is kept, anything else is replaced),
  every answer carries it back (errors and unknown routes included), and every log line written while the request
  runs carries it, through a context variable read by the log record factory. Handlers and helpers read it from
  `request.state.request_id`.
- Logs: one handler on the root logger (and uvicorn's), text or JSON (`GROUNDWORK_LOG_FORMAT`).
- Metrics: the standard `prometheus_client`, served at `/metrics`. Request counts and latency by route template
  (never by raw path, so ids and probes cannot blow up the label sets), pool waits, the queue's depth and the
  sync lag; the last two are read from PostgreSQL when Prometheus scrapes, not on the request path.

The request wrapper sits outside Litestar's router (`install`), so 404s and 405s are counted and carry their id.
It is on the hot path of every request: it does a few dictionary look-ups and two clock reads, nothing more.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import sys
import time
from typing import IO, TYPE_CHECKING, Any

from litestar import Request, Response, get
from litestar.datastructures import State
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from pythonjsonlogger.json import JsonFormatter

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import ASGIApp, Message, Receive, Send

    from backend.db.engine import Database
    from backend.settings import Settings

log = logging.getLogger("groundwork.ops")

REQUEST_ID_HEADER = "X-Request-ID"
_HEADER_KEY = b"x-request-id"
# Accepted from a client or a proxy: bounded, and only characters that are safe in a header and a log line.
_WELL_FORMED = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served in this task (None outside a request: start-up, the worker)."""
    return _request_id.get()


# Request ids are random (16 hex digits from os.urandom), read from the kernel 512 at a time: one getrandom system
# call per request was ~3% of a no-change pull (strace, bench/). A forked child starts with an empty store, so two
# processes never hand out the same ids.
_ID_BATCH = 512
_ids: list[str] = []


def new_request_id() -> str:
    if not _ids:
        pool = os.urandom(8 * _ID_BATCH).hex()
        _ids.extend(pool[i : i + 16] for i in range(0, len(pool), 16))
    return _ids.pop()


os.register_at_fork(after_in_child=_ids.clear)


def accepted_request_id(value: bytes) -> str | None:
    """An incoming `X-Request-ID` worth keeping (a proxy's or the phone's, so its logs and ours join up), or
    None: too long, empty, or with characters that could forge a log line or a header."""
    return value.decode("ascii") if _WELL_FORMED.fullmatch(value) else None


# -- logs ---------------------------------------------------------------------------------------------------------

_make_record = logging.getLogRecordFactory()


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _make_record(*args, **kwargs)
    record.request_id = _request_id.get() or "-"
    return record


# Every record, whoever logs it (our code, SQLAlchemy, uvicorn), carries the request id.
logging.setLogRecordFactory(_record_with_request_id)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s"
_handler: logging.Handler | None = None
QUIET_LOGGERS = ("sqlalchemy", "backend.db.engine.TimedQueuePool")  # the pool's logger is named after its class


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """One handler on the root logger and on uvicorn's loggers, text or JSON. Safe to call again (tests build
    many apps): the handler is replaced, never added twice."""
    global _handler
    handler = logging.StreamHandler(stream or sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(
            JsonFormatter(JSON_FIELDS, rename_fields={"levelname": "level", "name": "logger", "asctime": "time"})
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # SQLAlchemy logs every statement at INFO when its loggers inherit INFO: keep them to warnings and errors.
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # uvicorn configures its own loggers before it builds the app; their lines take our format too.
    for name in ("uvicorn", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = [handler]
        uvicorn_logger.propagate = False
    _handler = handler
    return handler


# -- metrics ------------------------------------------------------------------------------------------------------

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "groundwork_http_requests_total",
    "Answered HTTP requests, by route template, method and status.",
    ("method", "route", "status"),
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "groundwork_http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer, by route template and method.",
    ("method", "route"),
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
POOL_WAIT = Histogram(
    "groundwork_db_pool_wait_seconds",
    "Waits for a database connection that found none idle, by pool (orm: SQLAlchemy, hot: the lean read pool).",
    ("pool",),
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
POOL_TIMEOUTS = Counter(
    "groundwork_db_pool_timeouts_total",
    "Waits for a connection that gave up (answered 503), by pool.",
    ("pool",),
    registry=REGISTRY,
)
POOL_CONNECTIONS = Gauge(
    "groundwork_db_pool_connections",
    "Connections of each pool by state (in_use, idle; waiting: requests queued for one).",
    ("pool", "state"),
    registry=REGISTRY,
)
UNAVAILABLE = Counter(
    "groundwork_unavailable_total",
    "Requests answered 503 because the database was saturated or away.",
    registry=REGISTRY,
)
LIMITED = Counter(
    "groundwork_user_concurrency_refusals_total",
    "Requests answered 429 because their user already ran the allowed number of such calls, by call.",
    ("call",),
    registry=REGISTRY,
)
DATABASE_UP = Gauge(
    "groundwork_database_up", "1 when the last scrape could query the database, else 0.", registry=REGISTRY
)
QUEUE_DEPTH = Gauge(
    "groundwork_queue_depth",
    "Background jobs due and not yet done, by kind (push.deliver is the push queue).",
    ("kind",),
    registry=REGISTRY,
)
QUEUE_OLDEST = Gauge(
    "groundwork_queue_oldest_due_seconds",
    "How long the oldest due background job of each kind has been waiting.",
    ("kind",),
    registry=REGISTRY,
)
SYNC_LAG_SECONDS = Gauge(
    "groundwork_sync_lag_seconds",
    "Age of the oldest open writing transaction on the server: every sync cursor is held back to it.",
    registry=REGISTRY,
)
SYNC_LAG_XIDS = Gauge(
    "groundwork_sync_lag_xids",
    "Transaction ids between the sync cursor a pull would hand out now and the newest one.",
    registry=REGISTRY,
)


def observe_pool_wait(pool: str, waited_s: float, timed_out: bool) -> None:
    POOL_WAIT.labels(pool).observe(waited_s)
    if timed_out:
        POOL_TIMEOUTS.labels(pool).inc()


# One statement per scrape, on the hot pool: the due queue by kind (its partial index), and the sync lag.
_SCRAPE_SQL = """
SELECT 'queue' AS what, kind, count(*)::float8 AS value,
       coalesce(extract(epoch FROM now() - min(run_at)), 0)::float8 AS extra
  FROM background_jobs WHERE done_at IS NULL AND failed_at IS NULL AND run_at <= now() GROUP BY kind
UNION ALL
SELECT 'lag', '', coalesce(extract(epoch FROM now() - min(xact_start)), 0)::float8,
       (SELECT (pg_snapshot_xmax(s)::text::bigint - pg_snapshot_xmin(s)::text::bigint)::float8
          FROM pg_current_snapshot() AS s)
  FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
"""


async def _scrape_database(database: Database) -> None:
    hot = database.hot
    POOL_CONNECTIONS.labels("hot", "in_use").set(hot.size - hot.idle)
    POOL_CONNECTIONS.labels("hot", "idle").set(hot.idle)
    POOL_CONNECTIONS.labels("hot", "waiting").set(hot.waiting)
    orm = database.engine.sync_engine.pool
    checkedout = getattr(orm, "checkedout", None)
    checkedin = getattr(orm, "checkedin", None)
    if callable(checkedout) and callable(checkedin):
        POOL_CONNECTIONS.labels("orm", "in_use").set(checkedout())
        POOL_CONNECTIONS.labels("orm", "idle").set(checkedin())
    try:
        rows = await hot.fetch(_SCRAPE_SQL)
    except Exception as error:  # metrics are served even when the database is away (then database_up 0)
        log.warning("metrics: the database could not be read (%s)", type(error).__name__)
        DATABASE_UP.set(0)
        return
    DATABASE_UP.set(1)
    QUEUE_DEPTH.clear()
    QUEUE_OLDEST.clear()
    for row in rows:
        if row["what"] == "queue":
            QUEUE_DEPTH.labels(row["kind"]).set(row["value"])
            QUEUE_OLDEST.labels(row["kind"]).set(row["extra"])
        else:
            SYNC_LAG_SECONDS.set(row["value"])
            SYNC_LAG_XIDS.set(row["extra"] or 0)


@get("/metrics", include_in_schema=False, cache=False)
async def metrics(state: State) -> Response[bytes]:
    """Prometheus text exposition. Operator-facing: keep it off the public load balancer (README)."""
    await _scrape_database(state.database)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


# -- the request wrapper ------------------------------------------------------------------------------------------

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestContext:
    """The outermost layer of the app: request id in, request id out, one count and one latency per answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # (method, route, status) -> (counter child, histogram child): labels() takes a lock and hashes strings;
        # a dict look-up of a tuple is a fraction of that.
        self._children: dict[tuple[str, str, int], tuple[MetricWrapperBase, MetricWrapperBase]] = {}

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:  # Any: http, websocket, lifespan
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = None
        for name, value in scope["headers"]:
            if name == _HEADER_KEY:
                request_id = accepted_request_id(value)
                break
        if request_id is None:
            request_id = new_request_id()
        scope["state"]["request_id"] = request_id
        header = (_HEADER_KEY, request_id.encode("ascii"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = _request_id.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _request_id.reset(token)
            self._count(scope, status, time.perf_counter() - started)

    def _count(self, scope: Any, status: int, elapsed: float) -> None:
        method = scope["method"]
        if method not in _METHODS:
            method = "OTHER"
        # Litestar's router puts the matched template into the scope; no match (404) is one label, not one per path.
        route = scope.get("path_template") or "unmatched"
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (HTTP_REQUESTS.labels(method, route, str(status)), HTTP_LATENCY.labels(method, route))
            self._children[key] = children
        counter, histogram = children
        counter.inc()  # type: ignore[attr-defined]
        histogram.observe(elapsed)  # type: ignore[attr-defined]


def install(app: Litestar) -> Litestar:
    """Wrap the app's whole request handling, router and exception handling included."""
    app.asgi_handler = RequestContext(app.asgi_handler)
    return app


def request_id_of(request: Request[Any, Any, Any]) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None
