"""Every operation of the OpenAPI document, fuzzed by schemathesis as every role against a live server.

Each (role, operation) pair draws requests from the document: valid ones, and ones that break it on purpose
(negative mode); ids are sometimes real records of the fuzz run's tenant, sometimes another tenant's. An answer
fails the test when it is a 5xx, or anything the document does not say: an undocumented status, another content
type, a body outside its schema, or a success to a request the document forbids.

Bounded and reproducible: a fixed seed (GROUNDWORK_FUZZ_SEED), GROUNDWORK_FUZZ_EXAMPLES examples per pair and mode.
`./dev fuzz --examples 500` is the long run.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from backend.app import openapi_document
from backend.db.engine import Database
from backend.settings import Settings
from tests.factories import Factory
from tests.fuzz.world import ROLES, World, build_world
from tests.live_server import LiveServer

EXAMPLES = int(os.environ.get("GROUNDWORK_FUZZ_EXAMPLES", "15"))
SEED = int(os.environ.get("GROUNDWORK_FUZZ_SEED", "20261202"))
SHRINK = os.environ.get("GROUNDWORK_FUZZ_SHRINK", "1") == "1"

SCHEMA = schemathesis.openapi.from_dict(openapi_document())
OPERATIONS = {result.ok().label: result.ok() for result in SCHEMA.get_all_operations()}


def _is_public(label: str) -> bool:
    return OPERATIONS[label].definition.raw.get("security") == [{}]


# An operation that needs no credentials is the same whoever calls it: it is fuzzed once, without a token. Every
# other one as each role, and without a token too, where little more than the 401 is to be seen (fewer examples).
PAIRS = [
    (caller, label)
    for label in sorted(OPERATIONS)
    for caller in (("anonymous",) if _is_public(label) else (*ROLES, "anonymous"))
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

# Which pool of real ids a parameter or body member names. `id` in a create body is the new record's own id.
ID_KINDS = {
    "poi_id": "pois",
    "job_id": "jobs",
    "campaign_id": "campaigns",
    "work_item_id": "work_items",
    "visit_id": "visits",
    "photo_id": "photos",
    "user_id": "users",
    "technician_id": "users",
    "assignee_id": "users",
    "device_id": "devices",
}
CREATED_KIND = {"/v1/pois": "pois", "/v1/jobs": "jobs", "/v1/visits": "visits", "/v1/campaigns": "campaigns"}


@pytest.fixture(scope="module")
def live(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Tokens outlive the longest run; the fuzz's own logins are the only ones it needs.
    server = LiveServer(
        settings, log=tmp_path_factory.mktemp("fuzz") / "server.log", env={"GROUNDWORK_ACCESS_TTL_S": "86400"}
    )
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(database: Database, client: AsyncTestClient, live: LiveServer) -> AsyncIterator[World]:  # type: ignore[type-arg]
    built = await build_world(Factory(database, client), client)
    built.log_in(live.url)
    yield built


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def _ids(world: World, kind: str) -> st.SearchStrategy[str]:
    return st.sampled_from(world.own.by_kind(kind) + world.other.by_kind(kind))


@st.composite
def _with_real_ids(draw: st.DrawFn, case: Any, world: World) -> Any:
    """Some of the generated ids replaced by ids of records that exist (the run's own, or another tenant's)."""

    def swap(name: str, value: Any, kind: str | None) -> Any:
        if kind is None or not isinstance(value, str) or not draw(st.booleans()):
            return value
        return draw(_ids(world, kind))

    for container in (case.path_parameters, case.query):
        if isinstance(container, dict):
            for name, value in container.items():
                container[name] = swap(name, value, ID_KINDS.get(name))

    def walk(node: Any, depth: int) -> None:
        if depth > 3:
            return
        if isinstance(node, dict):
            for name, value in node.items():
                kind = CREATED_KIND.get(case.operation.path) if (depth == 0 and name == "id") else ID_KINDS.get(name)
                node[name] = swap(name, value, kind)
                walk(node[name], depth + 1)
        elif isinstance(node, list):
            for item in node[:3]:
                walk(item, depth + 1)

    walk(case.body, 0)
    return case


def _cases(label: str, world: World, headers: dict[str, str]) -> st.SearchStrategy[Any]:
    """Valid requests with real ids mixed in, and invalid ones. The caller's token is a fixed header: negative
    mode breaks what the document describes, never the credentials the test chose."""
    operation = OPERATIONS[label]
    positive = operation.as_strategy(generation_mode=GenerationMode.POSITIVE, headers=headers).flatmap(
        lambda case: _with_real_ids(case, world)
    )
    negative = operation.as_strategy(generation_mode=GenerationMode.NEGATIVE, headers=headers)
    return st.one_of(positive, negative)


@pytest.mark.parametrize(("caller", "label"), PAIRS, ids=[f"{caller}-{label}" for caller, label in PAIRS])
def test_every_answer_is_documented(
    caller: str, label: str, world: World, live: LiveServer, http: requests.Session, request: pytest.FixtureRequest
) -> None:
    headers = world.headers.get(caller, {})
    phases = [Phase.explicit, Phase.generate, *([Phase.shrink] if SHRINK else [])]

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES if caller != "anonymous" or _is_public(label) else max(3, EXAMPLES // 4),
        database=None,
        deadline=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        print_blob=False,
    )
    @given(case=_cases(label, world, headers))
    def fuzz(case: Any) -> None:
        response = case.call(base_url=live.url, session=http, timeout=30)
        negative = case.meta is not None and case.meta.generation.mode.is_negative
        case.validate_response(response, checks=[*CHECKS, negative_data_rejection] if negative else CHECKS)

    try:
        fuzz()
    except FailureGroup as failure:
        server = live.log_tail(40)
        pytest.fail(
            f"{failure}\nAs {caller}. Reproduce: GROUNDWORK_FUZZ_SEED={SEED} GROUNDWORK_FUZZ_EXAMPLES={EXAMPLES} "
            f"./dev test '{request.node.nodeid}'" + (f"\nThe server's log ends with:\n{server}" if server else ""),
            pytrace=False,
        )
