"""`groundwork import merchants`: the same import as the API's, run in the command's own process."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import click
from sqlalchemy import select

from backend.auth.models import Tenant
from backend.intake.models import MerchantImport
from backend.intake.service import ImportUnreadable, Progress, parse, run_import
from mobile_contract import intake as wire

if TYPE_CHECKING:
    from backend.db.engine import Database


async def import_file(
    database: Database, tenant_slug: str, content: bytes, fmt: str, on_progress: Callable[[Progress], None]
) -> str:
    form = wire.ImportFormat(fmt)
    try:
        next(iter(parse(content, form)), None)
    except ImportUnreadable as exc:
        raise click.ClickException(f"{exc}; fix the file and run again") from exc
    async with database.sessions() as session:
        tenant_id = await session.scalar(
            select(Tenant.id).where(Tenant.slug == tenant_slug)  # /* all-tenants: the operator names the tenant */
        )
        if tenant_id is None:
            raise click.ClickException(f"no tenant {tenant_slug!r}: see `groundwork seed` or the tenants you made")
        record = MerchantImport(
            tenant_id=tenant_id, id=uuid.uuid4(), format=form.value, content=content, status="queued", report={}
        )
        session.add(record)
        await session.commit()
        import_id = record.id
    done = await run_import(database.sessions, tenant_id, import_id, on_progress=on_progress)
    return (
        f"import {import_id}: {done.rows:,} rows, {done.imported:,} imported, {done.duplicates:,} duplicates skipped,"
        f" {done.likely_duplicates:,} waiting for review, {done.refused:,} refused"
        f" (GET /v1/intake/imports/{import_id} for the report)"
    )
