"""Every domain's tables, imported in one place so the metadata Alembic compares against is complete.

With backend/app.py, the only module that lists the domains: backend/db/ is the foundation they build on and
imports none of them."""

from backend.assignment.models import TechnicianProfile
from backend.auth.models import LoginThrottle, RefreshToken, Team, Tenant, User
from backend.db.base import Base
from backend.intake.models import MerchantDuplicate, MerchantImport
from backend.jobs.models import Job, JobCode, JobEvent, JobType
from backend.media.models import Photo
from backend.offline.models import WatermelonPull, WatermelonRemoval
from backend.pois.models import Poi, PoiContact
from backend.push.models import Device
from backend.queue.models import BackgroundJob, ScheduledRun
from backend.tasks.models import Campaign, WorkItem, WorkItemEdit, WorkItemVisit
from backend.tracking.models import (
    FixId,
    LatestPosition,
    RefusedFix,
    TrackingKey,
    TrackingSettings,
    TrackingWindow,
    positions,
)
from backend.visits.models import Visit
from sync.tables import metadata as sync_metadata

__all__ = [
    "BackgroundJob",
    "Base",
    "Campaign",
    "Device",
    "FixId",
    "Job",
    "JobCode",
    "JobEvent",
    "JobType",
    "LatestPosition",
    "LoginThrottle",
    "MerchantDuplicate",
    "MerchantImport",
    "Photo",
    "Poi",
    "PoiContact",
    "RefreshToken",
    "RefusedFix",
    "ScheduledRun",
    "Team",
    "TechnicianProfile",
    "Tenant",
    "TrackingKey",
    "TrackingSettings",
    "TrackingWindow",
    "User",
    "Visit",
    "WatermelonPull",
    "WatermelonRemoval",
    "WorkItem",
    "WorkItemEdit",
    "WorkItemVisit",
    "positions",
    "sync_metadata",
]
