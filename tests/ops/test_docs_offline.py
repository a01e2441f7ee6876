"""The API docs pages work with no internet: Swagger UI and ReDoc come from the app itself.

The browser test runs Debian's Chromium headless (installed with apt-get when missing and we are root, as
tests/watermelon installs Node) against the app in a real server process, with every host name but 127.0.0.1
unresolvable, and reads the rendered DOM: the operations must be there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from backend.settings import Settings
from tests.live_server import LiveServer

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    # No network but the app: any CDN the pages still named would fail to load, and the page would stay blank.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=127.0.0.1",
    # Let the page's scripts run (fetch the schema, render) before the DOM is dumped.
    "--virtual-time-budget=30000",
]


@pytest.mark.parametrize("page", ["/schema/swagger", "/schema/redoc", "/schema"])
async def test_the_docs_pages_load_nothing_from_elsewhere(
    client: AsyncTestClient,  # type: ignore[type-arg]
    page: str,
) -> None:
    html = (await client.get(page)).text
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert urls, html
    assert all(url.startswith(("/schema/", "data:")) for url in urls), urls
    for url in urls:
        if url.startswith("/"):
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 1000, url


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail("Chromium is needed for the docs test: as root on Debian run apt-get install -y chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            pytest.fail(f"{' '.join(argv)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is still not on PATH after installing it")
    return found


@pytest.fixture(scope="module")
def docs_server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(settings, log=tmp_path_factory.mktemp("docs") / "server.log").start()
    try:
        yield server
    finally:
        server.stop()


def _rendered(chromium: str, url: str, profile: Path) -> str:
    result = subprocess.run(  # noqa: S603 - our own argv
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize(
    ("page", "rendered"),
    [
        # Swagger UI: one `opblock` per operation, with its path and summary.
        ("/schema/swagger", [r'class="opblock opblock-get', r"/v1/pois/nearby", r"Merchants nearest first"]),
        # ReDoc: the operations in its side menu and their sections.
        ("/schema/redoc", [r"Merchants nearest first", r"/v1/pois/nearby", r'id="operation/nearbyPois"']),
    ],
)
def test_the_docs_pages_render_the_operations_with_no_internet(
    docs_server: LiveServer, tmp_path: Path, page: str, rendered: list[str]
) -> None:
    dom = _rendered(_chromium(), docs_server.url + page, tmp_path / "profile")
    for pattern in rendered:
        assert re.search(pattern, dom), f"{pattern!r} not in the rendered {page}:\n{dom[:3000]}"
    assert "Failed to load API definition" not in dom
    assert "Something went wrong" not in dom
