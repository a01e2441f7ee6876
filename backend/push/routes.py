"""HTTP routes of the device registry: a phone registers for pushes, and unregisters on logout."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, delete, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.errors import problems
from backend.push import service
from mobile_contract.base import SINGLE_LINE
from mobile_contract.devices import Device, DeviceRegister


class DeviceController(Controller):
    path = "/v1/devices"
    tags = ["push"]

    @post(
        "/",
        operation_id="registerDevice",
        responses=problems(401, 409),
        summary="Register this phone for pushes (201), or update its token and app version (200)",
    )
    async def register(
        self,
        data: JSONBody[DeviceRegister],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> Response[Device]:
        device, created = await service.register_device(session, principal, data)
        await session.commit()
        return Response(device, status_code=201 if created else 200)

    @delete(
        "/{device_id:str}",
        operation_id="unregisterDevice",
        responses=problems(401),
        summary="Stop pushes to this phone (logout); repeating it is harmless",
    )
    async def unregister(
        self,
        device_id: Annotated[str, Parameter(min_length=1, max_length=128, pattern=SINGLE_LINE)],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> None:
        await service.unregister_device(session, principal, device_id)
        await session.commit()
