"""HTTP routes of business events: the signed ingest for integrations, integration keys, the attribution window,
merchants' external codes, and ops' reads of attributions and progress. Thin: parse, call the service, commit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.errors import DomainError, problems
from backend.events import keys, service
from backend.openapi import replayed
from backend.paging import decode_cursor, encode_cursor
from backend.settings import Settings
from mobile_contract import events as wire
from mobile_contract.base import SINGLE_LINE

Clock = Callable[[], datetime]
CLOCK_STATE = "events_clock"  # app.state: a test sets its own clock here; otherwise the system's


def utc_now() -> datetime:
    return datetime.now(UTC)


def clock_of(state: State) -> Clock:
    clock: Clock = state.get(CLOCK_STATE) or utc_now
    return clock


_INGEST_DESCRIPTION = f"""For integrations (order, contract and recharge systems), not phones. The body is an
`EventIn` (mobile_contract/events.py): `source`, `external_id`, `kind` (`signing` | `recharge` | `order`),
`merchant` (`{{"id": ...}}` or `{{"external_code": ...}}`), `amount` (decimal string) and `currency` (ISO 4217),
`occurred_at`. Signed: `{wire.KEY_ID_HEADER}`, `{wire.TIMESTAMP_HEADER}` (unix seconds, within
{wire.TIMESTAMP_TOLERANCE_S} s) and `{wire.SIGNATURE_HEADER}: v1=<hex HMAC-SHA256 of "<timestamp>." + body>`.
Idempotent on (source, external_id): a resend answers the first answer (200, `Idempotent-Replayed: true`); the
same id with another body is 409 `idempotency_conflict`."""


class EventController(Controller):
    path = "/v1/events"
    tags = ["events"]

    @post(
        "/",
        operation_id="ingestEvent",
        status_code=201,
        security=[],
        responses={
            **replayed(wire.Event, "A resend of the same event (same source, external id and body): the first answer"),
            **problems(401, 409, 413, 415, 422),
        },
        summary="A business event from an integration, signed with an integration key",
        description=_INGEST_DESCRIPTION,
    )
    async def ingest(
        self, request: Request[Any, Any, State], session: NamedDependency[AsyncSession]
    ) -> Response[wire.Event]:
        now = clock_of(request.app.state)()
        body = await request.body()
        settings: Settings = request.app.state.settings
        signed = keys.SignedRequest(
            key_id=request.headers.get(wire.KEY_ID_HEADER),
            timestamp=request.headers.get(wire.TIMESTAMP_HEADER),
            signature=request.headers.get(wire.SIGNATURE_HEADER),
        )
        sender = await keys.verify(session, settings.integration_kek, signed, body, now=now)
        try:
            data = msgspec.json.decode(body, type=wire.EventIn)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            await session.commit()  # the key's last use
            raise ValidationException(
                detail="The event does not match the contract; see `errors`.",
                extra=[{"key": "body", "message": str(exc), "source": "body"}],
            ) from None
        try:
            answer, created = await service.ingest(session, sender, data, now=now)
        except DomainError as exc:
            if exc.keep_effects:
                await session.commit()
            raise
        await session.commit()
        headers = {} if created else {"Idempotent-Replayed": "true"}
        return Response(answer, status_code=201 if created else 200, headers=headers)

    @get(
        "/{event_id:uuid}/attribution",
        operation_id="getEventAttribution",
        responses=problems(401, 403, 404),
        summary="An event and every credit and non-credit it got, with reasons (ops)",
    )
    async def attribution(
        self, event_id: FromPath[UUID], principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> wire.EventAttribution:
        return await service.event_attribution(session, principal, event_id)

    @get(
        "/campaigns/{campaign_id:uuid}/attributions",
        operation_id="listCampaignAttributions",
        responses=problems(400, 401, 403, 404, 422),
        summary="A campaign's credits and non-credits, with reasons (ops)",
    )
    async def campaign_attributions(
        self,
        campaign_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        credited: FromQuery[bool | None] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        cursor: Annotated[str | None, Parameter(min_length=1, max_length=200, pattern=SINGLE_LINE)] = None,
    ) -> wire.AttributionList:
        after = decode_cursor(cursor, tuple[int])[0] if cursor else None
        items, last = await service.campaign_attributions(
            session, principal, campaign_id, credited=credited, after=after, limit=limit
        )
        return wire.AttributionList(items=items, next_cursor=encode_cursor(last) if last is not None else None)

    @get(
        "/refused",
        operation_id="listRefusedEvents",
        responses=problems(400, 401, 403, 422),
        summary="Signed events that were refused (unknown merchant, currency, in the future), newest first (ops)",
    )
    async def refused(
        self,
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        cursor: Annotated[str | None, Parameter(min_length=1, max_length=200, pattern=SINGLE_LINE)] = None,
    ) -> wire.RefusedEventList:
        after = decode_cursor(cursor, tuple[int])[0] if cursor else None
        items, last = await service.refused_events(session, principal, after=after, limit=limit)
        return wire.RefusedEventList(items=items, next_cursor=encode_cursor(last) if last is not None else None)

    @get(
        "/campaigns/{campaign_id:uuid}/progress",
        operation_id="getCampaignEventProgress",
        responses=problems(401, 403, 404, 422),
        summary="A campaign's goal progress measured from credited events, by target or by assignee (ops)",
    )
    async def progress(
        self,
        campaign_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        by: FromQuery[Literal["target", "assignee"]] = "target",
    ) -> wire.EventProgress:
        return await service.progress(session, principal, campaign_id, by)

    @post(
        "/keys",
        operation_id="createIntegrationKey",
        status_code=200,  # not an idempotent create: each call issues a new key (see createTrackingKey)
        responses=problems(401, 403, 422),
        summary="Issue an integration key (admin, ops): the secret is shown once",
    )
    async def create_key(
        self,
        request: Request[Any, Any, State],
        data: JSONBody[wire.IntegrationKeyCreate],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> wire.IntegrationKeyIssued:
        issued = await keys.issue_key(session, principal, data, kek=request.app.state.settings.integration_kek)
        await session.commit()
        return issued

    @get("/keys", operation_id="listIntegrationKeys", responses=problems(401, 403), summary="Integration keys")
    async def list_keys(
        self, principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> wire.IntegrationKeyList:
        return await keys.list_keys(session, principal)

    @delete(
        "/keys/{key_id:uuid}",
        operation_id="revokeIntegrationKey",
        responses=problems(401, 403, 404),
        summary="Revoke an integration key: its signatures are refused from now on",
    )
    async def revoke_key(
        self,
        request: Request[Any, Any, State],
        key_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> None:
        await keys.revoke_key(session, principal, key_id, now=clock_of(request.app.state)())
        await session.commit()

    @get("/settings", operation_id="getEventSettings", responses=problems(401, 403), summary="Attribution window")
    async def get_settings(
        self, principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> wire.EventSettings:
        return await service.get_settings(session, principal)

    @put(
        "/settings",
        operation_id="putEventSettings",
        responses=problems(401, 403, 422),
        summary="Set the attribution window (admin, ops)",
    )
    async def put_settings(
        self,
        data: JSONBody[wire.EventSettingsIn],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> wire.EventSettings:
        answer = await service.put_settings(session, principal, data)
        await session.commit()
        return answer

    @put(
        "/merchants/{poi_id:uuid}/external-code",
        operation_id="putMerchantExternalCode",
        responses=problems(401, 403, 404, 409, 422),
        summary="Set the merchant's code in the tenant's own systems (unique within the tenant)",
    )
    async def put_merchant_code(
        self,
        poi_id: FromPath[UUID],
        data: JSONBody[wire.MerchantCodeIn],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> wire.MerchantCode:
        answer = await service.set_merchant_code(session, principal, poi_id, data)
        await session.commit()
        return answer
