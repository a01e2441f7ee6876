"""Merchants (POIs): nearby lists, the merchant view, adding a merchant from the field."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from mobile_contract.base import SINGLE_LINE, LongText, Phone, Request, Response, ShortText
from mobile_contract.location import Point, PointIn, Verdict


class PoolFilter(enum.StrEnum):
    """Which merchants a nearby search returns, by who holds them as a lead."""

    ALL = "all"
    OPEN = "open"  # nobody holds it: free to claim
    MINE = "mine"  # held by the caller
    TEAM = "team"  # held by anyone in the caller's data scope


class Holder(Response):
    user_id: UUID
    display_name: str


class PoiSummary(Response):
    """One row of a nearby list: light on purpose."""

    id: UUID
    name: str
    category: str
    address: str
    location: Point
    distance_m: float
    holder: Holder | None


class NearbyPage(Response):
    items: list[PoiSummary]
    next_cursor: str | None


class Contact(Response):
    id: UUID
    name: str
    role: str | None
    phone: str | None


class VisitBrief(Response):
    id: UUID
    user_id: UUID
    user_name: str
    checked_in_at: datetime
    checked_out_at: datetime | None
    verdict: Verdict


class Geofence(Response):
    radius_m: float | None
    polygon: list[Point] | None  # exterior ring, when the merchant has a drawn fence


class OpenWorkItem(Response):
    """An open task on a merchant, whoever holds it: one BD should not call where another's task already is."""

    id: UUID
    campaign_id: UUID
    campaign_title: str
    campaign_type: str
    assignee_id: UUID
    assignee_name: str
    status: str


class PoiDetail(Response):
    """The merchant view: what a BD needs before walking in."""

    id: UUID
    name: str
    category: str
    address: str
    phone: str | None
    location: Point
    geofence: Geofence
    holder: Holder | None
    claimed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    contacts: list[Contact]
    recent_visits: list[VisitBrief]
    open_work_items: list[OpenWorkItem]


class ContactIn(Request):
    name: ShortText
    role: Annotated[str, msgspec.Meta(max_length=100, pattern=SINGLE_LINE)] | None = None
    phone: Phone | None = None


class PoiCreate(Request):
    """A BD adds a merchant from the field. `id` is generated on the phone, so a retry is the same merchant."""

    id: UUID
    name: ShortText
    category: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
    location: PointIn
    address: LongText = ""
    phone: Phone | None = None
    contacts: Annotated[list[ContactIn], msgspec.Meta(max_length=20)] = []
    confirm_new: bool = False  # the BD saw the `possible_duplicate` candidates and insists it is a new merchant


class DuplicateCandidate(Response):
    id: UUID
    name: str
    address: str
    distance_m: float
    similarity: float  # of the names, 0..1, compared in every spelling (characters, pinyin, initials)
    verdict: str = "likely"  # "same": surely this shop; "likely": probably (a person decides)
    reasons: list[str] = []
