"""One status per error code (mobile_contract.errors.STATUS): no raise site may type a status that disagrees."""

from __future__ import annotations

import ast
from pathlib import Path

from backend.errors import DomainError
from mobile_contract.errors import STATUS, ErrorCode

ROOT = Path(__file__).resolve().parents[2]


def _raise_sites() -> list[tuple[str, int, str, int | None]]:
    sites = []
    for path in sorted((ROOT / "backend").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "DomainError"):
                continue
            if not node.args or not isinstance(node.args[0], ast.Attribute):
                continue
            code = node.args[0].attr
            status = None
            if len(node.args) >= 3 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, int):
                status = node.args[1].value
            sites.append((str(path.relative_to(ROOT)), node.lineno, code, status))
    return sites


def test_every_code_has_a_status() -> None:
    assert set(STATUS) == set(ErrorCode)
    assert all(400 <= status <= 599 for status in STATUS.values())


def test_no_raise_site_disagrees_with_the_mapping() -> None:
    sites = _raise_sites()
    assert len(sites) > 40  # the scan finds the raise sites
    wrong = [
        f"{path}:{line} {code} typed {status}, the mapping says {STATUS[ErrorCode[code]]}"
        for path, line, code, status in sites
        if status is not None and status != STATUS[ErrorCode[code]]
    ]
    assert wrong == [], "\n".join(wrong)


def test_the_status_defaults_from_the_code() -> None:
    assert DomainError(ErrorCode.CODE_ATTEMPTS_EXCEEDED, "locked").status == 423
    assert DomainError(ErrorCode.VALIDATION_FAILED, "bad").status == 422
    legacy = DomainError(ErrorCode.NOT_FOUND, 404, "gone", what="job")
    assert (legacy.status, legacy.detail, legacy.extra) == (404, "gone", {"what": "job"})
