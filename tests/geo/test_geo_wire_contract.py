"""geo's verdict enums are the wire's: the backend passes them through to `mobile_contract` unchanged."""

from __future__ import annotations

from geo.crs import Crs
from geo.verdict import Reason, VerdictStatus
from mobile_contract.location import CrsName, VerdictReason
from mobile_contract.location import VerdictStatus as WireVerdictStatus


def test_reasons_match_the_wire() -> None:
    assert [reason.value for reason in Reason] == [reason.value for reason in VerdictReason]


def test_statuses_match_the_wire() -> None:
    assert [status.value for status in VerdictStatus] == [status.value for status in WireVerdictStatus]


def test_coordinate_systems_match_the_wire() -> None:
    assert [crs.value for crs in Crs] == [crs.value for crs in CrsName]
