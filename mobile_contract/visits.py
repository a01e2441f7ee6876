"""Visits: a BD checks in at a merchant and checks out, each time proving where they were with a fix."""

from __future__ import annotations

import enum
from datetime import datetime
from uuid import UUID

from mobile_contract.base import AwareDatetime, LongText, Request, Response
from mobile_contract.location import Fix, Point, Verdict, VerdictReason, VerdictStatus


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


class VerdictChange(Response):
    """One change of a visit's verdict after the fact: a later arrival (the trail's fixes, sent after the check-in)
    made the server judge the check-in again. `claim` is which verdict moved (`check_in`); `why` is what arrived
    (`late_fixes`). The check-in itself is never changed or dropped: only its verdict moves."""

    claim: str
    old_status: VerdictStatus
    old_reasons: list[VerdictReason]
    new_status: VerdictStatus
    new_reasons: list[VerdictReason]
    why: str
    changed_at: datetime


class VerdictHistory(Response):
    """`GET /v1/visits/{id}/verdicts`: the visit's verdict changes, oldest first (empty: never changed)."""

    visit_id: UUID
    items: list[VerdictChange]
