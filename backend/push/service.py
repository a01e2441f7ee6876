"""Device registry rules, and `notify_users`: what domain services call to nudge phones to sync.

`notify_users` only queues jobs, in the caller's transaction: a change that rolls back pushes nothing, and a push
goes out (from a worker, see apns.py) only after the change is committed, so the phone's sync finds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.errors import DomainError
from backend.push.models import Device
from backend.queue.service import enqueue_many
from mobile_contract import devices as wire
from mobile_contract.errors import ErrorCode

DELIVER = "push.deliver"  # the job kind: one push to one device

_APNS_TOKEN = re.compile(r"^(?:[0-9a-f]{2}){16,}$")
_CODE = re.compile(r"^[a-z][a-z0-9_.]{0,47}$")


def _wire(device: Device) -> wire.Device:
    return wire.Device(
        id=device.id,
        device_id=device.device_id,
        platform=wire.Platform(device.platform),
        app_version=device.app_version,
        created_at=device.created_at,
        updated_at=device.updated_at,
    )


def _push_token(platform: wire.Platform, token: str) -> str:
    if platform is not wire.Platform.IOS:
        return token
    # APNs tokens are bytes the app must hex-encode. Apps that send `deviceToken.description` ("<740f4707 ...>")
    # are refused here, loudly, rather than failing silently at every push.
    normalised = token.lower()
    if not _APNS_TOKEN.fullmatch(normalised):
        raise DomainError(
            ErrorCode.VALIDATION_FAILED,
            "An APNs device token is the token's bytes as hex digits, with no spaces or brackets.",
            errors=[{"field": "push_token", "message": "expected hex digits (an even number, at least 32)"}],
        )
    return normalised


async def register_device(
    session: AsyncSession, principal: Principal, data: wire.DeviceRegister
) -> tuple[wire.Device, bool]:
    """Register the caller's device, or update it (new token, new app version, back from logout). Returns the device
    and whether it was created.

    A push token belongs to one install of one user. When it turns up on another (the phone changed hands, or the
    app was reinstalled with a new install id), the old row is retired as `token_moved`, so the previous user's
    pushes stop going to a phone they no longer use. Only this tenant's rows are touched: every query stays tenant
    scoped, and a stale row in another tenant costs at most a silent "sync now" for whoever is logged in there.
    """
    token = _push_token(data.platform, data.push_token)
    await session.execute(
        update(Device)
        .where(
            Device.tenant_id == principal.tenant_id,
            Device.push_token == token,
            Device.retired_at.is_(None),
            or_(Device.user_id != principal.user_id, Device.device_id != data.device_id),
        )
        .values(retired_at=func.now(), retired_reason="token_moved", updated_at=func.now())
        .execution_options(synchronize_session=False)
    )
    new_id = uuid4()
    statement = (
        insert(Device)
        .values(
            id=new_id,
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            device_id=data.device_id,
            platform=data.platform.value,
            push_token=token,
            app_version=data.app_version,
        )
        .on_conflict_do_update(
            constraint="uq_devices_tenant_id_user_id_device_id",
            set_={
                "platform": data.platform.value,
                "push_token": token,
                "app_version": data.app_version,
                "updated_at": func.now(),
                "retired_at": None,
                "retired_reason": None,
            },
        )
        .returning(Device)
        .execution_options(populate_existing=True)
    )
    device = (await session.scalars(statement)).one()
    return _wire(device), device.id == new_id


async def unregister_device(session: AsyncSession, principal: Principal, device_id: str) -> None:
    """Stop pushes to the caller's device (logout). Unknown or already unregistered devices are fine: a phone
    retrying its logout gets the same answer."""
    await session.execute(
        update(Device)
        .where(
            Device.tenant_id == principal.tenant_id,
            Device.user_id == principal.user_id,
            Device.device_id == device_id,
            Device.retired_at.is_(None),
        )
        .values(retired_at=func.now(), retired_reason="logged_out", updated_at=func.now())
        .execution_options(synchronize_session=False)
    )


async def retire_device(session: AsyncSession, tenant_id: UUID, device: UUID, push_token: str, reason: str) -> bool:
    """Retire a device whose token the push service refused. Only if it still has that token: a phone that
    re-registered with a fresh token meanwhile keeps it. Returns whether a row was retired."""
    result = await session.execute(
        update(Device)
        .where(
            Device.tenant_id == tenant_id,
            Device.id == device,
            Device.push_token == push_token,
            Device.retired_at.is_(None),
        )
        .values(retired_at=func.now(), retired_reason=reason[:64], updated_at=func.now())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def sync_nudge(reason: str, collection: str | None, record_id: UUID | None) -> dict[str, Any]:
    """The push payload: a silent background notification that makes the app sync. Only codes and an id: nothing
    a person typed or can be recognised by reaches Apple."""
    return {
        "aps": {"content-available": 1},
        "reason": reason,
        "collection": collection,
        "id": str(record_id) if record_id is not None else None,
    }


async def notify_users(
    session: AsyncSession,
    tenant_id: UUID,
    user_ids: Iterable[UUID],
    *,
    reason: str,
    collection: str | None = None,
    record_id: UUID | None = None,
) -> int:
    """Queue a "sync now" push to every active iOS device of these users, in the caller's transaction. Returns how
    many pushes were queued.

    `reason` ("assigned", "changed", "removed", ...) and `collection` ("jobs", "work_items", ...) are codes, checked
    here, so free text can never end up in a push. Android devices are skipped until FCM delivery is built.
    """
    for name, code in (("reason", reason), ("collection", collection)):
        if code is not None and not _CODE.fullmatch(code):
            raise ValueError(f"{name} must be a short lower-case code, not {code!r}")
    users = set(user_ids)
    if not users:
        return 0
    devices = (
        await session.execute(
            select(Device.id, Device.user_id)
            .where(
                Device.tenant_id == tenant_id,
                Device.user_id.in_(users),
                Device.platform == wire.Platform.IOS.value,
                Device.retired_at.is_(None),
            )
            .order_by(Device.user_id, Device.id)
        )
    ).all()
    message = sync_nudge(reason, collection, record_id)
    # The job names the device, not its token: delivery reads the token then, so a token that changed or was
    # retired while the job waited is respected.
    payloads = [{"device": str(d.id), "user": str(d.user_id), "message": message} for d in devices]
    return await enqueue_many(session, DELIVER, payloads, tenant_id=tenant_id)
