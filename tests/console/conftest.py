"""The console's browser test: the demo data in a database of its own, the app in a real server on it, and Debian's
headless Chromium driven through chromedriver (selenium)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from backend.db.admin import create_database, drop_database, with_database_name
from backend.db.migrate import upgrade
from backend.demo.seed import seed_demo
from backend.settings import Settings
from tests.conftest import TEST_DATABASE
from tests.live_server import LiveServer

DEMO_POIS = 300


@pytest.fixture(scope="session")
def console_settings(settings: Settings) -> Iterator[Settings]:
    url = with_database_name(settings.database_url, f"{TEST_DATABASE}_console")
    asyncio.run(create_database(url, drop_first=True))
    upgrade(url)
    # Without the demo's day of movement: the test places every position the page shows itself.
    asyncio.run(seed_demo(url, poi_count=DEMO_POIS, movement=False))
    yield settings.with_database(url)
    asyncio.run(drop_database(url))


@pytest.fixture(scope="session")
def console_server(console_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # The default base map: the app's own grid tiles, so the page needs no internet.
    server = LiveServer(console_settings, log=tmp_path_factory.mktemp("console-server") / "uvicorn.log")
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


def _binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    chromium = _binary("chromium", "chromium-browser")
    driver_path = _binary("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    if chromium is None or driver_path is None:
        pytest.fail("the console test needs Debian's chromium and chromium-driver (./dev installs them as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",  # as root in a container: Chromium's sandbox needs user namespaces
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,900",
        "--lang=en-US",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The browser's time zone is fixed, so "today" and the day's bounds are the same on every machine.
    service = Service(executable_path=driver_path, env={**os.environ, "TZ": "UTC"})
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
