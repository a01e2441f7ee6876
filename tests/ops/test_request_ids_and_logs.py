"""Request ids on every answer and every log line; JSON logs; unhandled errors logged without bodies or tokens."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar import Litestar, Request, get, post
from litestar.datastructures import State
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient

from backend.errors import EXCEPTION_HANDLERS
from backend.observability import accepted_request_id, configure_logging, current_request_id, install
from backend.settings import Settings
from tests.factories import Factory

FRESH_ID = re.compile(r"[0-9a-f]{16}")
SAFE = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


@given(st.binary(max_size=300))
def test_an_incoming_id_is_kept_only_when_short_and_made_of_safe_characters(value: bytes) -> None:
    kept = accepted_request_id(value)
    if kept is None:
        assert not SAFE.fullmatch(value.decode("latin-1"))
    else:
        assert kept.encode() == value
        assert SAFE.fullmatch(kept)


@given(st.text(alphabet=st.sampled_from("abcXYZ019._:@/+=-"), min_size=1, max_size=128))
def test_every_well_formed_id_is_kept(value: str) -> None:
    assert accepted_request_id(value.encode()) == value


async def test_every_answer_carries_a_fresh_id_errors_and_unknown_routes_included(
    client: AsyncTestClient,  # type: ignore[type-arg]
    factory: Factory,
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    answers = [
        await client.get("/healthz"),
        await client.get("/v1/me", headers=bd.headers),
        await client.get("/v1/me"),  # 401
        await client.get(f"/v1/pois/{uuid.uuid4()}", headers=bd.headers),  # 404 problem
        await client.get("/no/such/route"),  # 404 before any route matched
        await client.delete("/healthz"),  # 405
        await client.get("/v1/pois/nearby?lat=200&lon=0", headers=bd.headers),  # 422
    ]
    assert [a.status_code for a in answers] == [200, 200, 401, 404, 404, 405, 422]
    ids = [a.headers["x-request-id"] for a in answers]
    assert all(FRESH_ID.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("phone-7f3a2c", True),
        ("0f8fad5b-d9cb-469f-a165-70867728950e", True),
        ("x" * 129, False),
        ("two words", False),
        ("a\u00e9".encode().decode("latin-1"), False),  # UTF-8 bytes on the wire
        ("id\r\nX-Forged: 1", False),
    ],
)
async def test_a_well_formed_incoming_id_is_echoed_and_anything_else_replaced(
    client: AsyncTestClient,  # type: ignore[type-arg]
    sent: str,
    kept: bool,
) -> None:
    response = await client.get("/no/such/route", headers={b"X-Request-ID": sent.encode("latin-1")})
    echoed = response.headers["x-request-id"]
    assert (echoed == sent) is kept
    if not kept:
        assert FRESH_ID.fullmatch(echoed)


# A small app with the real wrapper and the real error handlers, and routes that fail on purpose.
SECRET_TOKEN = "eyJhbGciOiJIUzI1NiJ9.secret-token-value"
SECRET_BODY = "customer code 424242 and a password"


@post("/boom")
async def boom(request: Request[Any, Any, Any], data: JSONBody[dict[str, str]]) -> None:
    logging.getLogger("groundwork.test").info("handling; state says %s", request.state.request_id)
    raise RuntimeError("a bug")


@get("/whoami")
async def whoami(request: Request[Any, Any, Any]) -> dict[str, str | None]:
    return {"state": request.state.request_id, "context": current_request_id()}


def _broken_app(settings: Settings) -> Litestar:
    app = Litestar(
        route_handlers=[boom, whoami],
        exception_handlers=EXCEPTION_HANDLERS,
        state=State({"settings": settings}),
        logging_config=None,  # as create_app: our handler, not Litestar's
    )
    return install(app)


async def test_handlers_read_the_id_from_request_state_and_the_context(settings: Settings) -> None:
    async with AsyncTestClient(app=_broken_app(settings)) as test_client:
        response = await test_client.get("/whoami", headers={"X-Request-ID": "req-abc-123"})
    assert response.json() == {"state": "req-abc-123", "context": "req-abc-123"}
    assert current_request_id() is None  # reset once the request is over


async def test_an_unhandled_error_is_logged_with_method_path_and_id_never_body_or_token(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with AsyncTestClient(app=_broken_app(settings)) as test_client:
        response = await test_client.post(
            "/boom?token=" + SECRET_TOKEN,
            json={"note": SECRET_BODY},
            headers={"Authorization": f"Bearer {SECRET_TOKEN}", "X-Request-ID": "req-boom-1"},
        )
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert response.headers["x-request-id"] == "req-boom-1"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].getMessage() == "unhandled error on POST /boom, request req-boom-1"
    assert errors[0].request_id == "req-boom-1"  # type: ignore[attr-defined]
    assert all(r.request_id == "req-boom-1" for r in caplog.records if r.name == "groundwork.test")  # type: ignore[attr-defined]
    # The server's lines (httpx's are the test client's own, which logs the URL it called).
    server_records = [r for r in caplog.records if not r.name.startswith("httpx")]
    logged = "\n".join(logging.Formatter().format(r) for r in server_records)
    assert SECRET_TOKEN not in logged
    assert SECRET_BODY not in logged


async def test_json_logs_are_one_object_per_line_with_the_request_id(settings: Settings) -> None:
    stream = io.StringIO()
    handler = configure_logging(replace(settings, log_format="json"), stream)
    try:
        async with AsyncTestClient(app=_broken_app(settings)) as test_client:
            await test_client.post("/boom", json={"note": SECRET_BODY}, headers={"X-Request-ID": "req-json-1"})
    finally:
        configure_logging(settings)  # back to text for the rest of the run
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    mine = [line for line in lines if line.get("request_id") == "req-json-1"]
    assert {line["logger"] for line in mine} >= {"groundwork.test", "groundwork"}
    error = next(line for line in mine if line["level"] == "ERROR")
    assert error["message"] == "unhandled error on POST /boom, request req-json-1"
    assert "RuntimeError: a bug" in error["exc_info"]
    assert SECRET_BODY not in stream.getvalue()
    assert handler is not None


def test_an_unknown_log_format_fails_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.settings import get_settings

    monkeypatch.setenv("GROUNDWORK_LOG_FORMAT", "yaml")
    get_settings.cache_clear()
    try:
        with pytest.raises(ValueError, match="GROUNDWORK_LOG_FORMAT"):
            get_settings()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
