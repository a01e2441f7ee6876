"""Queue handlers of jobs: the customer's SMS, sent only after the transaction that issued the code commits.

A code is issued inside a request (or a sync mutation's savepoint); the SMS is an `sms.send` job queued in that
same transaction, so a rollback drops both and the customer never holds a code that was not stored. The
handler gets its `SmsSender` from whoever registers it (the worker's start-up), never from a module global.
Once sent, the job's payload is scrubbed: the code does not stay readable in the queue table.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.queue.models import BackgroundJob
from backend.queue.service import Handler, Job, enqueue
from backend.settings import Settings

if TYPE_CHECKING:
    from backend.db.engine import Database

log = logging.getLogger("groundwork.jobs")

SMS_SEND = "sms.send"
_SCRUBBED = {"scrubbed": True}


class SmsSender(Protocol):
    async def send(self, phone: str, text: str) -> None: ...


class LogSms:
    """The default gateway when none is configured: logs that a message left and to whom (masked), never what it
    says. A real gateway implements `SmsSender`."""

    async def send(self, phone: str, text: str) -> None:
        log.info("SMS to %s (%d characters)", mask_phone(phone), len(text))


class OutboxSms:
    """A demo's gateway: every message, code included, appended to a file the person trying the demo can read
    (`GROUNDWORK_SMS_OUTBOX`, which `groundwork demo` sets). Never configure it on a real deployment."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def send(self, phone: str, text: str) -> None:
        line = f"{datetime.now(UTC).isoformat(timespec='seconds')} to {phone}: {text}\n"
        await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as outbox:
            outbox.write(line)


def mask_phone(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    return "*" * max(len(digits) - 2, 0) + digits[-2:]


async def enqueue_sms(session: AsyncSession, tenant_id: UUID, phone: str, text: str) -> None:
    """Queue an SMS in the caller's transaction: it leaves only if, and after, the caller commits."""
    await enqueue(session, SMS_SEND, {"to": phone, "text": text}, tenant_id=tenant_id, max_attempts=5)


class SendSms:
    """The `sms.send` handler. After a send (or on the last attempt, sent or not) the payload is replaced, so
    neither the code nor the customer's number stays in the queue table."""

    def __init__(self, sender: SmsSender) -> None:
        self.sender = sender

    async def __call__(self, database: Database, job: Job) -> None:
        if job.payload.get("scrubbed"):
            return  # sent by an earlier attempt that died before recording it
        try:
            await self.sender.send(str(job.payload["to"]), str(job.payload["text"]))
        except Exception:
            if job.attempt >= job.max_attempts:
                await _scrub(database, job.id)
            raise
        await _scrub(database, job.id)


async def _scrub(database: Database, job_id: int) -> None:
    async with database.sessions() as session:
        await session.execute(
            update(BackgroundJob)
            .where(BackgroundJob.id == job_id)
            .values(payload=_SCRUBBED)
            .execution_options(synchronize_session=False)
        )
        await session.commit()


@asynccontextmanager
async def handlers(settings: Settings) -> AsyncIterator[dict[str, Handler]]:
    """The queue handlers of jobs, for as long as a worker runs. A real SMS gateway is an `SmsSender` given here;
    the default logs no code and no number; the demo's writes to its outbox file."""
    sender: SmsSender = OutboxSms(settings.sms_outbox) if settings.sms_outbox else LogSms()
    yield {SMS_SEND: SendSms(sender)}
