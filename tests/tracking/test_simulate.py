"""`groundwork simulate` against a real server process: keys issued over HTTP, Traccar Client 10 form posts to
/v1/tracking/osmand, the positions land on the trail and move the live position; the keys are revoked after."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from backend.demo import simulate as sim
from backend.demo.movement import Walker
from backend.settings import Settings
from backend.tracking import queries
from mobile_contract.auth import Role
from tests.factories import PASSWORD, Factory
from tests.live_server import LiveServer


@pytest.fixture(scope="module")
def live(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(settings, log=tmp_path_factory.mktemp("simulate") / "server.log").start()
    try:
        yield server
    finally:
        server.stop()


def test_the_form_body_is_traccar_client_10s() -> None:
    from urllib.parse import parse_qs

    fix = sim.IncomingFix(
        id=uuid.uuid4(),
        lat=31.2,
        lon=121.4,
        accuracy_m=8.0,
        captured_at=datetime.now(UTC),
        speed_mps=1.852 / 3.6,
        bearing_deg=90.0,
        battery=71.0,
        charging=False,
    )
    sent = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
    form = parse_qs(sim.form_body("gwt_key", fix, sent).decode())
    assert form["id"] == ["gwt_key"]
    assert form["timestamp"] == [str(int(sent.timestamp() * 1000))]
    assert form["speed"] == ["1.00"]  # knots
    assert form["batt"] == ["71"]
    assert form["lat"] == ["31.2000000"]


async def test_simulated_people_land_on_the_trail(live: LiveServer, factory: Factory) -> None:
    tenant = await factory.tenant()
    admin = await factory.user(tenant, Role.ADMIN, login=False)
    bds = [await factory.user(tenant, Role.BD, login=False) for _ in range(2)]
    shop = (uuid.uuid4(), 31.2312, 121.4850)
    walkers = [Walker(bd.id, None, "bd", (31.2304, 121.4737), [shop]) for bd in bds]
    client = sim.Client(live.url)
    reports: list[sim.Progress] = []

    def run() -> sim.Progress:
        token = sim.log_in(client, admin.username, PASSWORD)
        trackers = sim.issue_trackers(client, token, walkers, start=datetime.now(UTC), hours=1.0, seed=5)
        try:
            # 60 simulated seconds at x60, a fix per 10 s: 7 reports each.
            return sim.play(client, trackers, every_s=10.0, speedup=60.0, simulated_s=60.0, report=reports.append)
        finally:
            sim.revoke_trackers(client, token, trackers)
            client.close()

    progress = await asyncio.to_thread(run)
    assert progress.failed == 0, progress.last_error
    assert progress.sent == 14
    assert reports[-1].sent == 14
    now = datetime.now(UTC)
    for bd in bds:
        trail = await queries.fixes_between(factory.database.hot, tenant, bd.id, now - timedelta(hours=1), now)
        assert len(trail) == 7
        assert {fix.source for fix in trail} == {"osmand"}
    latest = await queries.latest_positions(factory.database.hot, tenant, [bd.id for bd in bds])
    assert set(latest) == {bd.id for bd in bds}
    revoked = await factory.count(
        "SELECT count(*) FROM tracking_keys WHERE tenant_id = :t AND revoked_at IS NOT NULL", t=tenant
    )
    assert revoked == 2


@pytest.mark.parametrize("args", [["--every", "0"], ["--speedup", "-1"], ["--minutes", "-5"]])
def test_bad_options_are_refused_before_anything_is_sent(args: list[str]) -> None:
    from click.testing import CliRunner

    from backend.cli import main

    result = CliRunner().invoke(main, ["simulate", "--url", "http://127.0.0.1:9", *args])
    assert result.exit_code == 2, result.output
    assert "--every and --speedup must be > 0" in result.output


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="not an http"):
        sim.Client("ftp://example.org")
