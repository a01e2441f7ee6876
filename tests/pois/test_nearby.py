"""GET /v1/pois/nearby: nearest first, filters, stable keyset paging, coordinate systems, bad input."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from geo.crs import wgs84_to_bd09, wgs84_to_gcj02
from geo.distance import haversine_m
from mobile_contract.auth import Role
from tests.factories import Factory

Client = AsyncTestClient  # type: ignore[type-arg]
CENTRE = (31.2304, 121.4737)


def offset(metres_north: float, metres_east: float = 0.0) -> tuple[float, float]:
    lat = CENTRE[0] + metres_north / 111_195.0
    lon = CENTRE[1] + metres_east / (111_195.0 * 0.855)
    return lat, lon


async def test_nearest_first_with_distances(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    ids = [await factory.poi(tenant, *offset(d), name=f"Shop at {d}") for d in (300, 50, 900, 10, 1500)]
    far = await factory.poi(tenant, *offset(5_000), name="Far away")
    response = await client.get(
        "/v1/pois/nearby", params={"lat": CENTRE[0], "lon": CENTRE[1], "radius_m": 2000}, headers=bd.headers
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["name"] for i in items] == ["Shop at 10", "Shop at 50", "Shop at 300", "Shop at 900", "Shop at 1500"]
    assert str(far) not in {i["id"] for i in items}
    assert {i["id"] for i in items} == {str(i) for i in ids}
    for item in items:
        expected = haversine_m(CENTRE[0], CENTRE[1], item["location"]["lat"], item["location"]["lon"])
        assert abs(item["distance_m"] - expected) < 0.5
    assert response.json()["next_cursor"] is None


async def test_other_tenants_merchants_are_invisible(factory: Factory, client: Client) -> None:
    mine, theirs = await factory.tenant(), await factory.tenant()
    bd = await factory.user(mine)
    await factory.poi(theirs, *offset(5), name="Their shop")
    own = await factory.poi(mine, *offset(500), name="Our shop")
    response = await client.get("/v1/pois/nearby", params={"lat": CENTRE[0], "lon": CENTRE[1]}, headers=bd.headers)
    assert [i["id"] for i in response.json()["items"]] == [str(own)]


async def test_cursor_pages_cover_everything_once_and_stay_stable(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    # Several merchants at the very same spot: ties on distance must still page without loss or repeats.
    expected = {str(await factory.poi(tenant, *offset(100))) for _ in range(5)}
    expected |= {str(await factory.poi(tenant, *offset(50 * k, 30))) for k in range(1, 13)}
    seen: list[str] = []
    params = {"lat": CENTRE[0], "lon": CENTRE[1], "limit": 4}
    cursor = None
    last_distance = -1.0
    for _ in range(10):
        page = await client.get(
            "/v1/pois/nearby", params={**params, **({"cursor": cursor} if cursor else {})}, headers=bd.headers
        )
        assert page.status_code == 200, page.text
        body = page.json()
        for item in body["items"]:
            assert item["distance_m"] >= last_distance
            last_distance = item["distance_m"]
        seen += [i["id"] for i in body["items"]]
        if len(seen) == 4:
            # A merchant added near the start after the first page does not shift the later pages.
            await factory.poi(tenant, *offset(1))
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert set(seen) == expected


async def test_name_search_by_characters_pinyin_and_initials(factory: Factory, client: Client) -> None:
    """`q` finds a Chinese name by its characters (traditional or full-width typed too), pinyin, initials and
    address; another tenant's merchant of the same name never."""
    tenant, other = await factory.tenant(), await factory.tenant()
    bd = await factory.user(tenant)
    luckin = await factory.poi(tenant, *offset(10), name="瑞幸咖啡（南京西路店）", address="静安区南京西路1266号")
    await factory.poi(tenant, *offset(20), name="麦当劳(人民广场店)", address="黄浦区西藏中路")
    await factory.poi(other, *offset(5), name="瑞幸咖啡（南京西路店）")

    async def ids(q: str) -> list[str]:
        response = await client.get(
            "/v1/pois/nearby", params={"lat": CENTRE[0], "lon": CENTRE[1], "q": q}, headers=bd.headers
        )
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["items"]]

    for q in ("瑞幸", "瑞幸咖啡(南京西路店)", "ruixing", "RuiXing KaFei", "rxkf", "南京西路", "nanjingxilu", "靜安"):
        assert await ids(q) == [str(luckin)], q
    assert await ids("咖啡店") == []


