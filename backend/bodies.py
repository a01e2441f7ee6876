"""How request bodies are decoded: JSON nested past the decoder's stack is the client's problem, not a 500.

msgspec raises RecursionError on about 1,000 levels of nesting (reproduced: `[` * 1000 on any JSON route, login
included). Catching it where the body is decoded costs nothing on the hot paths; shallower but still deep JSON is
refused by the contract's free-form JSON bound (mobile_contract.base.MAX_JSON_DEPTH).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.exceptions import InternalServerException

from backend.errors import DomainError
from backend.json_body import JsonOnlyRequest
from mobile_contract.base import MAX_JSON_DEPTH
from mobile_contract.errors import ErrorCode


class BoundedRequest(JsonOnlyRequest):
    """The app's request class (`Litestar(request_class=...)`): JSON only (JsonOnlyRequest), and never deeper
    than the decoder can go."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError as exc:
            raise DomainError(
                ErrorCode.VALIDATION_FAILED,
                f"The body is nested too deep; free-form JSON may be {MAX_JSON_DEPTH} deep.",
            ) from exc


async def body_chunks(request: Request[Any, Any, Any]) -> AsyncIterator[bytes]:
    """A raw request body (a photo, an import file), chunk by chunk. A phone that loses its network mid-upload is
    an everyday event, not a server error: Litestar reports the disconnect as a 500 (and we would log it as a bug),
    so it becomes a 400 here, which nobody will read, and nothing is stored (the client retries)."""
    try:
        async for chunk in request.stream():
            yield chunk
    except InternalServerException as exc:  # raised by stream() only for a disconnect or a consumed stream
        raise DomainError(ErrorCode.VALIDATION_FAILED, "The upload ended before the whole body arrived.") from exc
