"""HTTP routes of campaigns and work items."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from litestar import Controller, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.errors import problems
from backend.leads.clock import CLOCK
from backend.openapi import replayed
from backend.tasks import service
from mobile_contract.base import SINGLE_LINE
from mobile_contract.tasks import (
    Campaign,
    CampaignCreate,
    CampaignPage,
    HistoryPage,
    Progress,
    TargetsAdd,
    TargetsAdded,
    WorkItem,
    WorkItemPage,
    WorkItemStatus,
    WorkItemUpdate,
    WorkItemUpdated,
)


class CampaignController(Controller):
    path = "/v1/campaigns"
    tags = ["tasks"]

    @post(
        "/",
        operation_id="createCampaign",
        responses={
            **replayed(Campaign, "A retry of the same id: the campaign as stored, nothing changed"),
            **problems(401, 403, 409),
        },
        summary="Create a task campaign",
    )
    async def create(
        self,
        data: JSONBody[CampaignCreate],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> Response[Campaign]:
        campaign, created = await service.create_campaign(session, principal, data)
        await session.commit()
        return Response(campaign, status_code=201 if created else 200)

    @get(
        "/", operation_id="listCampaigns", responses=problems(400, 401), summary="The tenant's campaigns, newest first"
    )
    async def list_campaigns(
        self,
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Parameter(min_length=1, max_length=200, pattern=SINGLE_LINE)] = None,
    ) -> CampaignPage:
        return await service.list_campaigns(session, principal, limit=limit, cursor=cursor)

    @get("/{campaign_id:uuid}", operation_id="getCampaign", responses=problems(401, 404), summary="One campaign")
    async def get_campaign(
        self,
        campaign_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> Campaign:
        return await service.get_campaign(session, principal, campaign_id)

    @post(
        "/{campaign_id:uuid}/targets",
        operation_id="addCampaignTargets",
        status_code=200,
        responses=problems(401, 403, 404),
        summary="Target merchants: a work item per merchant, assigned explicitly, to its lead holder or by the rules",
    )
    async def add_targets(
        self,
        campaign_id: FromPath[UUID],
        data: JSONBody[TargetsAdd],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> TargetsAdded:
        added = await service.add_targets(session, principal, campaign_id, data, CLOCK.now())
        await session.commit()
        return added

    @get(
        "/{campaign_id:uuid}/progress",
        operation_id="campaignProgress",
        responses=problems(401, 404),
        summary="Progress by target or by assignee, within the caller's data scope",
    )
    async def progress(
        self,
        campaign_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        by: FromQuery[Literal["target", "assignee"]] = "assignee",
    ) -> Progress:
        return await service.progress(session, principal, campaign_id, by)


class WorkItemController(Controller):
    path = "/v1/work-items"
    tags = ["tasks"]

    @get("/", operation_id="listWorkItems", responses=problems(400, 401), summary="Work items in the caller's scope")
    async def list_items(
        self,
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        campaign_id: FromQuery[UUID | None] = None,
        status: FromQuery[WorkItemStatus | None] = None,
        assignee_id: FromQuery[UUID | None] = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Parameter(min_length=1, max_length=200, pattern=SINGLE_LINE)] = None,
    ) -> WorkItemPage:
        return await service.list_work_items(
            session,
            principal,
            campaign_id=campaign_id,
            status=status,
            assignee_id=assignee_id,
            limit=limit,
            cursor=cursor,
        )

    @get("/{work_item_id:uuid}", operation_id="getWorkItem", responses=problems(401, 404), summary="One work item")
    async def get_item(
        self,
        work_item_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> WorkItem:
        return await service.get_work_item(session, principal, work_item_id)

    @get(
        "/{work_item_id:uuid}/history",
        operation_id="workItemHistory",
        responses=problems(400, 401, 404),
        summary="Every value set on a work item, by whom and what became of it (the conflict model's record)",
    )
    async def history(
        self,
        work_item_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        cursor: Annotated[str | None, Parameter(min_length=1, max_length=200, pattern=SINGLE_LINE)] = None,
    ) -> HistoryPage:
        return await service.history(session, principal, work_item_id, limit=limit, cursor=cursor)

    @patch(
        "/{work_item_id:uuid}",
        operation_id="updateWorkItem",
        responses=problems(401, 403, 404, 409),
        summary="Edit notes, answers, outcome or status; or reassign (operations, supervisors)",
    )
    async def update_item(
        self,
        work_item_id: FromPath[UUID],
        data: JSONBody[WorkItemUpdate],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> WorkItemUpdated:
        updated = await service.update_work_item(session, principal, work_item_id, data)
        await session.commit()
        return updated
