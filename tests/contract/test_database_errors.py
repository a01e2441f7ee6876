"""Database errors that escape a service become problems with a stable code, never a bare 500; a deleted user's
token making writes answers 401 token_invalid (the foreign key names the caller's own row), not a 500."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from mobile_contract.auth import Role
from tests.factories import Factory, fix
from tests.tasks.helpers import campaign_body

Client = AsyncTestClient  # type: ignore[type-arg]


async def test_a_deleted_users_writes_answer_token_invalid(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    tech = await factory.user(tenant, Role.OPS)
    poi = await factory.poi(tenant)
    async with factory.database.sessions() as session:
        await session.execute(text("DELETE FROM users WHERE id IN (:a, :b)"), {"a": bd.id, "b": tech.id})
        await session.commit()
    now = datetime.now(UTC).isoformat()
    writes: list[tuple[str, str, dict[str, Any], dict[str, str]]] = [
        (
            "POST",
            "/v1/pois",
            {"id": str(uuid.uuid4()), "name": "Ghost Tea", "category": "cafe", "location": {"lat": 1.0, "lon": 2.0}},
            bd.headers,
        ),
        (
            "POST",
            "/v1/visits",
            {"id": str(uuid.uuid4()), "poi_id": str(poi), "fix": fix(31.2304, 121.4737)},
            bd.headers,
        ),
        (
            "POST",
            "/v1/devices",
            {"device_id": "d", "platform": "ios", "push_token": "ab" * 32, "app_version": "1"},
            bd.headers,
        ),
        (
            "POST",
            "/v1/sync/push",
            {
                "client_id": "ghost",
                "mutations": [
                    {
                        "id": 1,
                        "name": "visit.check_in",
                        "args": {"id": str(uuid.uuid4()), "poi_id": str(poi), "fix": fix(31.2304, 121.4737)},
                        "created_at": now,
                    }
                ],
            },
            bd.headers,
        ),
        ("POST", "/v1/campaigns", campaign_body(), tech.headers),
    ]
    codes = {}
    for method, path, body, headers in writes:
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code < 500, (path, response.text)
        if response.status_code >= 400:
            assert response.json()["code"] in ("token_invalid", "not_found"), (path, response.text)
        codes[path] = response.json().get("code") if response.status_code >= 400 else response.status_code
    assert "token_invalid" in codes.values(), codes


async def test_unexpected_errors_are_logged_with_method_path_and_request_id(
    factory: Factory, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    from backend.errors import handle_database_error

    class Broken(Exception):
        sqlstate = "42601"  # a syntax error: ours, not the client's

    class FakeRequest:
        method = "POST"

        class url:
            path = "/v1/example"

        class state:
            request_id = "req-123"

        headers: dict[str, str] = {}

        class app:
            class state:
                tokens = None

    with caplog.at_level(logging.ERROR, logger="groundwork"):
        response = handle_database_error(FakeRequest(), Broken("boom"))  # type: ignore[arg-type]
    assert response.status_code == 500
    assert "POST /v1/example" in caplog.text
    assert "req-123" in caplog.text


@pytest.mark.parametrize(
    ("sqlstate", "status", "code"),
    [
        ("22P05", 422, "validation_failed"),  # untranslatable character (U+0000)
        ("22003", 422, "validation_failed"),  # numeric out of range
        ("22008", 422, "validation_failed"),  # datetime field overflow
        ("23514", 422, "validation_failed"),  # check constraint
        ("23505", 409, "conflict"),
        ("23503", 409, "conflict"),  # a referenced record that is gone (not the caller)
        ("40001", 409, "conflict"),
    ],
)
def test_client_caused_database_errors_map_to_problems(sqlstate: str, status: int, code: str) -> None:
    from backend.errors import handle_database_error

    class Refused(Exception):
        pass

    error = Refused("refused")
    error.sqlstate = sqlstate  # type: ignore[attr-defined]

    class FakeRequest:
        method = "POST"
        headers: dict[str, str] = {}

        class url:
            path = "/v1/example"

        class state:
            request_id = None

    response = handle_database_error(FakeRequest(), error)  # type: ignore[arg-type]
    assert response.status_code == status
    assert response.content["code"] == code
