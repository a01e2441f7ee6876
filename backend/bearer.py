"""The bearer token of a request, as RFC 6750 sends it: `Authorization: Bearer <token>`. Imports nothing of ours,
so both the dependencies (who the caller is) and the error handlers (does a failure name the caller) read it."""

from __future__ import annotations

from typing import Any

from litestar import Request


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    """The token the request carries, or None when it sends none (or not as a bearer token)."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return token.strip()
