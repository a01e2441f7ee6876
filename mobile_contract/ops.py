"""Answers of the operator endpoints (`/healthz`, `/readyz`), for load balancers and orchestrators."""

from __future__ import annotations

from mobile_contract.base import Response


class Liveness(Response):
    """The process serves requests. Says nothing of the database: restarting the app would not fix that."""

    status: str  # always "ok"


class Readiness(Response):
    """The process can do its work: the database answers and its schema is the one this code expects."""

    status: str  # "ready"
    database: str  # "ok"
    migrations: str  # the schema revision(s) the database is at, equal to the code's
