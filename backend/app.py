"""The Litestar application: wiring of settings, database, errors and every domain's routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from litestar import Litestar, get
from litestar.config.compression import CompressionConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from backend.auth.passwords import Passwords
from backend.auth.routes import AuthController
from backend.auth.throttle import KnownLocks
from backend.auth.tokens import TokenCodec
from backend.auth.userstate import UserState, UserStates, hot_loader
from backend.db.engine import Database
from backend.deps import DEPENDENCIES
from backend.errors import EXCEPTION_HANDLERS
from backend.jobs.routes import JobController, TechnicianController
from backend.media.routes import PhotoController
from backend.offline.routes import SyncController
from backend.pois.routes import PoiController
from backend.push.routes import DeviceController
from backend.settings import Settings, get_settings
from backend.tasks.routes import CampaignController, WorkItemController
from backend.tenants.routes import TenantController
from backend.visits.routes import VisitController
from sync.cursor import CursorCodec

ROUTES = [
    AuthController,
    PoiController,
    VisitController,
    CampaignController,
    WorkItemController,
    JobController,
    TechnicianController,
    PhotoController,
    SyncController,
    TenantController,
    DeviceController,
]


@get("/healthz", operation_id="health", tags=["ops"], summary="Liveness", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.database = await Database.connect(settings)
        try:
            yield
        finally:
            app.state.passwords.close()
            await app.state.database.close()

    return Litestar(
        route_handlers=[*ROUTES, healthz],
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        state=_initial_state(settings),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=openapi_config(),
        # A first sync is megabytes of JSON that gzip shrinks ten-fold (bench/); small answers are sent as they
        # are, and the hottest route is left out so it pays nothing for the check.
        compression_config=CompressionConfig(
            backend="gzip", minimum_size=16 * 1024, gzip_compress_level=5, exclude=["/v1/pois/nearby", "/healthz"]
        ),
        debug=False,
    )


def _initial_state(settings: Settings) -> Any:
    from litestar.datastructures import State

    state = State(
        {
            "settings": settings,
            "tokens": TokenCodec(settings),
            "cursors": CursorCodec(settings.jwt_secret.encode()),
            "passwords": Passwords.from_settings(settings),
            "login_locks": KnownLocks(),
        }
    )

    async def load_user_state(user_id: UUID, tenant_id: UUID) -> UserState:
        # The database joins the state in the lifespan, after this is built: look it up at call time.
        return await hot_loader(state.database.hot.fetch)(user_id, tenant_id)

    state.user_states = UserStates(load_user_state, ttl_s=settings.user_state_ttl_s)
    return state


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Groundwork mobile API",
        version="1.0.0",
        description="The contract the phone apps are built against. Errors are RFC 9457 problems with a `code`.",
        components=Components(
            security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}
        ),
        security=[{"bearer": []}],
        use_handler_docstrings=False,
    )


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the code, without touching a database."""
    app = Litestar(route_handlers=ROUTES, dependencies=DEPENDENCIES, openapi_config=openapi_config())
    return app.openapi_schema.to_schema()
