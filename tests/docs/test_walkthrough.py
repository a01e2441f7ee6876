"""`groundwork walkthrough` plays both days against the demo data with only 2xx answers, codes included."""

from __future__ import annotations

from pathlib import Path

from backend.demo.walkthrough import play
from backend.settings import Settings


async def test_the_walkthrough_plays_both_days_with_2xx_answers(demo_settings: Settings, tmp_path: Path) -> None:
    printed: list[str] = []
    exchanges = await play(demo_settings, outbox=tmp_path / "sms-outbox.txt", say=printed.append)
    refused = [(e.method, e.path, e.status, e.answer) for e in exchanges if not 200 <= e.status < 300]
    assert not refused
    paths = [(e.method, e.path.split("/")[-1]) for e in exchanges]
    for expected in [("POST", "token"), ("GET", "nearby"), ("POST", "visits"), ("POST", "push"), ("POST", "code")]:
        assert expected in paths
    assert ("POST", "complete") in paths
    assert exchanges[-1].answer["status"] == "completed"
    assert any("code for today's visit is" in line for line in printed)  # the code, shown as the SMS said it