async def test_category_name_and_pool_filters(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    team = await factory.team(tenant)
    bd = await factory.user(tenant, team_id=team)
    teammate = await factory.user(tenant, team_id=team, login=False)
    stranger = await factory.user(tenant, login=False)
    supervisor = await factory.user(tenant, Role.SUPERVISOR, team_id=team)
    open_tea = await factory.poi(tenant, *offset(10), name="Golden Lotus Tea", category="tea_shop")
    mine = await factory.poi(tenant, *offset(20), name="Lao Wang Noodles", holder_id=bd.id)
    teammates = await factory.poi(
        tenant, *offset(30), name="Xiao Li Fruit", category="fruit_shop", holder_id=teammate.id
    )
    strangers = await factory.poi(tenant, *offset(40), name="100% Juice_Bar", holder_id=stranger.id)

    async def ids(user_headers: dict[str, str], **params: object) -> list[str]:
        response = await client.get(
            "/v1/pois/nearby", params={"lat": CENTRE[0], "lon": CENTRE[1], **params}, headers=user_headers
        )
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["items"]]

    assert await ids(bd.headers, category="tea_shop") == [str(open_tea)]
    assert await ids(bd.headers, q="noodle") == [str(mine)]
    assert await ids(bd.headers, q="100%") == [str(strangers)]  # wildcards in the search are literal
    assert await ids(bd.headers, q="%") == [str(strangers)]
    assert await ids(bd.headers, pool="open") == [str(open_tea)]
    assert await ids(bd.headers, pool="mine") == [str(mine)]
    assert await ids(bd.headers, pool="team") == [str(mine)]  # a BD's scope is themself
    assert await ids(supervisor.headers, pool="team") == [str(mine), str(teammates)]
    body = (
        await client.get(
            "/v1/pois/nearby", params={"lat": CENTRE[0], "lon": CENTRE[1], "pool": "mine"}, headers=bd.headers
        )
    ).json()
    assert body["items"][0]["holder"] == {"user_id": str(bd.id), "display_name": f"User {bd.username}"}


async def test_chinese_coordinate_systems_in_and_out(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    poi = await factory.poi(tenant, *offset(200))
    poi_lat, poi_lon = offset(200)
    for crs, convert in (("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)):
        lat, lon = convert(*CENTRE)
        response = await client.get("/v1/pois/nearby", params={"lat": lat, "lon": lon, "crs": crs}, headers=bd.headers)
        item = response.json()["items"][0]
        assert item["id"] == str(poi)
        assert abs(item["distance_m"] - 200) < 1.0  # the search ran from the true (WGS-84) position
        want_lat, want_lon = convert(poi_lat, poi_lon)
        assert abs(item["location"]["lat"] - want_lat) < 1e-6
        assert abs(item["location"]["lon"] - want_lon) < 1e-6


async def test_bad_input_is_a_clear_problem(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    base = {"lat": CENTRE[0], "lon": CENTRE[1]}
    bad = [
        {"lat": 91, "lon": 0},
        {"lat": 0, "lon": -181},
        {"lat": "nan", "lon": 0},
        {"lat": "NaN", "lon": "inf"},
        {"lat": "north", "lon": 0},
        {"lon": 0},
        {**base, "radius_m": 0},
        {**base, "radius_m": 1e9},
        {**base, "radius_m": "-5"},
        {**base, "limit": 0},
        {**base, "limit": 100000},
        {**base, "limit": "ten"},
        {**base, "pool": "everyone"},
        {**base, "crs": "mercator"},
        {**base, "category": "DROP TABLE"},
        {**base, "q": "x" * 101},
    ]
    for params in bad:
        response = await client.get("/v1/pois/nearby", params=params, headers=bd.headers)
        assert response.status_code in (400, 422), params
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "validation_failed", params
    for cursor in ("garbage", "eyJub3QiOiJhIGN1cnNvciJ9", "W10"):
        response = await client.get("/v1/pois/nearby", params={**base, "cursor": cursor}, headers=bd.headers)
        assert response.status_code == 400, cursor
        assert response.json()["code"] == "invalid_cursor"


async def test_cursor_from_another_search_is_refused(factory: Factory, client: Client) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    for k in range(3):
        await factory.poi(tenant, *offset(10 * (k + 1)))
    first = await client.get(
        "/v1/pois/nearby", params={"lat": CENTRE[0], "lon": CENTRE[1], "limit": 1}, headers=bd.headers
    )
    cursor = first.json()["next_cursor"]
    moved = await client.get(
        "/v1/pois/nearby",
        params={"lat": CENTRE[0] + 0.01, "lon": CENTRE[1], "limit": 1, "cursor": cursor},
        headers=bd.headers,
    )
    assert moved.status_code == 400
    assert moved.json()["code"] == "invalid_cursor"


async def test_nearby_needs_a_token(client: Client) -> None:
    response = await client.get("/v1/pois/nearby", params={"lat": 0, "lon": 0})
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
