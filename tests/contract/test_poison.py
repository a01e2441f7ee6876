"""Poison values into every field of the JSON endpoints and their query parameters: never a 5xx, always a
problem+json with a known code, nothing stored for a refused request; through both push endpoints a poison
mutation or row is refused alone and the ones after it still apply. Cases are generated (hypothesis)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from backend.assignment.service import pool_nearby
from backend.auth.tokens import TokenCodec
from backend.coordinates import stored_point
from backend.settings import Settings
from mobile_contract.auth import Role
from mobile_contract.errors import ErrorCode
from tests.factories import Factory, FieldUser, fix
from tests.jobs.helpers import create_job, job_body
from tests.tasks.helpers import campaign_body

Client = AsyncTestClient  # type: ignore[type-arg]
KNOWN_CODES = {code.value for code in ErrorCode}
DEEP = "__DEEP__"

POISON: list[Any] = [
    "\x00",
    "a\x00b",
    "\x01\x1f",
    "x" * 100_000,
    "\u202e\ufeff\U0001f600",
    2**63,
    2**64 + 1,
    -(2**63) - 1,
    10**32,
    "1" * 32,
    1e308,
    -1e308,
    -0.0,
    1e20,
    -1,
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "2026-12-02T10:00:00",
    "",
    None,
    True,
    [],
    {},
    DEEP,
]


def generated(strategy: st.SearchStrategy[Any], n: int = 120) -> list[Any]:
    """Cases drawn by hypothesis (fixed seed), then sent one by one on the test's event loop: hypothesis cannot
    drive an async test inside a running loop, and the app under test lives on that loop."""
    drawn: list[Any] = []

    @settings(max_examples=n, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(case: Any) -> None:
        drawn.append(case)

    collect()
    return drawn


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a body a value can be put: each leaf and each container itself."""
    found = [path] if path else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _leaves(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _leaves(child, (*path, index))
    return found


def _poisoned(body: Any, path: tuple[Any, ...], poison: Any) -> str:
    body = json.loads(json.dumps(body))
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = poison
    text = json.dumps(body)
    return text.replace(json.dumps(DEEP), "[" * 1000 + "]" * 1000)


def _assert_problem_or_success(response: Any) -> None:
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), response.text[:300]
        assert response.json()["code"] in KNOWN_CODES


async def _world(factory: Factory) -> dict[str, Any]:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    ops = await factory.user(tenant, Role.OPS)
    poi = await factory.poi(tenant, 31.2304, 121.4737)
    return {"tenant": tenant, "bd": bd, "ops": ops, "poi": poi}


def _bodies(world: dict[str, Any]) -> list[tuple[str, str, FieldUser | None, dict[str, Any]]]:
    bd, ops, poi = world["bd"], world["ops"], world["poi"]
    now = datetime.now(UTC)
    return [
        ("POST", "/v1/auth/token", None, {"username": bd.username, "password": "wrong", "device_id": "d-1"}),
        ("POST", "/v1/auth/refresh", None, {"refresh_token": "nope", "device_id": "d-1"}),
        (
            "POST",
            "/v1/pois",
            bd,
            {
                "id": str(uuid.uuid4()),
                "name": "Poison Tea",
                "category": "cafe",
                "location": {"lat": 31.24, "lon": 121.48},
                "address": "1 Road",
                "contacts": [{"name": "Li", "role": "owner", "phone": "+86 138 0000 0000"}],
            },
        ),
        (
            "POST",
            "/v1/visits",
            bd,
            {"id": str(uuid.uuid4()), "poi_id": str(poi), "fix": fix(31.2304, 121.4737), "note": "hello"},
        ),
        (
            "POST",
            "/v1/devices",
            bd,
            {"device_id": "d-1", "platform": "ios", "push_token": "ab" * 32, "app_version": "1"},
        ),
        ("POST", "/v1/sync/pull", bd, {"limit": 10}),
        ("POST", "/v1/campaigns", ops, campaign_body()),
        ("POST", "/v1/jobs", ops, job_body()),
        (
            "POST",
            "/v1/sync/push",
            bd,
            {
                "client_id": "phone-p",
                "mutations": [
                    {
                        "id": 1,
                        "name": "visit.check_in",
                        "args": {"id": str(uuid.uuid4()), "poi_id": str(poi), "fix": fix(31.2304, 121.4737)},
                        "created_at": (now - timedelta(seconds=5)).isoformat(),
                    }
                ],
            },
        ),
    ]


