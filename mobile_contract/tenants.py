"""Tenant settings a tenant admin may tune."""

from __future__ import annotations

from typing import Annotated

import msgspec

from mobile_contract.base import Request, Response

Seconds = Annotated[float, msgspec.Meta(ge=0.0, le=30 * 86_400.0)]
Share = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class VerificationPolicy(Response):
    """Thresholds the server judges location claims with (see CONTRACT.md, Verdicts)."""

    verified_min_confidence: float
    uncertain_min_confidence: float
    max_accuracy_m: float
    max_speed_mps: float
    stale_after_s: float
    max_clock_skew_s: float
    future_tolerance_s: float
    default_geofence_radius_m: float


class VerificationPolicyPatch(Request):
    """Partial update: omitted fields keep their value."""

    verified_min_confidence: Share | msgspec.UnsetType = msgspec.UNSET
    uncertain_min_confidence: Share | msgspec.UnsetType = msgspec.UNSET
    max_accuracy_m: Annotated[float, msgspec.Meta(gt=0.0, le=10_000.0)] | msgspec.UnsetType = msgspec.UNSET
    max_speed_mps: Annotated[float, msgspec.Meta(gt=0.0, le=1_000.0)] | msgspec.UnsetType = msgspec.UNSET
    stale_after_s: Seconds | msgspec.UnsetType = msgspec.UNSET
    max_clock_skew_s: Seconds | msgspec.UnsetType = msgspec.UNSET
    future_tolerance_s: Seconds | msgspec.UnsetType = msgspec.UNSET
    default_geofence_radius_m: Annotated[float, msgspec.Meta(ge=5.0, le=5_000.0)] | msgspec.UnsetType = msgspec.UNSET
