"""The harness's parts: the live server's handle, and a phone, one `driver.mjs` process (the real WatermelonDB
client) spoken to in JSON lines."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, Protocol, TextIO

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "driver.mjs"
DRIVER_TIMEOUT_S = 20.0

Rows = dict[str, dict[str, dict[str, Any]]]  # table -> id -> raw row (with _status and _changed)


class DriverError(AssertionError):
    """The driver answered {ok: false}: the WatermelonDB client or the server refused something."""


class Phone:
    def __init__(self, name: str, process: asyncio.subprocess.Process, stderr: TextIO, stderr_path: Path) -> None:
        self.name = name
        self._process = process
        self._stderr = stderr
        self._stderr_path = stderr_path
        self._seq = 0

    @classmethod
    async def start(cls, name: str, node: str, base_url: str, token: str, log_dir: Path) -> Phone:
        stderr_path = log_dir / f"{name}.stderr.log"
        stderr = stderr_path.open("w")
        process = await asyncio.create_subprocess_exec(
            node,
            str(DRIVER),
            cwd=HERE,
            env={**os.environ, "BASE_URL": base_url, "TOKEN": token, "NODE_NO_WARNINGS": "1"},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            limit=64 * 1024 * 1024,  # a dump is one line
        )
        phone = cls(name, process, stderr, stderr_path)
        ready = await phone._read()
        if not ready.get("ready"):
            raise DriverError(f"{name}: driver did not start: {ready}\n{phone.stderr_tail()}")
        return phone

    def stderr_tail(self, lines: int = 40) -> str:
        self._stderr.flush()
        return "\n".join(self._stderr_path.read_text(errors="replace").splitlines()[-lines:])

    async def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        try:
            line = await asyncio.wait_for(self._process.stdout.readline(), DRIVER_TIMEOUT_S)
        except TimeoutError:
            raise DriverError(f"{self.name}: no answer in {DRIVER_TIMEOUT_S}s\n{self.stderr_tail()}") from None
        if not line:
            code = await self._process.wait()
            raise DriverError(f"{self.name}: driver exited {code}\n{self.stderr_tail()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def send(self, op: str, **fields: Any) -> dict[str, Any]:
        """One command; its answer, ok or not."""
        assert self._process.stdin is not None
        self._seq += 1
        self._process.stdin.write((json.dumps({"op": op, "seq": self._seq, **fields}) + "\n").encode())
        await self._process.stdin.drain()
        answer = await self._read()
        assert answer.get("seq") == self._seq, answer
        return answer

    async def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """One command that must succeed."""
        answer = await self.send(op, **fields)
        if not answer.get("ok"):
            raise DriverError(f"{self.name} {op} failed: {answer.get('error')}")
        return answer

    async def sync(self) -> int:
        """WatermelonDB's synchronize(): pull, apply, push. Returns the timestamp the server gave."""
        last_pulled_at: int = (await self.call("sync"))["last_pulled_at"]
        return last_pulled_at

    async def create(self, table: str, raw: dict[str, Any]) -> None:
        await self.call("create", table=table, raw=raw)

    async def update(self, table: str, record_id: str, raw: dict[str, Any]) -> None:
        await self.call("update", table=table, id=record_id, raw=raw)

    async def dump(self) -> Rows:
        """Every local row, by table and id."""
        tables: dict[str, list[dict[str, Any]]] = (await self.call("dump"))["tables"]
        return {table: {row["id"]: row for row in rows} for table, rows in tables.items()}

    async def set_token(self, token: str) -> None:
        await self.call("token", token=token)

    async def close(self) -> None:
        if self._process.returncode is None:
            try:
                await self.send("exit")
                await asyncio.wait_for(self._process.wait(), 5)
            except (AssertionError, TimeoutError, BrokenPipeError, ConnectionResetError):
                self._process.kill()
                await self._process.wait()
        self._stderr.close()


class StartPhone(Protocol):
    async def __call__(self, name: str, token: str) -> Phone: ...
