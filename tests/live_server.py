"""The real app in a real server process (uvicorn), for tests that need one: a phone client in another
process, or a server killed in the middle of a request."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from backend.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    def __init__(self, settings: Settings, log: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.env = env or {}  # more environment for the server (e.g. GROUNDWORK_ACCESS_TTL_S)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log  # the server's output, for failure messages; None: inherited
        self.process: subprocess.Popen[bytes] | None = None

    def log_tail(self, lines: int = 60) -> str:
        if self.log is None:
            return ""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def start(self) -> LiveServer:
        env = {
            **os.environ,
            "DATABASE_URL": self.settings.database_url,
            "GROUNDWORK_JWT_SECRET": self.settings.jwt_secret,
            "GROUNDWORK_ARGON2_FAST": "1",
            **self.env,
        }
        # The server's output goes to `log` when one is given, so a failure can quote it (log_tail).
        output = self.log.open("ab") if self.log is not None else None
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "uvicorn",
                "backend.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=output,
        )
        if output is not None:
            output.close()  # the child keeps its own copy of the descriptor
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:  # noqa: S310 - loopback
                    if response.status == 200:
                        return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"the server exited with {self.process.returncode}:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not answer /healthz within 30 s:\n{self.log_tail()}")

    def kill(self) -> None:
        """As a crash would: no shutdown, no cleanup, open transactions cut."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
