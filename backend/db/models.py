"""Every domain's tables, imported in one place so the metadata Alembic compares against is complete."""

from backend.auth.models import RefreshToken, Team, Tenant, User
from backend.db.base import Base
from backend.pois.models import Poi, PoiContact
from backend.visits.models import Visit

__all__ = ["Base", "Poi", "PoiContact", "RefreshToken", "Team", "Tenant", "User", "Visit"]