async def test_poison_in_any_field_of_any_body_is_a_problem_never_a_500(factory: Factory, client: Client) -> None:
    world = await _world(factory)
    cases = [(method, path, user, body, leaf) for method, path, user, body in _bodies(world) for leaf in _leaves(body)]

    async def probe(case: tuple[str, str, FieldUser | None, dict[str, Any], tuple[Any, ...]], poison: Any) -> None:
        method, path, user, body, leaf = case
        if "id" in body:
            body = {**body, "id": str(uuid.uuid4())}  # a fresh record each time, so "nothing stored" is checkable
        content = _poisoned(body, leaf, poison)
        headers = {"content-type": "application/json", **(user.headers if user else {})}
        response = await client.request(method, path, content=content, headers=headers)
        _assert_problem_or_success(response)
        table = {"/v1/pois": "pois", "/v1/visits": "visits", "/v1/campaigns": "campaigns", "/v1/jobs": "jobs"}.get(path)
        if table is not None and "id" in body and response.status_code >= 400 and leaf != ("id",):
            count = f"SELECT count(*) FROM {table} WHERE id = :id"  # noqa: S608 - a fixed table name
            assert await factory.count(count, id=uuid.UUID(body["id"])) == 0, (path, leaf, poison)

    for drawn in generated(
        st.fixed_dictionaries({"case": st.sampled_from(cases), "poison": st.sampled_from(POISON)}), 150
    ):
        await probe(**drawn)


async def test_a_body_nested_1000_deep_is_a_422_on_every_route(factory: Factory, client: Client) -> None:
    world = await _world(factory)
    deep = "[" * 1000 + "]" * 1000
    for method, path, user, _ in _bodies(world):
        response = await client.request(
            method, path, content=deep, headers={"content-type": "application/json", **(user.headers if user else {})}
        )
        assert response.status_code == 422, (path, response.text[:200])
        assert response.json()["code"] == "validation_failed"


QUERY_POISON = [
    "\x00",
    "a\x00",
    "1e-15",
    "-90",
    "1" * 32,
    str(2**63),
    "-0.0",
    "1e308",
    "nan",
    "inf",
    "",
    "%",
    "x" * 500,
]


