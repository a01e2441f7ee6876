"""Visits: a BD checks in at a merchant and checks out, each time proving where they were with a fix."""

from __future__ import annotations

import enum
from datetime import datetime
from uuid import UUID

from mobile_contract.base import AwareDatetime, LongText, Request, Response
from mobile_contract.location import Fix, Point, Verdict


class CheckIn(Request):
    """`id` is generated on the phone: a retried check-in is the same visit, answered as the first time."""

    id: UUID
    poi_id: UUID
    fix: Fix
    checked_in_at: AwareDatetime | None = None  # when the BD tapped, by the phone's clock; defaults to arrival
    note: LongText | None = None


class CheckOut(Request):
    fix: Fix
    checked_out_at: AwareDatetime | None = None
    note: LongText | None = None


class CheckOutArgs(Request, kw_only=True):
    """The `visit.check_out` sync mutation: a check-out made offline."""

    visit_id: UUID
    fix: Fix
    checked_out_at: AwareDatetime | None = None
    note: LongText | None = None


class VisitStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class FixEvidence(Response):
    """A fix as the server keeps it: what the phone sent, the time we trust, and the verdict."""

    location: Point
    accuracy_m: float
    captured_at: datetime  # the phone's claim
    trusted_at: datetime  # derived from `age_ms` and arrival when the phone's clock cannot be trusted
    received_at: datetime
    is_mock: bool
    provider: str | None
    verdict: Verdict


class Visit(Response):
    id: UUID
    poi_id: UUID
    user_id: UUID
    status: VisitStatus
    checked_in_at: datetime
    checked_out_at: datetime | None
    check_in: FixEvidence
    check_out: FixEvidence | None
    note: str | None


class VisitPage(Response):
    items: list[Visit]
    next_cursor: str | None
