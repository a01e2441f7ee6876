"""A JSON endpoint reads JSON only: a body sent as text/plain or as a form is refused, not parsed as if it were."""

from __future__ import annotations

from typing import Any

from litestar import Request

from backend.errors import DomainError
from mobile_contract.errors import ErrorCode


def is_json_media_type(media_type: str) -> bool:
    media_type = media_type.strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


class JsonOnlyRequest(Request[Any, Any, Any]):
    """The app's request class. `json()` is where Litestar turns every JSON body into data (each `data:` parameter
    goes through it), and it ignores the Content-Type: checking here covers every JSON route, present and future,
    and no route that reads its body another way (a photo upload streams raw bytes).

    A body without a Content-Type is read as JSON: a client that says nothing is not contradicting the contract,
    and older phone builds send none."""

    async def json(self) -> Any:
        media_type, _ = self.content_type
        if media_type and not is_json_media_type(media_type):
            raise DomainError(
                ErrorCode.JSON_REQUIRED,
                f"This endpoint reads a JSON body; it was sent as {media_type!r}. Send it as application/json.",
            )
        return await super().json()