def _valid_parameter(schema: dict[str, Any], components: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(components["schemas"][schema["$ref"].rsplit("/", 1)[-1]]["enum"][0])
    for key in ("allOf", "oneOf", "anyOf"):
        if key in schema:
            return _valid_parameter(schema[key][0], components)
    if schema.get("format") == "uuid":
        return str(uuid.uuid4())
    if schema.get("type") in ("number", "integer"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        return str(int(low) + 1 if schema.get("type") == "integer" else max(float(low), 0.0) + 1.0)
    return "abc"


async def test_poison_in_every_query_and_path_parameter_of_the_document(factory: Factory, client: Client) -> None:
    """Every GET operation of the OpenAPI document, each parameter in turn poisoned, as a real user."""
    from backend.app import openapi_document

    world = await _world(factory)
    document = openapi_document()
    components = document["components"]
    probes = []
    for path, operations in document["paths"].items():
        operation = operations.get("get")
        if operation is None:
            continue
        parameters = operation.get("parameters", [])
        for poisoned in parameters:
            probes.append((path, tuple(p["name"] for p in parameters), poisoned["name"]))
    assert len(probes) > 20
    by_name = {
        (path, p["name"]): p
        for path, operations in document["paths"].items()
        for p in operations.get("get", {}).get("parameters", [])
    }

    async def probe(case: tuple[str, tuple[str, ...], str], poison: str) -> None:
        path, names, poisoned = case
        values = {name: _valid_parameter(by_name[(path, name)]["schema"], components) for name in names}
        values[poisoned] = poison
        url = path
        query = {}
        for name, value in values.items():
            if by_name[(path, name)]["in"] == "path":
                url = url.replace("{" + name + "}", quote(value, safe="") or "%20")
            else:
                query[name] = value
        for user in (world["bd"], world["ops"]):
            response = await client.get(url, params=query, headers=user.headers)
            _assert_problem_or_success(response)

    strategy = st.fixed_dictionaries({"case": st.sampled_from(probes), "poison": st.sampled_from(QUERY_POISON)})
    for drawn in generated(strategy, 150):
        await probe(**drawn)


async def test_poison_in_query_and_path_parameters(factory: Factory, client: Client) -> None:
    world = await _world(factory)
    bd = world["bd"]
    await factory.poi(world["tenant"], 0.0, 0.0)
    base = {"lat": "0", "lon": "0"}
    routes = [
        ("/v1/pois/nearby", {**base, "q": "tea", "category": "cafe", "crs": "bd09", "limit": "5", "radius_m": "100"}),
        ("/v1/jobs/pool", {**base, "limit": "5", "radius_m": "100"}),
        ("/v1/sync/watermelon", {"last_pulled_at": "null", "schema_version": "1"}),
        ("/v1/visits", {"limit": "5", "cursor": "abc"}),
        ("/v1/work-items", {"limit": "5", "cursor": "abc"}),
    ]

    async def probe(route: tuple[str, dict[str, str]], name_index: int, poison: str) -> None:
        path, params = route
        name = sorted(params)[name_index % len(params)]
        response = await client.get(path, params={**params, name: poison}, headers=bd.headers)
        _assert_problem_or_success(response)

    for drawn in generated(
        st.fixed_dictionaries(
            {
                "route": st.sampled_from(routes),
                "name_index": st.integers(0, 10),
                "poison": st.sampled_from(QUERY_POISON),
            }
        ),
        100,
    ):
        await probe(**drawn)
    # Refused at the edge, not merely survived: U+0000 in text parameters is a 422 problem.
    for name, value in (("q", "a\x00"), ("cursor", "\x00"), ("category", "cafe\x00")):
        response = await client.get("/v1/pois/nearby", params={**base, name: value}, headers=bd.headers)
        assert response.status_code == 422, (name, response.text)
    response = await client.get("/v1/sync/watermelon", params={"last_pulled_at": "1" * 32}, headers=bd.headers)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_cursor"
    for device in ("a%00b", "%00", "x" * 129):
        response = await client.delete(f"/v1/devices/{device}", headers=bd.headers)
        _assert_problem_or_success(response)


def _check_in(mutation_id: Any, poi: uuid.UUID, **args: Any) -> dict[str, Any]:
    return {
        "id": mutation_id,
        "name": "visit.check_in",
        "args": {"id": str(uuid.uuid4()), "poi_id": str(poi), "fix": fix(31.2304, 121.4737), **args},
        "created_at": datetime.now(UTC).isoformat(),
    }


MUTATION_POISON: list[tuple[str, Any]] = [
    ("note", "a\x00b"),
    ("note", DEEP),
    ("checked_in_at", "0001-01-01T00:00:00+14:00"),
    ("checked_in_at", "9999-12-31T23:59:59-14:00"),
    ("checked_in_at", 1e20),
    ("id", 2**63),
    ("created_at", "0001-01-01T00:00:00+14:00"),
    ("extra\x00key", 1),
    ("nested", [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]),
    ("note", "\x00" * 3),
]


async def test_a_poison_mutation_is_refused_alone_and_the_queue_moves_on(factory: Factory, client: Client) -> None:
    world = await _world(factory)
    bd, poi = world["bd"], world["poi"]
    next_id = iter(range(1, 10_000))

    async def probe(where: tuple[str, Any]) -> None:
        field, value = where
        before, after = _check_in(next(next_id), poi), _check_in(next(next_id), poi)
        poison = _check_in(next(next_id), poi)
        if field == "id":
            poison["id"] = value
        elif field == "created_at":
            poison["created_at"] = value
        elif value == DEEP:
            poison["args"][field] = DEEP
        else:
            poison["args"][field] = value
        body = {"client_id": "phone-q", "mutations": [before, poison, after]}
        content = json.dumps(body).replace(json.dumps(DEEP), "[" * 1000 + "]" * 1000)
        response = await client.post(
            "/v1/sync/push", content=content, headers={"content-type": "application/json", **bd.headers}
        )
        if value == DEEP and field == "note":
            # Nested past the decoder's stack, the body cannot even be read: the one refusal that is whole.
            assert response.status_code == 422
            return
        assert response.status_code == 200, response.text[:500]
        results = response.json()["results"]
        assert [r["status"] for r in results] == ["applied", "rejected", "applied"], results
        assert results[1]["code"] == "validation_failed"

    for drawn in generated(st.fixed_dictionaries({"where": st.sampled_from(MUTATION_POISON)}), 20):
        await probe(**drawn)


WATERMELON_POISON: list[tuple[str, Any]] = [
    ("note", "a\x00b"),
    ("in_captured_at", 1e20),
    ("in_captured_at", -1e20),
    ("checked_in_at", 1e20),
    ("checked_in_at", 2**63),
    ("in_lat", 1e308),
    ("in_lat", -0.0),
    ("note", [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]),
    ("poi_id", "\x00"),
]


def _watermelon_visit(poi: uuid.UUID, **override: Any) -> dict[str, Any]:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    row = {
        "id": str(uuid.uuid4()),
        "poi_id": str(poi),
        "status": "open",
        "checked_in_at": now_ms,
        "in_lat": 31.2304,
        "in_lon": 121.4737,
        "in_accuracy_m": 10.0,
        "in_captured_at": now_ms - 2000,
        "in_is_mock": False,
    }
    row.update(override)
    return row


async def test_a_poison_watermelon_row_is_refused_alone(factory: Factory, client: Client) -> None:
    world = await _world(factory)
    bd, poi = world["bd"], world["poi"]

    async def probe(where: tuple[str, Any], last_pulled_at: str) -> None:
        field, value = where
        good, bad, later = _watermelon_visit(poi), _watermelon_visit(poi, **{field: value}), _watermelon_visit(poi)
        body = {"changes": {"visits": {"created": [good, bad, later], "updated": [], "deleted": []}}}
        response = await client.post(
            "/v1/sync/watermelon", params={"last_pulled_at": last_pulled_at}, json=body, headers=bd.headers
        )
        assert response.status_code == 200, response.text[:500]
        for row in (good, later):
            assert await factory.count("SELECT count(*) FROM visits WHERE id = :id", id=uuid.UUID(row["id"])) == 1
        stored = await factory.count("SELECT count(*) FROM visits WHERE id = :id", id=uuid.UUID(bad["id"]))
        if field not in ("in_lat",):  # -0.0 is a fine latitude
            assert stored == 0

    for drawn in generated(
        st.fixed_dictionaries(
            {
                "where": st.sampled_from(WATERMELON_POISON),
                "last_pulled_at": st.sampled_from(["null", "1" * 32, str(2**63)]),
            }
        ),
        30,
    ):
        await probe(**drawn)


async def test_nearby_by_knn_near_zero_the_antimeridian_and_the_poles(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    ops = await factory.user(tenant, Role.OPS)
    tech = await factory.user(tenant, Role.TECHNICIAN)
    spots = [
        (0.0, 0.0),
        (0.0, 180.0),
        (0.0, -180.0),
        (45.0, 179.9999999),
        (-45.0, -179.9999999),
        (90.0, 0.0),
        (-90.0, 33.0),
        (89.9999999, 179.9999999),
    ]
    for lat, lon in spots:
        await factory.poi(tenant, *stored_point(lat, lon))  # as the services store them
        await create_job(client, ops, location={"lat": lat, "lon": lon}, dispatch="pool")
    tiny = st.sampled_from([0.0, -0.0, 1e-15, -1e-15, 1e-12, 5e-8, 1e-7, -1e-9])

    async def probe(spot: tuple[float, float], dlat: float, dlon: float, crs: str) -> None:
        lat = max(-90.0, min(90.0, spot[0] + dlat))
        lon = max(-180.0, min(180.0, spot[1] + dlon))
        for path, user in (("/v1/pois/nearby", bd), ("/v1/jobs/pool", tech)):
            params = {"lat": repr(lat), "lon": repr(lon), "radius_m": "1000"}
            if path.endswith("nearby"):
                params["crs"] = crs
            elif crs != "wgs84":
                continue
            response = await client.get(path, params=params, headers=user.headers)
            _assert_problem_or_success(response)
            if crs == "wgs84":
                assert response.status_code == 200, response.text
                assert response.json() if path.endswith("pool") else response.json()["items"], (path, lat, lon)

    for drawn in generated(
        st.fixed_dictionaries(
            {
                "spot": st.sampled_from(spots),
                "dlat": tiny,
                "dlon": tiny,
                "crs": st.sampled_from(["wgs84", "gcj02", "bd09"]),
            }
        ),
        50,
    ):
        await probe(**drawn)


async def test_the_jobs_pool_survives_knn_ordering_errors_when_the_index_is_used(
    factory: Factory, client: Client, settings: Settings
) -> None:
    """The pool near the points where PostGIS's KNN breaks, with sequential scans and sorts discouraged. (Measured
    with EXPLAIN: today the pool's `ORDER BY distance, id` is served by the tenant index and a sort, not by KNN, so
    this guards the fallback for the day the plan changes.)"""
    tenant = await factory.tenant()
    ops = await factory.user(tenant, Role.OPS)
    tech = await factory.user(tenant, Role.TECHNICIAN)
    for lat, lon in ((45.0, 179.9999999), (0.0, 0.0), (90.0, 0.0)):
        await create_job(client, ops, location={"lat": lat, "lon": lon}, dispatch="pool")
    principal = TokenCodec(settings).decode(tech.headers["Authorization"].split()[1])
    for lat, lon in ((45.0, -180.0), (1e-15, 0.0), (90.0, 12.0), (0.0, 1e-15)):
        async with factory.database.sessions() as session:
            for knob in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                await session.execute(text(f"SET LOCAL {knob} = off"))
            found = await pool_nearby(session, principal, lat, lon, 1_000.0, 20)
            await session.rollback()
        assert found, (lat, lon)
