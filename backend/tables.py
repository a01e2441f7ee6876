"""Every domain's tables, imported in one place so the metadata Alembic compares against is complete.

With backend/app.py, the only module that lists the domains: backend/db/ is the foundation they build on and
imports none of them."""

from backend.admin.models import SetPasswordToken
from backend.assignment.models import (
    AssignmentCursor,
    AssignmentDecision,
    AssignmentRuleVersion,
    TechnicianProfile,
    Territory,
)
from backend.auth.models import LoginThrottle, RefreshToken, RolePermission, Team, Tenant, User
from backend.db.base import Base
from backend.events.models import (
    BusinessEvent,
    EventAttribution,
    EventSettings,
    IntegrationKey,
    MerchantCode,
    MerchantSigning,
    RefusedEvent,
)
from backend.intake.models import MerchantDuplicate, MerchantImport
from backend.jobs.models import Job, JobCode, JobEvent, JobType
from backend.leads.pool_tables import LeadEvent, LeadPolicyRecord, LeadRecord
from backend.media.models import Photo
from backend.offline.models import WatermelonPull, WatermelonRemoval
from backend.pois.models import Poi, PoiContact
from backend.push.models import Device
from backend.queue.models import BackgroundJob, ScheduledRun
from backend.tasks.models import Campaign, WorkItem, WorkItemEdit, WorkItemVisit
from backend.tracking.models import (
    DerivedDay,
    FenceEvent,
    FixId,
    Gap,
    LatestPosition,
    Presence,
    RefusedFix,
    Stop,
    TrackingKey,
    TrackingSettings,
    TrackingWindow,
    Trip,
    positions,
)
from backend.visits.models import Visit, VisitVerdictChange
from sync.tables import metadata as sync_metadata

__all__ = [
    "AssignmentCursor",
    "AssignmentDecision",
    "AssignmentRuleVersion",
    "BackgroundJob",
    "Base",
    "BusinessEvent",
    "Campaign",
    "DerivedDay",
    "Device",
    "EventAttribution",
    "EventSettings",
    "FenceEvent",
    "FixId",
    "Gap",
    "IntegrationKey",
    "Job",
    "JobCode",
    "JobEvent",
    "JobType",
    "LatestPosition",
    "LeadEvent",
    "LeadPolicyRecord",
    "LeadRecord",
    "LoginThrottle",
    "MerchantCode",
    "MerchantDuplicate",
    "MerchantImport",
    "MerchantSigning",
    "Photo",
    "Poi",
    "PoiContact",
    "Presence",
    "RefreshToken",
    "RefusedEvent",
    "RefusedFix",
    "RolePermission",
    "ScheduledRun",
    "SetPasswordToken",
    "Stop",
    "Team",
    "TechnicianProfile",
    "Tenant",
    "Territory",
    "TrackingKey",
    "TrackingSettings",
    "TrackingWindow",
    "Trip",
    "User",
    "Visit",
    "VisitVerdictChange",
    "WatermelonPull",
    "WatermelonRemoval",
    "WorkItem",
    "WorkItemEdit",
    "WorkItemVisit",
    "positions",
    "sync_metadata",
]
