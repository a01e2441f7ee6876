"""A plain HTTP/1.1 client on one keep-alive connection, for the measurements that wrk cannot make: a sequence of
requests that depend on each other (the pages of a first sync), one large request (a push), or N requests whose
every answer is checked (dispatch). Times are as the client sees them on loopback: the server's time plus a
round trip on 127.0.0.1 and the client's own parsing (tens of microseconds)."""

from __future__ import annotations

import http.client
import json
import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bench.progress import BenchError

IDLE_REOPEN_S = 2.0


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    seconds: float  # from sending the request to having read the whole body

    def json(self) -> Any:
        return json.loads(self.body)


class JsonClient:
    def __init__(self, base_url: str, token: str, *, timeout: float = 300.0) -> None:
        parts = urlsplit(base_url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"need a URL with a host and a port, got {base_url!r}")
        self._connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._last_used = -math.inf

    def post(self, path: str, body: bytes) -> Answer:
        if time.monotonic() - self._last_used > IDLE_REOPEN_S:
            # The server closes idle connections (uvicorn: after 5 s); open a fresh one, outside the timing.
            self._connection.close()
            self._connection.connect()
        started = time.perf_counter()
        try:
            self._connection.request("POST", path, body=body, headers=self._headers)
            response = self._connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._connection.close()
            raise BenchError(f"POST {path} failed: {exc!r}") from exc
        seconds = time.perf_counter() - started
        self._last_used = time.monotonic()
        return Answer(status=response.status, body=data, seconds=seconds)

    def post_json(self, path: str, payload: Any, *, expect: int = 200) -> Answer:
        """POST a JSON body; an answer with another status than `expect` fails the benchmark."""
        answer = self.post(path, json.dumps(payload).encode())
        if answer.status != expect:
            detail = answer.body[:2000].decode(errors="replace")
            raise BenchError(f"POST {path} answered {answer.status}, expected {expect}: {detail}")
        return answer

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> JsonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
