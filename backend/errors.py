"""Domain errors with stable codes, and their one mapping to RFC 9457 problem+json answers."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

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
from sqlalchemy.exc import IntegrityError

from mobile_contract.errors import ErrorCode, Problem, problem_type
from sync.cursor import CursorRefused

log = logging.getLogger("groundwork")

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """A refusal the client can act on. `extra` becomes extension members of the problem."""

    def __init__(self, code: ErrorCode, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.status = status
        self.detail = detail
        self.extra = extra


def not_found(what: str) -> DomainError:
    # Another tenant's record answers exactly like a missing one: ids of other tenants reveal nothing.
    return DomainError(ErrorCode.NOT_FOUND, 404, f"No {what} with this id is visible to you.")


def forbidden(detail: str) -> DomainError:
    return DomainError(ErrorCode.FORBIDDEN, 403, detail)


def problem_response(
    status: int, code: ErrorCode, detail: str | None, *, errors: list[dict[str, Any]] | None = None, **extra: Any
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
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    retry_after = extra.get("retry_after_s")
    if isinstance(retry_after, int):
        headers["Retry-After"] = str(retry_after)  # RFC 9110: whole seconds; the body carries the same number
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers or None)


def handle_domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    return problem_response(exc.status, exc.code, exc.detail, **exc.extra)


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
    return problem_response(status, code, exc.detail)


def handle_integrity_error(request: Request[Any, Any, Any], exc: IntegrityError) -> Response[dict[str, Any]]:
    """A unique violation is a race between two writers of the same record: a conflict the client may retry.
    Every other integrity error is a bug (services check what clients can get wrong) and stays a 500."""
    if getattr(exc.orig, "sqlstate", None) == "23505":
        return problem_response(409, ErrorCode.CONFLICT, "Another request changed this record at the same time; retry.")
    return handle_internal_error(request, exc)


def handle_internal_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error", exc_info=exc)
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
    IntegrityError: handle_integrity_error,
    Exception: handle_internal_error,
}


_PROBLEM_DESCRIPTIONS = {
    401: "Not authenticated: no, expired or invalid token (`code` tells which)",
    403: "Authenticated, but the role may not do this",
    404: "No such record visible to the caller (other tenants' records included)",
    409: "Conflicts with what is stored (`code` tells which)",
    410: "Gone: the sync cursor is too old; pull again without one",
    413: "Body too large",
    415: "Not a supported image type (sniffed from the bytes, not the header)",
    423: "Locked: too many wrong attempts",
    422: "The request does not match the contract (`errors` lists the fields)",
    429: "Too many attempts: wait `retry_after_s` seconds (also the `Retry-After` header)",
    503: "The server is busy: retry after `retry_after_s` seconds (also the `Retry-After` header)",
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries of the problems a route may answer with, so phone developers see them in the contract."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_PROBLEM_DESCRIPTIONS[status],
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in (*statuses, 422)
    }
