"""The platform admin's CLI: a tenant with its first admin, who logs in after choosing a password."""

from __future__ import annotations

import asyncio
import re
import uuid

from click.testing import CliRunner
from litestar.testing import AsyncTestClient

from backend.cli import main
from backend.settings import Settings

Client = AsyncTestClient  # type: ignore[type-arg]
TOKEN = re.compile(r"^  ([A-Za-z0-9_\-]{40,})$", re.MULTILINE)


def _invoke(settings: Settings, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), obj=settings)
    return result.exit_code, result.output + (repr(result.exception) if result.exit_code else "")


async def _run(settings: Settings, *args: str) -> tuple[int, str]:
    """In a thread: the command runs its own event loop (asyncio.run), as it does from a shell."""
    return await asyncio.to_thread(_invoke, settings, *args)


async def _set_password(client: Client, output: str, password: str) -> None:
    match = TOKEN.search(output)
    assert match is not None, output
    response = await client.post("/v1/auth/set-password", json={"token": match.group(1), "password": password})
    assert response.status_code == 204, response.text


async def test_a_tenant_is_made_with_its_admin_and_users_managed_by_username(
    settings: Settings, client: Client
) -> None:
    slug = f"acme-{uuid.uuid4().hex[:6]}"
    admin = f"lead-{slug}@acme.test"
    code, output = await _run(settings, "tenants", "create", slug, "Acme Field Ops", "--admin", admin)
    assert code == 0, output
    await _set_password(client, output, "the lead's password")
    login = await client.post(
        "/v1/auth/token", json={"username": admin, "password": "the lead's password", "device_id": "d"}
    )
    assert login.status_code == 200
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert (me.json()["role"], me.json()["data_scope"]) == ("admin", "all")

    assert (await _run(settings, "tenants", "create", slug, "Again", "--admin", f"x-{admin}"))[0] != 0  # slug taken
    assert (await _run(settings, "tenants", "create", "Bad Slug", "X", "--admin", f"y-{admin}"))[0] != 0
    assert (await _run(settings, "tenants", "create", f"{slug}-2", "X", "--admin", admin))[0] != 0  # username taken

    bd = f"bd-{slug}@acme.test"
    code, output = await _run(settings, "users", "create", bd, "--tenant", slug, "--role", "bd", "--name", "Wu Jing")
    assert code == 0, output
    await _set_password(client, output, "the bd's password")
    body = {"username": bd, "password": "the bd's password", "device_id": "d"}
    assert (await client.post("/v1/auth/token", json=body)).status_code == 200
    assert (await _run(settings, "users", "set", "disable", bd, "--tenant", slug))[0] == 0
    assert (await client.post("/v1/auth/token", json=body)).status_code == 401
    assert (await _run(settings, "users", "set", "enable", bd, "--tenant", slug))[0] == 0
    code, output = await _run(settings, "users", "set", "reset-password", bd, "--tenant", slug)
    assert code == 0, output
    assert (await client.post("/v1/auth/token", json=body)).status_code == 401  # the old password ended
    await _set_password(client, output, "a fresh password")
    assert (await _run(settings, "users", "set", "disable", bd, "--tenant", "no-such-tenant"))[0] != 0
    assert (await _run(settings, "users", "set", "disable", "nobody@x", "--tenant", slug))[0] != 0
    assert (await _run(settings, "users", "create", "a b", "--tenant", slug, "--role", "bd"))[0] != 0
