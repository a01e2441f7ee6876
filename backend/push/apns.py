"""APNs delivery: the `push.deliver` job handler, the aioapns client it drives, and how APNs's answers are read.

Configuration comes from the environment, read once when the worker starts:

    GROUNDWORK_APNS_KEY_FILE     the .p8 signing key from the Apple developer account
    GROUNDWORK_APNS_KEY_ID       its key id (the JWT's `kid`)
    GROUNDWORK_APNS_TEAM_ID      the team id (the JWT's `iss`)
    GROUNDWORK_APNS_TOPIC        the app's bundle id
    GROUNDWORK_APNS_USE_SANDBOX  1 for development builds (api.sandbox.push.apple.com)
    GROUNDWORK_APNS_SERVER       host:port instead of Apple's (a relay; the tests' local APNs)
    GROUNDWORK_APNS_CA_FILE      a CA to trust for that server, besides the system's

With none of the first four set, pushes are logged as "APNs not configured" and dropped (development machines).

What aioapns 4.0 does that shapes this file (read from its source):
- `APNs(key=...)` takes the key's PEM text, not a path.
- Its pool binds to the event loop running when it is built, so the client is built on first use, in the worker.
- Where it connects is a class attribute of its protocol (`APNS_SERVER`, `APNS_PORT`): a subclass points it
  elsewhere, and the same subclass makes every connection share one provider token. Stock aioapns signs a new
  JWT per connection and drops connections idle for 10 s, so a quiet worker would re-sign on nearly every push,
  and APNs answers 429 TooManyProviderTokenUpdates to tokens renewed more often than every 20 minutes.
- Its pool retries a failed connection itself, sleeping 1 s after each failed try while the job waits. The queue
  already retries with backoff, so the client gets one try (and still sleeps that second before giving up).
- A refused request comes back as a result (status and reason), not an exception; a non-200 answer without a
  JSON `reason` would never resolve, hence the timeout around every send.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import jwt
from aioapns import APNs, NotificationRequest, PushType
from aioapns.common import NotificationResult
from aioapns.connection import APNsTLSClientProtocol, AuthorizationHeaderProvider
from aioapns.exceptions import ConnectionError as ApnsConnectionError
from aioapns.exceptions import MaxAttemptsExceeded
from sqlalchemy import select

from backend.db.engine import Database
from backend.push.models import Device
from backend.push.service import retire_device
from backend.queue.service import Job, PermanentFailure, RetryLater
from mobile_contract.devices import Platform

log = logging.getLogger("groundwork.push")

PRODUCTION = ("api.push.apple.com", 443)
SANDBOX = ("api.sandbox.push.apple.com", 443)
PRIORITY_BACKGROUND = 5  # APNs refuses priority 10 for background pushes
TIME_TO_LIVE_S = 86_400  # a phone offline for a day still gets its nudge (APNs keeps the newest per app)
TOKEN_LIFETIME_S = 30 * 60  # APNs wants a provider token renewed after 20 minutes at the earliest, 60 at the latest


@dataclass(frozen=True, slots=True)
class ApnsSettings:
    key_file: Path | None = None
    key_id: str | None = None
    team_id: str | None = None
    topic: str | None = None  # the app's bundle id
    use_sandbox: bool = False
    server: str | None = None  # "host:port" instead of Apple's
    ca_file: Path | None = None
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        given = {
            "GROUNDWORK_APNS_KEY_FILE": self.key_file,
            "GROUNDWORK_APNS_KEY_ID": self.key_id,
            "GROUNDWORK_APNS_TEAM_ID": self.team_id,
            "GROUNDWORK_APNS_TOPIC": self.topic,
        }
        missing = [name for name, value in given.items() if not value]
        if missing and len(missing) < len(given):  # half a configuration is a mistake, not a choice: say so now
            raise ValueError(f"APNs is partly configured; also set {', '.join(missing)}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ApnsSettings:
        key_file = env.get("GROUNDWORK_APNS_KEY_FILE")
        ca_file = env.get("GROUNDWORK_APNS_CA_FILE")
        return cls(
            key_file=Path(key_file) if key_file else None,
            key_id=env.get("GROUNDWORK_APNS_KEY_ID") or None,
            team_id=env.get("GROUNDWORK_APNS_TEAM_ID") or None,
            topic=env.get("GROUNDWORK_APNS_TOPIC") or None,
            use_sandbox=env.get("GROUNDWORK_APNS_USE_SANDBOX", "").lower() in ("1", "true", "yes"),
            server=env.get("GROUNDWORK_APNS_SERVER") or None,
            ca_file=Path(ca_file) if ca_file else None,
            timeout_s=float(env.get("GROUNDWORK_APNS_TIMEOUT_S", "10")),
        )

    @property
    def configured(self) -> bool:
        return self.key_file is not None

    def address(self) -> tuple[str, int]:
        if not self.server:
            return SANDBOX if self.use_sandbox else PRODUCTION
        host, _, port = self.server.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"GROUNDWORK_APNS_SERVER must be host:port, not {self.server!r}")
        return host.strip("[]"), int(port)


# -- reading APNs's answers -----------------------------------------------------------------------------------

Outcome = Literal["delivered", "retire", "retry", "fail"]

# The token is dead: the app was uninstalled (410), the token is not a token (400 BadDeviceToken; also what a
# development build's token gets from the production server), or it belongs to another app.
_DEAD_TOKEN = {"BadDeviceToken", "DeviceTokenNotForTopic"}
# APNs is busy or down, or our provider token is stale (a clock problem that passes): try again later.
_RETRY_STATUSES = {"429", "500", "503"}


def classify(status: str, reason: str | None) -> Outcome:
    if status == "200":
        return "delivered"
    if status == "410" or (status == "400" and reason in _DEAD_TOKEN):
        return "retire"
    if status in _RETRY_STATUSES or (status == "403" and reason == "ExpiredProviderToken"):
        return "retry"
    if status.startswith("4"):
        return "fail"  # our request is wrong (topic, key, payload): retrying cannot help; last_error says why
    return "retry"  # any other answer (a 502 from a proxy on the way) is trouble on the way, not ours


# -- the client -----------------------------------------------------------------------------------------------


class ProviderToken(AuthorizationHeaderProvider):
    """The ES256 JWT that authenticates us to APNs: one per process, shared by every connection, renewed every
    30 minutes."""

    def __init__(self, key: str, key_id: str, team_id: str) -> None:
        self._key = key
        self._key_id = key_id
        self._team_id = team_id
        self._header: str | None = None
        self._issued_at = 0.0

    def get_header(self) -> str:
        now = time.time()
        if self._header is None or now - self._issued_at >= TOKEN_LIFETIME_S:
            token = jwt.encode(
                {"iss": self._team_id, "iat": int(now)}, self._key, algorithm="ES256", headers={"kid": self._key_id}
            )
            self._header, self._issued_at = f"bearer {token}", now
        return self._header


def _protocol(host: str, port: int, token: ProviderToken) -> type[APNsTLSClientProtocol]:
    class ApnsProtocol(APNsTLSClientProtocol):
        APNS_SERVER = host  # where to connect, and the request's host header
        APNS_PORT = port

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.auth_provider = token  # instead of the pool's per-connection one (see the module docstring)

    return ApnsProtocol


class ApnsSender:
    """Sends notifications over one aioapns client, built on first use and closed with `close`."""

    def __init__(self, settings: ApnsSettings) -> None:
        if not settings.configured:
            raise ValueError("ApnsSender needs APNs settings")
        assert settings.key_file is not None
        assert settings.key_id is not None
        assert settings.team_id is not None
        assert settings.topic is not None
        self.settings = settings
        self.topic = settings.topic
        self._key = settings.key_file.read_text()
        self._token = ProviderToken(self._key, settings.key_id, settings.team_id)
        try:
            self._token.get_header()  # sign once now: a wrong key stops the worker at start, not at the first push
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise ValueError(f"{settings.key_file} is not an APNs signing key (.p8, P-256): {exc}") from exc
        self._client: APNs | None = None

    def _connect(self) -> APNs:
        settings = self.settings
        context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
        context.set_alpn_protocols(["h2"])
        client = APNs(
            key=self._key,
            key_id=settings.key_id,
            team_id=settings.team_id,
            topic=self.topic,
            use_sandbox=settings.use_sandbox,
            ssl_context=context,
            max_connection_attempts=1,
            err_func=_quiet,
        )
        client.pool.protocol_class = _protocol(*settings.address(), self._token)
        return client

    async def send(self, device_token: str, message: dict[str, Any], *, collapse_id: str) -> NotificationResult:
        """Send a background push. Raises RetryLater when APNs cannot be reached or does not answer in time."""
        if self._client is None:
            self._client = self._connect()
        request = NotificationRequest(
            device_token=device_token,
            message=message,
            time_to_live=TIME_TO_LIVE_S,
            priority=PRIORITY_BACKGROUND,
            collapse_key=collapse_id,
            push_type=PushType.BACKGROUND,
        )
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                return await self._client.send_notification(request)
        except (MaxAttemptsExceeded, ApnsConnectionError, OSError) as exc:
            host, port = self.settings.address()
            raise RetryLater(f"APNs unreachable at {host}:{port} ({type(exc).__name__})") from exc
        except TimeoutError as exc:
            raise RetryLater(f"APNs did not answer within {self.settings.timeout_s:.0f} s") from exc

    async def close(self) -> None:
        if self._client is not None:
            self._client.pool.close()
            self._client = None


async def _quiet(request: NotificationRequest, result: NotificationResult) -> None:
    """aioapns logs every refusal as an error; the handler below decides what a refusal means and logs that."""


# -- the job handler ------------------------------------------------------------------------------------------


class PushDelivery:
    """The `push.deliver` handler: one silent push to one device, read from the registry at delivery time."""

    def __init__(self, settings: ApnsSettings) -> None:
        self.sender = ApnsSender(settings) if settings.configured else None
        if self.sender is None:
            log.warning("APNs not configured (GROUNDWORK_APNS_KEY_FILE and friends): pushes will be dropped")

    async def __call__(self, database: Database, job: Job) -> None:
        device_pk = UUID(job.payload["device"])
        if self.sender is None:
            log.info("APNs not configured: push job %d for device %s dropped", job.id, device_pk)
            return
        async with database.sessions() as session:
            device = (
                await session.execute(
                    select(Device.push_token, Device.platform, Device.retired_at).where(
                        Device.id == device_pk, Device.tenant_id == job.tenant_id
                    )
                )
            ).one_or_none()
        if device is None or device.retired_at is not None or device.platform != Platform.IOS.value:
            log.info("push job %d: device %s is gone or retired; nothing to send", job.id, device_pk)
            return
        result = await self.sender.send(
            device.push_token, job.payload["message"], collapse_id=f"sync-{job.payload['user']}"
        )
        answer = f"{result.status} {result.description or ''}".strip()
        match classify(result.status, result.description):
            case "delivered":
                log.debug("push job %d delivered to device %s", job.id, device_pk)
            case "retire":
                assert job.tenant_id is not None
                async with database.sessions() as session:
                    retired = await retire_device(
                        session, job.tenant_id, device_pk, device.push_token, f"apns:{result.description or 'Gone'}"
                    )
                    await session.commit()
                log.info("push job %d: APNs answered %s; device %s retired=%s", job.id, answer, device_pk, retired)
            case "retry":
                raise RetryLater(f"APNs answered {answer}")
            case "fail":
                raise PermanentFailure(f"APNs refused the push: {answer}")

    async def close(self) -> None:
        if self.sender is not None:
            await self.sender.close()
