"""The demo's SMS gateway: `groundwork demo` points GROUNDWORK_SMS_OUTBOX at a file, so whoever tries the demo can
read the customer code a job sent; without the setting the worker's gateway logs no code."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from backend.jobs.tasks import SMS_SEND, LogSms, OutboxSms, SendSms, handlers
from backend.settings import Settings


async def test_the_outbox_keeps_the_whole_text_when_configured(settings: Settings, tmp_path: Path) -> None:
    outbox = tmp_path / "sms-outbox.txt"
    async with handlers(dataclasses.replace(settings, sms_outbox=outbox)) as provided:
        sender = provided[SMS_SEND]
        assert isinstance(sender, SendSms)
        assert isinstance(sender.sender, OutboxSms)
        await sender.sender.send("+86 138 0000 1234", "Your Groundwork code is 123456.")
    assert "+86 138 0000 1234: Your Groundwork code is 123456." in outbox.read_text()


async def test_without_an_outbox_no_code_reaches_the_log(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="groundwork.jobs")
    async with handlers(dataclasses.replace(settings, sms_outbox=None)) as provided:
        sender = provided[SMS_SEND]
        assert isinstance(sender, SendSms)
        assert isinstance(sender.sender, LogSms)
        await sender.sender.send("+8613800001234", "Your Groundwork code is 654321.")
    assert "654321" not in caplog.text
    assert "13800001234" not in caplog.text
