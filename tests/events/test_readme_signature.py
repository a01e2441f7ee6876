"""The README's signed request is right byte for byte: its signature is the HMAC of its timestamp and body under
the secret the README gives, by the server's `sign` and by the README's own Python snippet."""

from __future__ import annotations

import re
from pathlib import Path

from backend.events.keys import sign

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _example() -> tuple[str, int, bytes, str]:
    section = README[README.index("## Business events") :]
    block = re.search(r"```http illustration\n(.*?)```", section, re.S)
    assert block is not None
    lines = block.group(1).split("\n")
    headers = dict(line.split(": ", 1) for line in lines[1:5])
    body = lines[6].encode()
    secret = re.search(r"secret `(gwk_[A-Za-z0-9_-]+)`", section)
    assert secret is not None
    return secret.group(1), int(headers["X-Groundwork-Timestamp"]), body, headers["X-Groundwork-Signature"]


def test_the_readme_signature_is_right() -> None:
    secret, timestamp, body, signature = _example()
    assert sign(secret, timestamp, body) == signature


def test_the_readme_python_snippet_signs_the_same() -> None:
    secret, timestamp, body, signature = _example()
    snippet = README[README.index("## Business events") :]
    code = snippet[snippet.index("```python\n") + len("```python\n") :]
    code = code[: code.index("```")]
    assert 'hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()' in code
    import hashlib
    import hmac

    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    assert f"v1={digest}" == signature
