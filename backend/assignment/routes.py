"""HTTP routes of rule-based assignment: territories, the rule set (versions, dry run) and the stored decisions.
Routing a lead by the rules is the intake's (`POST /v1/intake/leads/{poi_id}/route`): it needs the lead pool."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.assignment import rules, territories
from backend.auth.tokens import Principal
from backend.coordinates import answer_in, request_in_wgs84
from backend.errors import problems
from backend.openapi import replayed
from mobile_contract import assignment as wire
from mobile_contract.location import CrsName

CrsParam = Annotated[CrsName, Parameter(description="Coordinate system of the rings' points, in and out")]


class TerritoryController(Controller):
    path = "/v1/territories"
    tags = ["assignment"]

    @get("/", operation_id="listTerritories", responses=problems(401, 403), summary="The tenant's territories")
    async def list_all(
        self,
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        crs: CrsParam = CrsName.WGS84,
    ) -> list[wire.TerritoryView]:
        return answer_in(await territories.list_territories(session, principal), crs)

    @post(
        "/",
        operation_id="createTerritory",
        status_code=201,
        responses={
            **problems(401, 403, 404, 409, 422),
            **replayed(wire.TerritoryView, "A retry of the same id: the territory as stored, nothing changed"),
        },
        summary="Draw a territory (a simple polygon), optionally a team's",
    )
    async def create(
        self,
        data: JSONBody[wire.TerritoryIn],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        crs: CrsParam = CrsName.WGS84,
    ) -> Response[wire.TerritoryView]:
        view, created = await territories.save_territory(session, principal, request_in_wgs84(data, crs))
        await session.commit()
        return Response(answer_in(view, crs), status_code=201 if created else 200)

    @get("/{territory_id:uuid}", operation_id="getTerritory", responses=problems(401, 403, 404), summary="A territory")
    async def get_one(
        self,
        territory_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        crs: CrsParam = CrsName.WGS84,
    ) -> wire.TerritoryView:
        return answer_in(await territories.get_territory(session, principal, territory_id), crs)

    @put(
        "/{territory_id:uuid}",
        operation_id="replaceTerritory",
        responses=problems(401, 403, 404, 422),
        summary="Redraw or rename a territory",
    )
    async def replace(
        self,
        territory_id: FromPath[UUID],
        data: JSONBody[wire.TerritoryIn],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        crs: CrsParam = CrsName.WGS84,
    ) -> wire.TerritoryView:
        view, _ = await territories.save_territory(session, principal, request_in_wgs84(data, crs), territory_id)
        await session.commit()
        return answer_in(view, crs)

    @delete(
        "/{territory_id:uuid}",
        operation_id="deleteTerritory",
        responses=problems(401, 403, 404),
        summary="Delete a territory (rules naming it stop matching)",
    )
    async def remove(
        self,
        territory_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> None:
        await territories.delete_territory(session, principal, territory_id)
        await session.commit()


class AssignmentController(Controller):
    path = "/v1/assignment"
    tags = ["assignment"]

    @get("/rules", operation_id="getAssignmentRules", responses=problems(401, 403), summary="The rules in force")
    async def get_rules(
        self, principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> wire.RuleSetView:
        return await rules.get_rules(session, principal)

    @put(
        "/rules",
        operation_id="saveAssignmentRules",
        responses=problems(401, 403, 404, 422),
        summary="Save a new version of the rules (the older versions stay as the audit trail)",
    )
    async def save_rules(
        self,
        data: JSONBody[wire.RuleSetIn],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> wire.RuleSetView:
        view = await rules.save_rules(session, principal, data)
        await session.commit()
        return view

    @get(
        "/rules/versions",
        operation_id="listAssignmentRuleVersions",
        responses=problems(401, 403),
        summary="Every saved version of the rules, newest first",
    )
    async def versions(
        self, principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> list[wire.RuleSetView]:
        return await rules.rule_versions(session, principal)

    @post(
        "/rules/dry-run",
        operation_id="dryRunAssignmentRules",
        status_code=200,
        responses=problems(401, 403, 404, 422),
        summary="Run proposed rules on real records without saving: the rule, the choice, who was skipped and why",
    )
    async def dry_run(
        self,
        data: JSONBody[wire.DryRunIn],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> wire.DryRunResult:
        result = await rules.dry_run(session, principal, data, data.as_of or datetime.now(UTC))
        await session.rollback()  # nothing of a dry run is kept
        return result

    @get(
        "/decisions/{record_id:uuid}",
        operation_id="listAssignmentDecisions",
        responses=problems(401, 403, 404),
        summary="The stored decisions about one record, newest first, each with its explanation",
    )
    async def decisions(
        self, record_id: FromPath[UUID], principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> list[wire.DecisionView]:
        return await rules.decisions(session, principal, record_id)
