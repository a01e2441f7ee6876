"""The README's examples are executed against the demo data, so they never drift from the code.

Every ```http block of README.md is a conversation: a request (`METHOD /path`, header lines, a body), a blank
line, the answer (`STATUS`, maybe header words, a JSON body), and so on. The blocks are played in order, as one
client, against the app over a freshly seeded demo (tests/docs/conftest.py). The conventions, light enough that
the examples still read as examples:

- `...` elides. Inside an object (`"name": "x", ...`) other keys may follow; an object without it must have
  exactly the keys shown. Inside a list, the items shown are the first ones. A bare `{...}` is any object.
- A string ending in `...` (`"871511ab-..."`, `"eyJhbGciOiJIUzI1NiIs..."`) is not compared: it *names* the actual
  value, and the same text in a later request (path, header or body) stands for it. So a token or an id read
  from one answer is what the next request sends.
- Any other value shown (numbers, strings, booleans, null) must be what the server answered.
- `<now>` in a request is the time it is sent (RFC 3339, UTC).
- An `Authorization` header is kept for the requests that follow, as a phone keeps its token.
- The info string says how much is checked: ```` ```http ```` everything; ```` ```http shape ```` status and
  keys only (values from the 100,000-merchant demo of `./dev demo`; the test seeds 2,000); ```` ```http
  illustration ```` is not played (a story that needs a fault or a bug, said in the text around it).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
_BLOCK = re.compile(r"^```http([^\n]*)\n(.*?)^```", re.S | re.M)
_REQUEST = re.compile(r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (\S+)")
_ANSWER = re.compile(r"^(\d{3})\b\s*(.*)$")
_HEADER = re.compile(r"^([A-Za-z][A-Za-z0-9-]*): (.+)$")


class Anything:
    """`...` standing for a whole value."""


@dataclass(frozen=True)
class Named:
    """A string ending in `...`: not compared, names the actual value."""

    name: str


@dataclass
class Obj:
    members: dict[str, Any]
    open: bool  # had `...`


@dataclass
class Arr:
    items: list[Any]
    open: bool


@dataclass
class Exchange:
    method: str
    path: str
    headers: dict[str, str]
    body: str | None
    status: int
    answer: Any  # parsed with elisions, or None
    line: int


@dataclass
class Block:
    mode: str
    line: int
    exchanges: list[Exchange] = field(default_factory=list)


# -- the elided-JSON reader ---------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0

    def ws(self) -> None:
        while self.i < len(self.text) and self.text[self.i] in " \t\r\n,":
            self.i += 1

    def value(self) -> Any:
        self.ws()
        t = self.text
        if t.startswith("...", self.i):
            self.i += 3
            return Anything()
        c = t[self.i]
        if c == "{":
            self.i += 1
            members: dict[str, Any] = {}
            is_open = False
            while True:
                self.ws()
                if t[self.i] == "}":
                    self.i += 1
                    return Obj(members, is_open)
                if t.startswith("...", self.i):
                    self.i += 3
                    is_open = True
                    continue
                key = self.string()
                self.ws()
                assert t[self.i] == ":", f"expected ':' at {t[self.i : self.i + 30]!r}"
                self.i += 1
                members[key] = self.value()
        if c == "[":
            self.i += 1
            items: list[Any] = []
            is_open = False
            while True:
                self.ws()
                if t[self.i] == "]":
                    self.i += 1
                    return Arr(items, is_open)
                if t.startswith("...", self.i):
                    self.i += 3
                    is_open = True
                    continue
                items.append(self.value())
        if c == '"':
            text = self.string()
            return Named(text) if text.endswith("...") else text
        match = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?|true|false|null").match(t, self.i)
        assert match is not None, f"cannot read {t[self.i : self.i + 30]!r}"
        self.i = match.end()
        return json.loads(match.group(0))

    def string(self) -> str:
        decoder = json.JSONDecoder()
        value, end = decoder.raw_decode(self.text, self.i)
        self.i = end
        assert isinstance(value, str)
        return value


def parse_elided(text: str) -> Any:
    return _Reader(text).value()


# -- the README reader --------------------------------------------------------------------------------------------


def blocks(readme: str) -> Iterator[Block]:
    for match in _BLOCK.finditer(readme):
        start_line = readme.count("\n", 0, match.start()) + 1
        block = Block(match.group(1).strip() or "full", start_line)
        lines = match.group(2).split("\n")
        i = 0
        while i < len(lines):
            request = _REQUEST.match(lines[i])
            if request is None:
                i += 1
                continue
            line_no = start_line + 1 + i
            i += 1
            headers: dict[str, str] = {}
            while i < len(lines) and (header := _HEADER.match(lines[i])):
                headers[header.group(1)] = header.group(2)
                i += 1
            body_lines: list[str] = []
            if headers:  # HTTP's own layout: headers, a blank line, the body
                while i < len(lines) and not lines[i].strip():
                    i += 1
            while i < len(lines) and lines[i].strip() and not _ANSWER.match(lines[i]):
                body_lines.append(lines[i])
                i += 1
            while i < len(lines) and not lines[i].strip():
                i += 1
            answer = _ANSWER.match(lines[i]) if i < len(lines) else None
            assert answer is not None, f"README.md:{line_no}: a request without an answer"
            status, rest = int(answer.group(1)), answer.group(2)
            i += 1
            # The answer's JSON starts at its first bracket (after header words such as `Retry-After: 2`).
            starts = [at for at in (rest.find("{"), rest.find("[")) if at >= 0]
            answer_lines = [rest[min(starts) :]] if starts else []
            while i < len(lines) and lines[i].strip() and not _REQUEST.match(lines[i]):
                answer_lines.append(lines[i])
                i += 1
            text = "\n".join(answer_lines).strip()
            parsed = parse_elided(text) if text.startswith(("{", "[")) else None
            body = "\n".join(body_lines) if body_lines else None
            block.exchanges.append(Exchange(request.group(1), request.group(2), headers, body, status, parsed, line_no))
        yield block


# -- playing and comparing ----------------------------------------------------------------------------------------


def _substitute(text: str, names: dict[str, Any]) -> str:
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, str(names[name]))
    return text.replace("<now>", datetime.now(UTC).isoformat().replace("+00:00", "Z"))


def compare(expected: Any, actual: Any, where: str, names: dict[str, Any], values: bool, errors: list[str]) -> None:
    if isinstance(expected, Anything) or (not values and actual is None):
        return
    if isinstance(expected, Named):
        names[expected.name] = actual
        return
    if isinstance(expected, Obj):
        if not isinstance(actual, dict):
            errors.append(f"{where}: expected an object, got {actual!r:.80}")
            return
        missing = [key for key in expected.members if key not in actual]
        if missing:
            errors.append(f"{where}: keys {missing} missing (answer has {sorted(actual)})")
        if not expected.open and set(actual) - set(expected.members):
            errors.append(f"{where}: keys {sorted(set(actual) - set(expected.members))} not shown (add them or `...`)")
        for key, value in expected.members.items():
            if key in actual:
                compare(value, actual[key], f"{where}.{key}", names, values, errors)
        return
    if isinstance(expected, Arr):
        if not isinstance(actual, list):
            errors.append(f"{where}: expected a list, got {actual!r:.80}")
            return
        if (not expected.open and len(actual) != len(expected.items)) or len(actual) < len(expected.items):
            errors.append(f"{where}: {len(actual)} items, the README shows {len(expected.items)}")
        for n, (e, a) in enumerate(zip(expected.items, actual, strict=False)):
            compare(e, a, f"{where}[{n}]", names, values, errors)
        return
    if not values:
        return
    if isinstance(expected, float) and isinstance(actual, int | float):
        if abs(expected - actual) > 1e-9:
            errors.append(f"{where}: the README says {expected!r}, the server {actual!r}")
    elif expected != actual:
        errors.append(f"{where}: the README says {expected!r}, the server {actual!r}")


@pytest.fixture(scope="module")
async def demo_client(demo_settings: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    async with AsyncTestClient(app=create_app(demo_settings), base_url="http://groundwork.test") as client:
        yield client


def test_the_readme_has_examples_and_plays_most_of_them() -> None:
    found = list(blocks(README.read_text()))
    assert len(found) >= 8
    assert sum(len(b.exchanges) for b in found if b.mode != "illustration") >= 8
    assert {b.mode for b in found} <= {"full", "shape", "illustration"}


async def test_the_readme_examples_answer_as_shown(demo_client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    names: dict[str, Any] = {}
    carried: dict[str, str] = {}
    errors: list[str] = []
    for block in blocks(README.read_text()):
        if block.mode == "illustration":
            continue
        for exchange in block.exchanges:
            headers = {k: _substitute(v, names) for k, v in exchange.headers.items()}
            if "Authorization" in headers:
                carried["Authorization"] = headers["Authorization"]
            headers = {**carried, **headers}
            body = _substitute(exchange.body, names) if exchange.body is not None else None
            if body is not None and "Content-Type" not in headers:
                headers["Content-Type"] = "application/json"
            response = await demo_client.request(
                exchange.method, _substitute(exchange.path, names), headers=headers, content=body
            )
            where = f"README.md:{exchange.line} {exchange.method} {exchange.path}"
            if response.status_code != exchange.status:
                errors.append(
                    f"{where}: answered {response.status_code}, the README says {exchange.status}: "
                    f"{response.text[:300]}"
                )
                continue
            if exchange.answer is not None:
                compare(exchange.answer, response.json(), where, names, block.mode == "full", errors)
    assert not errors, "\n".join(errors)
