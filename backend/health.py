"""Liveness and readiness, as load balancers and orchestrators ask them.

`/healthz` answers as long as the process serves HTTP (restart the process when it stops answering). `/readyz`
also needs the database to answer and to be at the migrations this code was written for: a process whose
database is away or not yet migrated is taken out of the load balancer, not restarted. Both are cheap, need no
token and are in the OpenAPI document.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import asyncpg
from litestar import Request, get
from litestar.datastructures import State

from backend.db.engine import Database, database_unavailable
from backend.errors import RetryLater, problems
from mobile_contract.errors import ErrorCode
from mobile_contract.ops import Liveness, Readiness


@cache
def code_heads() -> frozenset[str]:
    """The head revision(s) of the migrations shipped with this code (read once from the migration files)."""
    from alembic.script import ScriptDirectory

    from backend.db.migrate import alembic_config

    return frozenset(ScriptDirectory.from_config(alembic_config("")).get_heads())


@get("/healthz", operation_id="health", tags=["ops"], summary="Liveness: the process serves requests", security=[{}])
async def healthz() -> Liveness:
    return Liveness(status="ok")


@get(
    "/readyz",
    operation_id="ready",
    tags=["ops"],
    summary="Readiness: the database answers and is at this code's migrations (503 otherwise)",
    responses={503: problems()[503]},
    security=[{}],
)
async def readyz(request: Request[Any, Any, State]) -> Readiness:
    database: Database = request.app.state.database
    retry_after = request.app.state.settings.retry_after_s
    try:
        rows = await database.hot.fetch("SELECT version_num FROM alembic_version")
    except asyncpg.UndefinedTableError:
        rows = []  # never migrated
    except Exception as error:
        if database_unavailable(error):
            raise RetryLater(ErrorCode.SERVICE_UNAVAILABLE, "The database does not answer.", retry_after) from error
        raise
    at = frozenset(row["version_num"] for row in rows)
    if at != code_heads():
        raise RetryLater(
            ErrorCode.SERVICE_UNAVAILABLE,
            f"The database is at migration {', '.join(sorted(at)) or 'none'}, this code expects "
            f"{', '.join(sorted(code_heads()))}: run `groundwork db migrate`.",
            retry_after,
        )
    return Readiness(status="ready", database="ok", migrations=", ".join(sorted(at)))


ROUTES = [healthz, readyz]
