"""How request bodies are decoded: JSON nested past the decoder's stack is the client's problem, not a 500.

msgspec raises RecursionError on about 1,000 levels of nesting (reproduced: `[` * 1000 on any JSON route, login
included). Catching it where the body is decoded costs nothing on the hot paths; shallower but still deep JSON is
refused by the contract's free-form JSON bound (mobile_contract.base.MAX_JSON_DEPTH).
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from backend.errors import DomainError
from mobile_contract.base import MAX_JSON_DEPTH
from mobile_contract.errors import ErrorCode


class BoundedRequest(Request[Any, Any, Any]):
    """The app's request class (`Litestar(request_class=...)`)."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError as exc:
            raise DomainError(
                ErrorCode.VALIDATION_FAILED,
                f"The body is nested too deep; free-form JSON may be {MAX_JSON_DEPTH} deep.",
            ) from exc
