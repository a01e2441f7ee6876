"""HTTP routes of location tracking: the app's batched trail, the OsmAnd protocol of stock tracker apps, tracking
keys and tracking settings. Thin: parse, call the service, commit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put, route
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import FromPath, FromQuery, JSONBody, Parameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.coordinates import point_to_wgs84
from backend.deps import provide_principal
from backend.errors import DomainError, problems
from backend.tracking import osmand, service, timeline
from mobile_contract import tracking as wire
from mobile_contract.base import SINGLE_LINE
from mobile_contract.errors import ErrorCode
from mobile_contract.location import CrsName

CrsParam = Annotated[CrsName, Parameter(description="Coordinate system of lat/lon in the fixes")]
OutCrs = Annotated[CrsName, Parameter(description="Coordinate system of the points answered")]
DateParam = Annotated[
    str, Parameter(min_length=10, max_length=10, pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD, local")
]
ZoneParam = Annotated[
    str, Parameter(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$", description="IANA time zone")
]
MomentParam = Annotated[
    str, Parameter(min_length=10, max_length=40, pattern=SINGLE_LINE, description="RFC 3339 with an offset")
]


class TrackingController(Controller):
    path = "/v1/tracking"
    tags = ["tracking"]

    @post(
        "/positions",
        operation_id="ingestPositions",
        status_code=200,
        responses=problems(401, 413, 422),
        summary="The app's batched trail: idempotent per fix id, any order, late by hours",
    )
    async def positions(
        self, request: Request[Any, Any, State], data: JSONBody[wire.PositionBatch], crs: CrsParam = CrsName.WGS84
    ) -> wire.BatchResult:
        # The hot route resolves no dependencies (as /v1/pois/nearby): one connection of the hot pool at a time.
        principal = await provide_principal(request)
        received_at = service.utc_now()
        # WGS-84 fixes go to the service as they were decoded (the statement reads them as they are).
        fixes: list[service.AnyFix] = list(data.positions)
        if crs is not CrsName.WGS84:
            fixes = [_to_wgs84(service.from_wire(fix), crs) for fix in data.positions]
        who = service.Tracked(
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            team_id=principal.team_id,
            device_id=data.device_id,
        )
        return await service.ingest(request.app.state.database.hot, who, fixes, received_at=received_at, source="app")

    @route(
        "/osmand",
        http_method=["GET", "POST", "PUT"],
        operation_id=lambda _handler, method, _path: f"ingestOsmand{str(method).title()}",
        status_code=200,
        security=[],
        responses=problems(400, 401, 422),
        summary="OsmAnd / Traccar Client / GPSLogger protocol, unchanged; authenticated by a tracking key",
        description=(
            "Send the tracking key as `id` (or `deviceid`), or as `Authorization: Bearer <key>`. Query string, "
            "form body, a JSON object with `location.coords`, or a JSON array of flat objects. 200 with an empty "
            "body; 400 without `id`."
        ),
    )
    async def osmand(self, request: Request[Any, Any, State]) -> Response[bytes]:
        received_at = service.utc_now()
        body = await request.body()
        media_type, _ = request.content_type
        form: dict[str, str] = {}
        decoded: Any = None
        if body:
            if "json" in media_type or body.lstrip()[:1] in (b"{", b"["):
                try:
                    decoded = msgspec.json.decode(body)
                except msgspec.DecodeError:
                    raise osmand.invalid("The body is not JSON.") from None
            else:
                try:
                    form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
                except UnicodeDecodeError:
                    raise osmand.invalid("The body is not UTF-8.") from None
        query = dict(request.query_params)
        report = osmand.read_report(query, form, decoded, received_at)
        header = request.headers.get("authorization", "")
        scheme, _, bearer = header.partition(" ")
        key = bearer.strip() if scheme.lower() == "bearer" and bearer.strip() else report.identifier
        if report.identifier is None and not key:
            raise DomainError(ErrorCode.TRACKING_ID_MISSING, "Send the tracking key as `id` (or `deviceid`).")
        if not key or not service.looks_like_key(key):
            raise DomainError(ErrorCode.TRACKING_KEY_INVALID, "This tracking key is unknown or revoked.")
        database = request.app.state.database
        who = await service.tracked_by_key(database.hot, key, now=received_at)
        fixes = osmand.with_scope(report.fixes, f"{who.user_id}|{who.device_id}")
        await service.ingest(database.hot, who, fixes, received_at=received_at, source="osmand")
        return Response(b"", status_code=200, media_type="text/plain")

    @post(
        "/keys",
        operation_id="createTrackingKey",
        # 200, not 201: every 201 of the contract is an idempotent create on a client id, and a key is issued
        # anew by each call (a lost answer means: revoke it and issue another).
        status_code=200,
        responses=problems(401, 403, 404, 422),
        summary="Issue a tracking key for a user's device (shown once)",
    )
    async def create_key(
        self,
        data: JSONBody[wire.TrackingKeyCreate],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> wire.TrackingKeyIssued:
        issued = await service.issue_key(session, principal, data)
        await session.commit()
        return issued

    @get("/keys", operation_id="listTrackingKeys", responses=problems(401, 403, 404), summary="Tracking keys")
    async def list_keys(
        self,
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        user_id: FromQuery[UUID | None] = None,
    ) -> wire.TrackingKeyList:
        return await service.list_keys(session, principal, user_id)

    @delete(
        "/keys/{key_id:uuid}",
        operation_id="revokeTrackingKey",
        responses=problems(401, 403, 404),
        summary="Revoke a tracking key: its app's reports are refused from now on",
    )
    async def revoke_key(
        self, key_id: FromPath[UUID], principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> None:
        await service.revoke_key(session, principal, key_id, now=service.utc_now())
        await session.commit()

    @get("/settings", operation_id="getTrackingSettings", responses=problems(401), summary="Retention and windows")
    async def get_settings(
        self, principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> wire.TrackingSettings:
        return await service.get_settings(session, principal)

    @put(
        "/settings",
        operation_id="putTrackingSettings",
        responses=problems(401, 403, 404, 422),
        summary="Replace retention and tracking windows (admin)",
    )
    async def put_settings(
        self,
        data: JSONBody[wire.TrackingSettingsIn],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> wire.TrackingSettings:
        answer = await service.put_settings(session, principal, data)
        await session.commit()
        return answer


@dataclass
class _TrailFileOperation(Operation):
    """The trail's 200 in each format it is served in (the handler's own media type can name only one)."""

    def __post_init__(self) -> None:
        answer = (self.responses or {}).get("200")
        if isinstance(answer, OpenAPIResponse):
            answer.content = {
                media_type.split(";")[0]: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
                for media_type in timeline.MEDIA_TYPES.values()
            }


class TrackingDayController(Controller):
    """A person's day and trail: a BD reads their own, a supervisor their team's (the caller's data scope)."""

    path = "/v1/tracking/users"
    tags = ["tracking"]

    @get(
        "/{user_id:uuid}/day",
        operation_id="getTrackingDay",
        responses=problems(401, 404, 422),
        summary="A person's day: stops, trips, gaps, visits and check-ins, jobs, geofence events, and the trail",
    )
    async def day(
        self,
        user_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        date: DateParam,
        tz: ZoneParam = "UTC",
        crs: OutCrs = CrsName.WGS84,
    ) -> wire.TrackingDay:
        return await timeline.day(session, principal, user_id, date, tz, crs)

    @get(
        "/{user_id:uuid}/trail",
        operation_id="getTrackingTrail",
        responses=problems(401, 404, 422),
        summary="A person's trail as GeoJSON, GPX, KML or CSV (at most 7 days)",
        description=(
            "`from` and `to` are RFC 3339 times (`to` after `from`, at most 7 days apart: else 422 "
            "`range_too_long`). Answers a file download: `application/geo+json`, `application/gpx+xml`, "
            "`application/vnd.google-earth.kml+xml` or `text/csv`. GPX and KML hold the believable fixes in "
            "segments split at gaps; GeoJSON and CSV every fix with its flags (`mock`, `reasons`)."
        ),
        media_type="application/octet-stream",
        operation_class=_TrailFileOperation,
    )
    async def trail(
        self,
        user_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        from_: Annotated[
            str,
            QueryParameter(
                name="from", min_length=10, max_length=40, pattern=SINGLE_LINE, description="RFC 3339 with an offset"
            ),
        ],
        to: MomentParam,
        format: FromQuery[wire.TrailFormat] = wire.TrailFormat.GEOJSON,
        crs: OutCrs = CrsName.WGS84,
    ) -> Response[bytes]:
        found = await timeline.trail(session, principal, user_id, from_, to, format, crs)
        return Response(
            found.content,
            media_type=found.media_type,
            headers={"Content-Disposition": f'attachment; filename="{found.filename}"'},
        )


def _to_wgs84(fix: service.IncomingFix, crs: CrsName) -> service.IncomingFix:
    from dataclasses import replace

    lat, lon = point_to_wgs84(fix.lat, fix.lon, crs)
    return replace(fix, lat=lat, lon=lon)
