"""Domain errors with stable codes, and their one mapping to RFC 9457 problem+json answers."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import asyncpg
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolCheckoutTimeout

from backend import tarpit
from backend.bearer import bearer_token
from backend.db.engine import database_unavailable
from backend.db.hotpool import PoolTimeout
from backend.observability import UNAVAILABLE
from mobile_contract.errors import ErrorCode, Problem, problem_type, status_of
from sync.cursor import CursorRefused

log = logging.getLogger("groundwork")

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """A refusal the client can act on: `DomainError(code, detail)`. The answer's status comes from the code
    (mobile_contract.errors.STATUS), so it never drifts from the code a phone reads. `extra` becomes extension
    members of the problem.

    `keep_effects`: what the refused request already wrote must stay (a wrong customer code still counts as an
    attempt, or retrying would be a free brute force). The route commits before answering the problem, and the
    sync engine releases, rather than rolls back, the refused mutation's savepoint.
    `headers`: extra answer headers (`Retry-After` of a rate limit)."""

    def __init__(
        self,
        code: ErrorCode,
        detail: str,
        *,
        keep_effects: bool = False,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.status: int = status_of(code)
        self.detail: str = detail
        self.keep_effects = keep_effects
        self.headers = headers
        self.extra = extra


class RetryLater(DomainError):
    """A refusal that is about timing, not about the request: the same request will do after `retry_after_s`
    seconds, which the answer says in `Retry-After` (RFC 9110 section 10.2.3)."""

    def __init__(self, code: ErrorCode, detail: str, retry_after_s: int, **extra: Any) -> None:
        super().__init__(code, detail, **extra)
        self.retry_after_s = retry_after_s


def not_found(what: str) -> DomainError:
    # Another tenant's record answers exactly like a missing one: ids of other tenants reveal nothing.
    return DomainError(ErrorCode.NOT_FOUND, f"No {what} with this id is visible to you.")


def forbidden(detail: str) -> DomainError:
    return DomainError(ErrorCode.FORBIDDEN, detail)


def problem_response(
    status: int,
    code: ErrorCode,
    detail: str | None,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code.value,
    }
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    retry_after = extra.get("retry_after_s")
    if isinstance(retry_after, int):
        headers["Retry-After"] = str(retry_after)  # RFC 9110: whole seconds; the body carries the same number
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers or None)


def handle_domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    tarpit.hold(request, exc.code)  # a locked or too-frequent caller's answer waits, holding no connection
    response = problem_response(exc.status, exc.code, exc.detail, headers=exc.headers, **exc.extra)
    if isinstance(exc, RetryLater):
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def handle_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """The database is saturated (no connection within the pool's bound) or away (restarting, unreachable):
    nothing was done, and the same request will do later. Logged without the request's body or headers."""
    UNAVAILABLE.inc()
    log.warning("database unavailable: %s %s (%s: %s)", request.method, request.scope["path"], type(exc).__name__, exc)
    response = problem_response(
        503, ErrorCode.SERVICE_UNAVAILABLE, "The service is busy or restarting; nothing was done. Retry later."
    )
    response.headers["Retry-After"] = str(request.app.state.settings.retry_after_s)
    return response


def handle_cursor_refused(_: Request[Any, Any, Any], exc: CursorRefused) -> Response[dict[str, Any]]:
    return problem_response(exc.status, exc.code, exc.detail)


def handle_validation_error(_: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    items = exc.extra if isinstance(exc.extra, list) else []
    errors = [
        {"field": str(item.get("key") or ""), "message": str(item.get("message")), "source": item.get("source")}
        for item in items
        if isinstance(item, dict)
    ]
    detail = "The request does not match the contract; see `errors`."
    if not errors and exc.detail:
        detail = exc.detail
    return problem_response(422, ErrorCode.VALIDATION_FAILED, detail, errors=errors)


_HTTP_CODES = {
    401: ErrorCode.NOT_AUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.BODY_TOO_LARGE,
}


def handle_http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if status == 400:
        # Litestar raises 400 for bodies it cannot decode at all (not JSON, wrong content type): for the
        # client that is one more way of not matching the contract.
        return problem_response(422, ErrorCode.VALIDATION_FAILED, exc.detail, errors=[])
    code = _HTTP_CODES.get(status)
    if code is None:
        if status >= 500:
            return handle_internal_error(_, exc)
        code = ErrorCode.VALIDATION_FAILED
    # Headers Litestar put on the exception are part of the answer: `Allow` on a 405 (RFC 9110 section 15.5.6).
    return problem_response(status, code, exc.detail, headers=dict(exc.headers or {}))


# SQLSTATE classes of errors a client's value can cause (PostgreSQL appendix A). The contract bounds every input
# (mobile_contract.base), so reaching these means a bound is missing somewhere: answered as the client's problem
# with a stable code, and logged so the missing bound gets found.
_DATA_EXCEPTION = "22"  # numeric out of range, invalid text (U+0000), datetime overflow, string too long...
_RETRYABLE = {"40001", "40P01"}  # serialization failure, deadlock: a concurrent writer; retrying is safe
_CHECK = {"23502", "23514"}  # not null, check constraint: a value the schema refuses
_OUT_OF_RANGE = "A value is outside what can be stored; see the contract's limits."


def _sqlstate(exc: BaseException) -> str | None:
    for candidate in _chain(exc):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str):
            return state
    return None


def _refers_to_caller(request: Request[Any, Any, Any], exc: BaseException) -> bool:
    """Whether a foreign-key violation names the caller's own user (or tenant) as the missing row: the account
    was deleted while its token still lives. Read from the error's detail, so no query is needed here."""
    token = bearer_token(request)
    if token is None:
        return False
    try:
        principal = request.app.state.tokens.decode(token)  # the app's TokenCodec (backend.auth.tokens)
    except DomainError:
        return False
    detail = " ".join(str(getattr(c, "detail", "") or "") for c in _chain(exc))
    return str(principal.user_id) in detail or str(principal.tenant_id) in detail


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending and len(found) < 8:
        candidate = pending.pop()
        if candidate is None or candidate in found:
            continue
        found.append(candidate)
        pending += [getattr(candidate, "orig", None), candidate.__cause__, candidate.__context__]
    return found


def handle_database_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """A database error that escaped a service: a problem with a stable code, never a bare 500 for what the
    client sent. Only what is truly ours (a broken query) stays a 500 `internal_error`; an outage is a 503."""
    if database_unavailable(exc):
        return handle_unavailable(request, exc)
    state = _sqlstate(exc)
    if state == "23505":
        # A race between two writers of the same record: a conflict the client may retry.
        return problem_response(409, ErrorCode.CONFLICT, "Another request changed this record at the same time; retry.")
    if state == "23503":
        # A foreign key to a row that is gone. When the row is the caller's own user, the token is what is stale.
        if _refers_to_caller(request, exc):
            return problem_response(401, ErrorCode.TOKEN_INVALID, "This account no longer exists; log in again.")
        _log_refusal(request, exc, state)
        return problem_response(409, ErrorCode.CONFLICT, "A record this refers to no longer exists; pull and retry.")
    if state in _RETRYABLE:
        return problem_response(409, ErrorCode.CONFLICT, "Another request got in the way; retrying is safe.")
    if state is not None and (state.startswith(_DATA_EXCEPTION) or state in _CHECK):
        _log_refusal(request, exc, state)
        return problem_response(
            422,
            ErrorCode.VALIDATION_FAILED,
            "A value is outside what can be stored; see the contract's limits.",
            errors=[],
        )
    if _is_client_side_data_error(exc):
        _log_refusal(request, exc, state)
        return problem_response(
            422,
            ErrorCode.VALIDATION_FAILED,
            "A value is outside what can be stored; see the contract's limits.",
            errors=[],
        )
    return handle_internal_error(request, exc)


def _is_client_side_data_error(exc: Exception) -> bool:
    """asyncpg refuses some values before they reach the server (an int past int64 for a bigint)."""
    return any(isinstance(candidate, asyncpg.exceptions.DataError) for candidate in _chain(exc))


def _where(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {
        "method": request.method,
        "path": request.url.path,
        "request_id": getattr(request.state, "request_id", None),
    }


def _log_refusal(request: Request[Any, Any, Any], exc: Exception, state: str | None) -> None:
    # Not a 500, but a bound missing from the contract: worth finding. Never the body or the token.
    where = _where(request)
    log.warning(
        "database refused a client value (sqlstate %s) on %s %s, request %s: %s",
        state,
        where["method"],
        where["path"],
        where["request_id"],
        type(exc).__name__,
        extra={key: where[key] for key in ("method", "path")},  # the record carries the request id
    )


def handle_internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """The catch-all. A lost database connection can surface from anywhere (a flush, a commit, a lazy
    connect), so it is recognised here too. Everything else is a bug: logged with the method, the path and the
    request id; never the body, the query string or the headers (tokens)."""
    if database_unavailable(exc):
        return handle_unavailable(request, exc)
    where = _where(request)
    log.exception(
        "unhandled error on %s %s, request %s",
        where["method"],
        where["path"],
        where["request_id"],
        exc_info=exc,
        extra={key: where[key] for key in ("method", "path")},  # the record carries the request id
    )
    return problem_response(
        HTTP_500_INTERNAL_SERVER_ERROR, ErrorCode.INTERNAL_ERROR, "Something broke on our side; please retry later."
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    DomainError: handle_domain_error,
    CursorRefused: handle_cursor_refused,
    ValidationException: handle_validation_error,
    NotAuthorizedException: handle_http_error,
    PermissionDeniedException: handle_http_error,
    NotFoundException: handle_http_error,
    MethodNotAllowedException: handle_http_error,
    HTTPException: handle_http_error,
    DBAPIError: handle_database_error,
    asyncpg.PostgresError: handle_database_error,
    asyncpg.exceptions.DataError: handle_database_error,
    PoolTimeout: handle_unavailable,
    PoolCheckoutTimeout: handle_unavailable,
    Exception: handle_internal_error,
}


_PROBLEM_DESCRIPTIONS = {
    401: "Not authenticated: no, expired or invalid token (`code` tells which)",
    403: "Authenticated, but the role may not do this",
    404: "No such record visible to the caller (other tenants' records included)",
    409: "Conflicts with what is stored (`code` tells which)",
    410: "Gone: the sync cursor can no longer be served (`resync_required`); pull again without one",
    413: "Body too large",
    415: "Not a supported image type (sniffed from the bytes, not the header)",
    423: "Locked: too many wrong attempts",
    422: "The request does not match the contract (`errors` lists the fields)",
    400: "A cursor that is malformed or was made for another query (`invalid_cursor`), or an upload cut short",
    429: "Too many requests (a rate limit, or calls of this user already running): retry after `Retry-After`",
    503: "The server is overloaded or its database is unreachable: retry after `Retry-After` seconds",
}
# What a 415 means on a JSON endpoint, whatever the route's own 415 is about (backend/json_body.py).
_JSON_415 = "The body is not JSON: send it as `application/json` (`json_required`)"


def problem_description(status: int, *, json_body: bool = False) -> str:
    if status == 415 and json_body:
        return _JSON_415
    return _PROBLEM_DESCRIPTIONS[status]


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries of the problems a route may answer with, so phone developers see them in the contract."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_PROBLEM_DESCRIPTIONS[status],
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in (*statuses, 422, 503)
    }
