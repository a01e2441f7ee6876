"""Registering a phone for push notifications.

The app registers on every start and whenever the OS hands it a new push token (`POST /v1/devices`), and
unregisters on logout (`DELETE /v1/devices/{device_id}`). Pushes are silent background notifications that only
tell the app to sync at once, so they carry no personal data:

    {"aps": {"content-available": 1}, "reason": "assigned" | "changed" | "removed" | ..., "collection":
     "jobs" | "work_items" | ... | null, "id": "<record uuid>" | null}

`reason`, `collection` and `id` are hints (the app may fetch that record first); the next sync pull is the truth.
iOS gets them through APNs; Android devices are registered now and get them once FCM delivery is built.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from mobile_contract.auth import DeviceId
from mobile_contract.base import SINGLE_LINE, Request, Response


class Platform(enum.StrEnum):
    IOS = "ios"
    ANDROID = "android"


class DeviceRegister(Request):
    device_id: DeviceId  # the same install id the app sends at login
    platform: Platform
    push_token: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=4096,
            pattern=SINGLE_LINE,
            description="iOS: the APNs device token as hex digits; Android: the FCM registration token",
        ),
    ]
    app_version: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=SINGLE_LINE)]


class Device(Response):
    id: UUID  # the server's id of this registration
    device_id: str
    platform: Platform
    app_version: str
    created_at: datetime
    updated_at: datetime
