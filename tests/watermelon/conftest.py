"""The real WatermelonDB client against the real server: a Node toolchain, the app served by uvicorn, phones.

- `node_toolchain`: `node` and `npm` (installed with apt-get when missing and we are root, as on a fresh
  Debian 12 CI machine: its Node 18 is enough), then `npm ci` here whenever node_modules is missing or was
  installed from another package-lock.json.
- `live_server`: the app run by uvicorn in a subprocess on a free 127.0.0.1 port, against the test database and
  with the test client's JWT secret, so tokens minted in-process verify there too.
- `phones`: starts `driver.mjs` processes (one per phone) and ends them at teardown.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backend.settings import REPO_ROOT, Settings
from tests.live_server import LiveServer
from tests.watermelon.harness import Phone, StartPhone

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "package.json"
LOCKFILE = HERE / "package-lock.json"
STAMP = HERE / "node_modules" / ".groundwork-lock.sha256"  # which package(-lock).json node_modules came from
MIN_NODE_MAJOR = 18


def _say(config: pytest.Config, line: str) -> None:
    """A progress line on the terminal, past pytest's output capture (setup can take minutes on a fresh machine)."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if capture is None or reporter is None:
        sys.stderr.write(f"[watermelon] {line}\n")
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"[watermelon] {line}")


def _run(config: pytest.Config, argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    """Run a setup command, echoing its output line by line; fail the tests with its tail if it fails."""
    _say(config, "$ " + " ".join(argv))
    tail: list[str] = []
    with subprocess.Popen(  # noqa: S603  (fixed argv of our own)
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as process:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip()
            if line:
                _say(config, "  " + line)
                tail = [*tail[-40:], line]
        code = process.wait()
    if code != 0:
        pytest.fail(f"{' '.join(argv)} exited {code}:\n" + "\n".join(tail), pytrace=False)


def _node_major(node: str) -> int:
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout  # noqa: S603
    match = re.match(r"v?(\d+)\.", version.strip())
    return int(match.group(1)) if match else 0


def _install_node(config: pytest.Config) -> None:
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(
            "node and npm are needed for the WatermelonDB end-to-end test: install Node 18+ "
            "(as root on Debian: apt-get install -y nodejs npm)",
            pytrace=False,
        )
    _say(config, "node/npm missing: installing Debian's nodejs and npm (one time, a few minutes)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(config, ["apt-get", "update"], env=env)
    _run(config, ["apt-get", "install", "-y", "--no-install-recommends", "nodejs", "npm"], env=env)


@dataclass(frozen=True)
class NodeToolchain:
    node: str
    npm: str
    major: int


@pytest.fixture(scope="session")
def node_toolchain(pytestconfig: pytest.Config) -> NodeToolchain:
    """Node 18+ and npm, and this folder's node_modules exactly as package-lock.json says."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        _install_node(pytestconfig)
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node/npm still not on PATH after installing them", pytrace=False)
    major = _node_major(node)
    if major < MIN_NODE_MAJOR:
        pytest.fail(f"{node} is Node {major}; the WatermelonDB driver needs Node {MIN_NODE_MAJOR}+", pytrace=False)

    wanted = hashlib.sha256(MANIFEST.read_bytes() + b"\0" + LOCKFILE.read_bytes()).hexdigest()
    installed = STAMP.read_text().strip() if STAMP.exists() else None
    if installed != wanted:
        why = "node_modules missing" if not STAMP.parent.exists() else "package.json or package-lock.json changed"
        _say(pytestconfig, f"{why}: npm ci in {HERE.relative_to(REPO_ROOT)} (Node {major})")
        started = time.monotonic()
        _run(pytestconfig, [npm, "ci", "--no-audit", "--no-fund", "--loglevel=http"], cwd=HERE)
        STAMP.write_text(wanted + "\n")
        _say(pytestconfig, f"npm ci done in {time.monotonic() - started:.1f}s")
    return NodeToolchain(node=node, npm=npm, major=major)


# -- the app, served for real --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def live_server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(settings, log=tmp_path_factory.mktemp("live-server") / "uvicorn.log")
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


# -- phones ----------------------------------------------------------------------------------------------------


@pytest.fixture
async def phones(node_toolchain: NodeToolchain, live_server: LiveServer, tmp_path: Path) -> AsyncIterator[StartPhone]:
    """`await phones(name, access_token)` starts a phone syncing with the live server."""
    started: list[Phone] = []

    async def start(name: str, token: str) -> Phone:
        phone = await Phone.start(name, node_toolchain.node, live_server.url, token, tmp_path)
        started.append(phone)
        return phone

    yield start
    for phone in started:
        await phone.close()
