"""The real application under uvicorn (uvloop + httptools, as `groundwork serve` runs it), in a subprocess."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from backend.auth.tokens import TokenCodec
from backend.settings import REPO_ROOT, Settings
from bench.progress import BenchError, say

_START_TIMEOUT_S = 60.0

# The app under test gets this secret (GROUNDWORK_JWT_SECRET), so the tokens the bench mints verify, and so do
# the sync cursors the app signs with it.
BENCH_JWT_SECRET = "groundwork-bench-only-secret-0f3c9a7e5d1b4c2a8e6f0b9d7c5a3e1f"  # noqa: S105 - bench data only


def mint_token(
    settings: Settings, *, user_id: UUID, tenant_id: UUID, role: str, data_scope: str, team_id: UUID | None
) -> str:
    """An access token for the app under test, valid for 6 hours (a run never has to refresh it)."""
    codec = TokenCodec(dataclasses.replace(settings, jwt_secret=BENCH_JWT_SECRET, access_token_ttl_s=6 * 3600))
    return codec.issue(
        user_id=user_id, tenant_id=tenant_id, role=role, data_scope=data_scope, team_id=team_id, device_id="bench"
    )


@dataclass(frozen=True, slots=True)
class RunningServer:
    pid: int
    base_url: str


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: SO_REUSEADDR, so the previous run's connections in TIME_WAIT do not count as "in use".
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _uvicorn() -> list[str]:
    script = Path(sys.executable).parent / "uvicorn"
    return [str(script)] if script.exists() else [sys.executable, "-m", "uvicorn"]


@contextmanager
def app_server(
    *, database_url: str, jwt_secret: str, port: int, host: str = "127.0.0.1", extra_env: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    """Serve backend.app on host:port until the block ends (also on errors and Ctrl-C). `extra_env` adds or
    overrides environment variables of the app (an empty value removes one)."""
    if not _port_is_free(host, port):
        raise BenchError(f"port {port} on {host} is in use (another bench still running?); pass --port")
    argv = [
        *_uvicorn(),
        "backend.app:create_app",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    env = {**os.environ, "DATABASE_URL": database_url, "GROUNDWORK_JWT_SECRET": jwt_secret, **(extra_env or {})}
    env = {key: value for key, value in env.items() if value != ""}
    base_url = f"http://{host}:{port}"
    with tempfile.NamedTemporaryFile("w+", prefix="bench-server-", suffix=".log") as log:
        say(f"starting the app: uvicorn on {base_url} (uvloop, httptools, one process)")
        process = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(process, base_url, Path(log.name))
            yield RunningServer(pid=process.pid, base_url=base_url)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            say("stopped the app")


def _wait_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the app exited (code {process.returncode}) before answering. Its output:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:  # noqa: S310 - our own URL
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise BenchError(f"the app did not answer /healthz within {_START_TIMEOUT_S:.0f} s. Its output:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
