"""The supervisor console in a real headless Chromium: sign in as the demo supervisor, see the people on the map
with their trails, open an exception, see that person's day (timeline and trail); a fix ingested while the page
is open moves its marker (the event stream). Also: the page's CSP, its vendored map library, its settings.

Screenshots go to the test's temporary directory; with GROUNDWORK_CONSOLE_SCREENSHOTS=1 also to docs/ (the
README's pictures): `GROUNDWORK_CONSOLE_SCREENSHOTS=1 .venv/bin/pytest tests/console`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from backend.console import routes as console
from backend.console.vendor import sha512_integrity
from backend.db.engine import Database
from backend.demo.seed import DEMO_PASSWORD
from backend.queue.service import Registry
from backend.queue.worker import run_due
from backend.settings import Settings
from backend.tracking import derived
from geo.distance import destination
from tests.factories import fix
from tests.live_server import LiveServer

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
WAIT_S = 60  # a bound on each wait (a loaded machine), never a timed assertion
Client = AsyncTestClient  # type: ignore[type-arg]


def _login(http: httpx.Client, username: str) -> dict[str, str]:
    answer = http.post(
        "/v1/auth/token", json={"username": username, "password": DEMO_PASSWORD, "device_id": f"test-{username}"}
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _fixes(points: list[tuple[float, float, float, float]]) -> list[dict[str, Any]]:
    """(lat, lon, seconds ago, speed) -> fixes as the app sends them."""
    return [
        {"id": str(uuid.uuid4()), **fix(lat, lon, ago_s=ago, accuracy_m=8), "speed_mps": speed, "battery": 64}
        for lat, lon, ago, speed in points
    ]


async def _demo_places(url: str) -> tuple[UUID, UUID, float, float, dict[str, UUID]]:
    conn = await asyncpg.connect(url)
    try:
        tenant = await conn.fetchval("SELECT id FROM tenants WHERE slug = 'demo'")
        poi = await conn.fetchrow(
            "SELECT id, ST_Y(location::geometry) AS lat, ST_X(location::geometry) AS lon FROM pois "
            "WHERE tenant_id = $1 ORDER BY id LIMIT 1",
            tenant,
        )
        users = await conn.fetch(
            "SELECT username, id FROM users WHERE tenant_id = $1 AND username IN ('bd1@demo', 'bd2@demo')", tenant
        )
    finally:
        await conn.close()
    return tenant, poi["id"], poi["lat"], poi["lon"], {row["username"]: row["id"] for row in users}


async def _derive(settings: Settings, tenant_id: UUID) -> None:
    database = await Database.connect(settings)
    try:
        registry = Registry()
        registry.register(derived.DERIVE_DAY, derived.handle_derive_day)
        while await run_due(database, registry, tenant_id=tenant_id):
            pass
    finally:
        await database.close()


def _shot(driver: webdriver.Chrome, name: str, tmp_path: Path) -> None:
    path = tmp_path / f"console-{name}.png"
    assert driver.save_screenshot(str(path))
    if os.environ.get("GROUNDWORK_CONSOLE_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(path, DOCS / path.name)


def _attributes(driver: webdriver.Chrome, css: str, *names: str) -> list[tuple[str, ...]]:
    """The data-* attributes of every element matching `css`, read at one instant by one script."""
    rows: list[list[str]] = driver.execute_script(
        "const [css, names] = arguments;"
        " return Array.from(document.querySelectorAll(css)).map(el => names.map(n => el.dataset[n]));",
        css,
        list(names),
    )
    return [tuple(row) for row in rows]


def _click(driver: webdriver.Chrome, css: str, tries: int = 5) -> None:
    """A real click on the first match, found afresh if a re-render replaced it between finding and clicking."""
    for attempt in range(tries):
        try:
            driver.find_element(By.CSS_SELECTOR, css).click()
            return
        except StaleElementReferenceException:
            if attempt == tries - 1:
                raise


def _wait(driver: webdriver.Chrome, what: str, condition: Any) -> Any:
    try:
        return WebDriverWait(driver, WAIT_S).until(condition)
    except Exception:
        logs = "\n".join(str(entry) for entry in driver.get_log("browser"))
        pytest.fail(f"the console never showed {what}; browser log:\n{logs}", pytrace=False)


def test_the_supervisor_signs_in_sees_the_field_and_opens_a_day(
    console_settings: Settings, console_server: LiveServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    tenant, poi, lat, lon, bds = asyncio.run(_demo_places(console_settings.database_url))
    with httpx.Client(base_url=console_server.url, timeout=30) as http:
        walker, sitter = _login(http, "bd1@demo"), _login(http, "bd2@demo")
        # bd1: a stop 300 m from a merchant, a walk to it, a stop there; a mocked check-in there (flagged).
        start = destination(lat, lon, 250.0, 300.0)
        walk = [destination(start[0], start[1], 70.0, 37.5 * step) for step in range(9)]
        trail = (
            [(start[0], start[1], 3000 - 240 * i, 0.1) for i in range(6)]
            + [(p[0], p[1], 1680 - 30 * i, 1.3) for i, p in enumerate(walk)]
            + [(lat, lon, 1380 - 150 * i, 0.0) for i in range(9)]
        )
        answer = http.post(
            "/v1/tracking/positions", json={"device_id": "bd1-phone", "positions": _fixes(trail)}, headers=walker
        )
        assert answer.json()["accepted"] == len(trail), answer.text
        visit = http.post(
            "/v1/visits",
            json={"id": str(uuid.uuid4()), "poi_id": str(poi), "fix": fix(lat, lon, is_mock=True)},
            headers=walker,
        )
        assert visit.status_code == 201, visit.text
        assert visit.json()["check_in"]["verdict"]["status"] == "rejected"
        # bd2: out on the street, walking.
        elsewhere = destination(lat, lon, 30.0, 900.0)
        moving = [(elsewhere[0], elsewhere[1], 20, 1.4)]
        posted = http.post(
            "/v1/tracking/positions", json={"device_id": "p", "positions": _fixes(moving)}, headers=sitter
        )
        assert posted.status_code == 200, posted.text
        asyncio.run(_derive(console_settings, tenant))

        driver = browser
        driver.get(f"{console_server.url}/console")
        _wait(driver, "the sign-in form", lambda d: d.find_element(By.ID, "signin").is_displayed())
        driver.find_element(By.ID, "username").send_keys("supervisor@demo")
        driver.find_element(By.ID, "password").send_keys(DEMO_PASSWORD)
        _shot(driver, "signin", tmp_path)
        driver.find_element(By.ID, "signin-button").click()

        # The people on the map: a marker for each person with a position, the list with everyone in scope.
        _wait(driver, "the live view", lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-live-loaded"))
        markers = _wait(
            driver,
            "two markers",
            lambda d: (found := d.find_elements(By.CSS_SELECTOR, "path.person-marker")) and len(found) >= 2 and found,
        )
        assert len(markers) == 2
        # Read in one script: the page re-renders its lists as updates arrive, so an element found a moment ago may
        # be gone (stale) by the time its attributes are asked for.
        ids = dict(_attributes(driver, "#people li", "userId", "state"))
        assert ids[str(bds["bd1@demo"])] == "stopped"
        assert ids[str(bds["bd2@demo"])] == "moving"
        _wait(driver, "a trail", lambda d: d.find_elements(By.CSS_SELECTOR, "path.person-trail"))
        _wait(driver, "the live stream", lambda d: d.find_element(By.ID, "stream-state").text == "live")

        # A fix ingested while the page is open moves the marker (Server-Sent Events).
        onwards = destination(elsewhere[0], elsewhere[1], 30.0, 60.0)
        http.post(
            "/v1/tracking/positions",
            json={"device_id": "p", "positions": _fixes([(onwards[0], onwards[1], 1, 1.5)])},
            headers=sitter,
        )
        _wait(
            driver,
            "the live update",
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-last-update") == str(bds["bd2@demo"]),
        )

        # The exceptions list: the mocked check-in, which opens bd1's day.
        flagged_css = "#exceptions li[data-kind='flagged_check_in']"
        flagged = _wait(driver, "the flagged check-in", lambda d: _attributes(d, flagged_css, "userId"))
        assert flagged[0][0] == str(bds["bd1@demo"])
        _shot(driver, "live", tmp_path)
        _click(driver, flagged_css)
        _wait(
            driver,
            "the day",
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-day-opened") == str(bds["bd1@demo"]),
        )
        kinds = [kind for (kind,) in _attributes(driver, "#timeline li", "type")]
        assert "stop" in kinds
        assert "visit" in kinds
        assert driver.find_elements(By.CSS_SELECTOR, "path.day-trail")
        assert "rejected" in driver.find_element(By.ID, "timeline").text
        _shot(driver, "day", tmp_path)

    refused = [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]
    ]
    assert refused == []


async def test_the_page_is_served_with_a_strict_policy_and_no_outside_assets(client: Client) -> None:
    page = await client.get("/console")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert "connect-src 'self'" in policy
    assert "http" not in page.text.replace("http-equiv", "")  # every asset from this origin
    script = await client.get("/console/assets/console.js")
    assert script.status_code == 200
    assert (await client.get("/console/assets/vendor/leaflet-1.9.4/leaflet.js")).status_code == 200
    tile = await client.get("/console/tiles/3/6/3.png")
    assert tile.headers["content-type"] == "image/png"
    config = (await client.get("/console/config.json")).json()
    assert config == {
        "tile_url": "/console/tiles/{z}/{x}/{y}.png",
        "tile_crs": "wgs84",
        "attribution": "Groundwork grid (no base map)",
    }


def test_the_vendored_map_library_is_what_the_registry_published() -> None:
    record = json.loads((console.STATIC.parent / "VENDORED.json").read_text())
    assert record["package"] == "leaflet"
    assert record["version"] == "1.9.4"
    assert record["integrity"].startswith("sha512-")
    folder = console.STATIC.parent / record["directory"]
    for relative, digest in record["files"].items():
        assert hashlib.sha256((folder / relative).read_bytes()).hexdigest() == digest, relative
    assert (
        sha512_integrity(b"")
        == "sha512-" + "z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="
    )


def test_tile_settings_reach_the_policy_and_the_page(settings: Settings) -> None:
    from dataclasses import replace

    amap = replace(
        settings,
        console_tile_url="https://webrd0{s}.is.autonavi.com/appmaptile?x={x}&y={y}&z={z}&style=8",
        console_tile_crs="gcj02",
        console_tile_attribution="© AutoNavi",
    )
    policy = console.content_security_policy(amap)
    assert "img-src 'self' data: https://*.is.autonavi.com" in policy
    assert console.tile_origin("https://tile.example.org/{z}/{x}/{y}.png") == "https://tile.example.org"
    assert console.tile_origin("/console/tiles/{z}/{x}/{y}.png") is None
