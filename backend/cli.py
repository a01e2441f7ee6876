"""The `groundwork` command line: serve the API, manage the database, load demo data, export the contract."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from backend.settings import REPO_ROOT, Settings, get_settings
from mobile_contract.auth import Role

if TYPE_CHECKING:
    from backend.db.engine import Database

T = TypeVar("T")


@click.group(help="Groundwork: the backend for mobile field teams. Start with `groundwork demo`.")
def main() -> None:
    pass


@main.command(help="Everything for a first look: database, migrations, demo data, then serve on :8000.")
@click.option("--pois", default=100_000, show_default=True, help="How many demo merchants to seed.")
def demo(pois: int) -> None:
    from backend.db.admin import ensure_database
    from backend.db.migrate import upgrade
    from backend.demo.seed import seed_demo

    settings = get_settings()
    ensure_database(settings)
    upgrade(settings.database_url)
    asyncio.run(seed_demo(settings.database_url, poi_count=pois))
    # The demo runs a worker beside the server, so pushes, customer codes and the periodic work happen as they
    # would in production; its SMS gateway writes the texts (codes included) to an outbox file to read.
    outbox = os.environ.setdefault("GROUNDWORK_SMS_OUTBOX", str(settings.data_dir / "sms-outbox.txt"))
    click.echo(f"Customer codes sent by SMS are written to {outbox} (demo only).", err=True)
    worker = subprocess.Popen([sys.executable, "-m", "backend.cli", "worker"], env=os.environ.copy())
    try:
        _serve(settings.host, settings.port)
    finally:
        worker.terminate()
        worker.wait(timeout=30)


@main.command(help="Play a BD's and a technician's day against the demo data, printing every request and answer.")
@click.option("--pois", default=2_000, show_default=True, help="Merchants to seed when the demo is not there yet.")
def walkthrough(pois: int) -> None:
    from backend.db.admin import ensure_database
    from backend.db.migrate import upgrade
    from backend.demo.seed import seed_demo
    from backend.demo.walkthrough import play

    settings = get_settings()
    ensure_database(settings)
    upgrade(settings.database_url)
    asyncio.run(seed_demo(settings.database_url, poi_count=pois))  # a no-op when `./dev demo` seeded already
    outbox = settings.sms_outbox or settings.data_dir / "sms-outbox.txt"
    exchanges = asyncio.run(play(settings, outbox=outbox))
    refused = [e for e in exchanges if e.status >= 300]
    click.echo(f"\n{len(exchanges)} requests, {len(refused)} not 2xx.", err=True)
    if refused:
        raise SystemExit(1)


@main.command(
    help="Live movement of the demo's BDs and technicians, sent to a running server (`groundwork demo`) as Traccar "
    "Client 10 sends it: a tracking key each (POST /v1/tracking/keys), then form posts to /v1/tracking/osmand."
)
@click.option("--url", default=None, help="The server (default http://GROUNDWORK_HOST:GROUNDWORK_PORT).")
@click.option("--every", "every_s", default=10.0, show_default=True, help="Seconds of simulated time per fix.")
@click.option("--speedup", default=10.0, show_default=True, help="Simulated seconds per second of the clock.")
@click.option("--minutes", default=240.0, show_default=True, help="Minutes of simulated time to play.")
@click.option("--people", default=None, type=int, help="Only the first N of the demo's BDs and technicians.")
@click.option("--username", default="admin@demo", show_default=True, help="Who issues the tracking keys.")
@click.option("--password", default=None, help="Their password (default: the demo's).")
@click.option("--seed", default=1, show_default=True, help="Random seed of the paths.")
def simulate(
    url: str | None,
    every_s: float,
    speedup: float,
    minutes: float,
    people: int | None,
    username: str,
    password: str | None,
    seed: int,
) -> None:
    from datetime import UTC, datetime

    from backend.demo import simulate as sim
    from backend.demo.seed import DEMO_PASSWORD, DEMO_SLUG

    if every_s <= 0 or speedup <= 0 or minutes < 0:
        raise click.BadParameter("--every and --speedup must be > 0, --minutes >= 0")
    settings = get_settings()
    base_url = url or f"http://{settings.host}:{settings.port}"
    walkers = asyncio.run(sim.demo_walkers(settings.database_url, DEMO_SLUG))[:people]
    client = sim.Client(base_url)
    token = sim.log_in(client, username, password or DEMO_PASSWORD)
    start = datetime.now(UTC)
    trackers = sim.issue_trackers(client, token, walkers, start=start, hours=minutes / 60.0 + 1.0, seed=seed)
    click.echo(
        f"simulating {len(trackers)} people against {base_url}: a fix each per {every_s:g} s of simulated time, "
        f"x{speedup:g} ({minutes:g} simulated minutes, {minutes * 60 / speedup:.0f} s); Ctrl-C stops",
        err=True,
    )

    def report(progress: sim.Progress) -> None:
        line = (
            f"  simulated {progress.simulated_s / 60:6.1f} / {minutes:g} min: {progress.sent:,} fixes sent, "
            f"{progress.failed:,} failed"
        )
        click.echo(line + (f" (last: {progress.last_error})" if progress.failed else ""), err=True)

    try:
        sim.play(client, trackers, every_s=every_s, speedup=speedup, simulated_s=minutes * 60.0, report=report)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        sim.revoke_trackers(client, sim.log_in(client, username, password or DEMO_PASSWORD), trackers)
        client.close()
        click.echo(f"revoked the {len(trackers)} tracking keys of this run", err=True)


@main.command(help="Serve the API (the database must be migrated: `groundwork db migrate`).")
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1 or GROUNDWORK_HOST).")
@click.option("--port", default=None, type=int, help="Port (default 8000 or GROUNDWORK_PORT).")
def serve(host: str | None, port: int | None) -> None:
    from backend.db.admin import prepare_server

    settings = get_settings()
    prepare_server(settings)
    _serve(host or settings.host, port or settings.port)


def _serve(host: str, port: int) -> None:
    import uvicorn

    click.echo(f"Serving Groundwork on http://{host}:{port} (OpenAPI docs at /schema/swagger)", err=True)
    uvicorn.run(
        "backend.app:create_app",
        factory=True,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="info",
    )


@main.command(
    help="Run background jobs (push delivery, ...) and the periodic work (`groundwork schedule status`) until Ctrl-C "
    "or SIGTERM. Run as many as you like: each periodic task still runs once per period."
)
@click.option("--concurrency", default=8, show_default=True, help="How many jobs this worker runs at once.")
def worker(concurrency: int) -> None:
    from backend.app import PERIODIC, QUEUE_HANDLERS
    from backend.db.admin import prepare_server
    from backend.observability import configure_logging
    from backend.queue.worker import serve

    settings = get_settings()
    configure_logging(settings)  # the API's log format (GROUNDWORK_LOG_FORMAT), request id "-"
    prepare_server(settings)
    asyncio.run(serve(settings, handlers=QUEUE_HANDLERS, periodic=PERIODIC, concurrency=concurrency))


@main.group(help="The database: start the embedded server, migrate, reset.")
def db() -> None:
    pass


@db.command(help="Create the database if missing and apply every migration.")
def migrate() -> None:
    from backend.db.admin import ensure_database
    from backend.db.migrate import upgrade

    settings = get_settings()
    ensure_database(settings)
    upgrade(settings.database_url)
    click.echo("database is at the newest migration", err=True)


@db.command(help="Drop the database, recreate it and migrate it (all data is lost).")
@click.confirmation_option(prompt="This deletes every record in the database. Continue?")
def reset() -> None:
    from backend.db.admin import ensure_database
    from backend.db.migrate import upgrade

    settings = get_settings()
    ensure_database(settings, reset=True)
    upgrade(settings.database_url)
    click.echo("database recreated and migrated", err=True)


@db.command(help="Fail when the models and the migrations disagree.")
def check() -> None:
    from backend.db.admin import ensure_database
    from backend.db.migrate import check as alembic_check

    settings = get_settings()
    ensure_database(settings)
    alembic_check(settings.database_url)
    click.echo("models and migrations agree", err=True)


@db.command(help="Start the embedded PostgreSQL under .data/ (installs it first if needed).")
def start() -> None:
    from backend.db.admin import prepare_server

    prepare_server(get_settings())


@db.command(help="Stop the embedded PostgreSQL.")
def stop() -> None:
    from backend.db.embedded import EmbeddedCluster

    settings = get_settings()
    EmbeddedCluster(settings.data_dir, settings.embedded_pg_port).stop()


@main.command(help="Load the demo tenant (teams, users, merchants around Shanghai); skipped if present.")
@click.option("--pois", default=100_000, show_default=True, help="How many demo merchants to seed.")
def seed(pois: int) -> None:
    from backend.db.admin import ensure_database
    from backend.db.migrate import upgrade
    from backend.demo.seed import seed_demo

    settings = get_settings()
    ensure_database(settings)
    upgrade(settings.database_url)
    asyncio.run(seed_demo(settings.database_url, poi_count=pois))


@main.group(help="Offline sync: operator tools.")
def sync() -> None:
    pass


@sync.command(
    help="Run the pushed mutations stored as `failed` (a bug of ours) again, once the bug is fixed. Each one's "
    "stored status and result become the re-run's and its records are bumped, so the phone's next pull shows it."
)
@click.option("--user", "user_id", type=click.UUID, default=None, help="Only this user's failed mutations.")
@click.option("--mutation-id", type=int, default=None, help="Only failed mutations with this id (per client).")
@click.option("--all-failed", is_flag=True, help="Every failed mutation (needed when no other filter is given).")
def rerun(user_id: uuid.UUID | None, mutation_id: int | None, all_failed: bool) -> None:
    from backend.app import SYNC_REGISTRY
    from backend.offline.rerun import rerun as run_again
    from sync.engine import Rerun

    if user_id is None and mutation_id is None and not all_failed:
        raise click.UsageError("say which: --user, --mutation-id, or --all-failed")

    def progress(done: Rerun, number: int, total: int) -> None:
        code = f" ({done.code})" if done.code else ""
        click.echo(
            f"[{number}/{total}] {done.name} #{done.mutation_id} of {done.client_id} (user {done.user_id}): "
            f"{done.status.value}{code}",
            err=True,
        )

    results = asyncio.run(
        run_again(get_settings(), SYNC_REGISTRY, user_id=user_id, mutation_id=mutation_id, progress=progress)
    )
    counts = {
        status: sum(1 for r in results if r.status.value == status) for status in ("applied", "rejected", "failed")
    }
    click.echo(
        f"re-ran {len(results)}: {counts['applied']} applied, {counts['rejected']} rejected, "
        f"{counts['failed']} failed again",
        err=True,
    )
    if counts["failed"]:
        raise SystemExit(1)


@main.group("import", help="Bulk intake: merchants from a CSV or JSON file.")
def import_() -> None:
    pass


@import_.command(
    "merchants",
    help="Import merchants into a tenant from FILE (CSV with a header line, or JSON): each row validated, judged "
    "against stored merchants (sure duplicates skipped, likely ones queued for review) and reported.",
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tenant", "tenant_slug", required=True, help="The tenant's slug (the demo's is `demo`).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default=None, help="Default: by the suffix.")
@click.pass_context
def import_merchants(ctx: click.Context, file: Path, tenant_slug: str, fmt: str | None) -> None:
    import time

    from backend.intake.cli import import_file

    started = time.perf_counter()

    def shown(progress: Any) -> None:
        rate = progress.rows / max(time.perf_counter() - started, 1e-9)
        click.echo(
            f"[import] {progress.rows:,} rows: {progress.imported:,} imported, {progress.duplicates:,} duplicates"
            f" skipped, {progress.likely_duplicates:,} to review, {progress.refused:,} refused ({rate:,.0f} rows/s)",
            err=True,
        )

    chosen = fmt or ("json" if file.suffix.lower() in (".json", ".ndjson", ".jsonl") else "csv")
    outcome = _with_database(
        _context_settings(ctx), lambda database: import_file(database, tenant_slug, file.read_bytes(), chosen, shown)
    )
    click.echo(outcome)


@main.group(help="Tenants (platform admins): make one with its first admin.")
def tenants() -> None:
    pass


@tenants.command("create", help="Create tenant SLUG named NAME with an admin; prints the admin's set-password token.")
@click.argument("slug")
@click.argument("name")
@click.option("--admin", "admin", required=True, help="The first admin's username (their login).")
@click.pass_context
def tenants_create(ctx: click.Context, slug: str, name: str, admin: str) -> None:
    from backend.admin.cli import create_tenant

    click.echo(_with_database(_context_settings(ctx), lambda database: create_tenant(database, slug, name, admin)))


@main.group(help="Users of a tenant (platform admins): create, disable, enable, reset a password.")
def users() -> None:
    pass


@users.command("create", help="Add USERNAME to a tenant; prints their one-time set-password token.")
@click.argument("username")
@click.option("--tenant", "tenant_slug", required=True, help="The tenant's slug.")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--name", "display_name", default=None, help="Display name (default: the username).")
@click.pass_context
def users_create(ctx: click.Context, username: str, tenant_slug: str, role: str, display_name: str | None) -> None:
    from backend.admin.cli import create_user

    click.echo(
        _with_database(
            _context_settings(ctx),
            lambda database: create_user(database, tenant_slug, username, Role(role), display_name),
        )
    )


@users.command("set", help="ACTION (disable, enable, reset-password) the user USERNAME of a tenant.")
@click.argument("action", type=click.Choice(["disable", "enable", "reset-password"]))
@click.argument("username")
@click.option("--tenant", "tenant_slug", required=True, help="The tenant's slug.")
@click.pass_context
def users_set(ctx: click.Context, action: str, username: str, tenant_slug: str) -> None:
    from backend.admin.cli import user_action

    click.echo(
        _with_database(_context_settings(ctx), lambda database: user_action(database, tenant_slug, username, action))
    )


@main.group(help="The mobile contract's OpenAPI document.")
def openapi() -> None:
    pass


OPENAPI_PATH = REPO_ROOT / "mobile_contract" / "openapi.json"


@openapi.command(help="Write the OpenAPI document of the code to mobile_contract/openapi.json.")
@click.option("--output", type=click.Path(path_type=Path), default=OPENAPI_PATH, show_default=True)
def export(output: Path) -> None:
    from backend.app import openapi_document

    output.write_text(json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    click.echo(f"wrote {output}", err=True)


@main.group(help="Periodic work the worker runs (tombstone collection, expiry, ...): see it, or run a task now.")
def schedule() -> None:
    pass


@schedule.command("status", help="Every periodic task: its last start, finish, status and result, and when it is due.")
@click.pass_context
def schedule_status(ctx: click.Context) -> None:
    from backend.app import PERIODIC
    from backend.queue.scheduler import render_status, status

    settings = _context_settings(ctx)
    now, tasks = _with_database(settings, lambda database: status(database, PERIODIC))
    for line in render_status(now, tasks, settings.scheduler_poll_s):
        click.echo(line)


@schedule.command("run", help="Run one periodic task now, whatever its period; the run is recorded like any other.")
@click.argument("name")
@click.pass_context
def schedule_run(ctx: click.Context, name: str) -> None:
    import logging
    import os
    import socket
    import time

    from backend.app import PERIODIC
    from backend.queue.scheduler import AlreadyRunning, Scheduler

    known = sorted(p.name for p in PERIODIC)
    if name not in known:
        raise click.BadParameter(f"no periodic task {name!r}; the tasks are: {', '.join(known)}", param_hint="NAME")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _context_settings(ctx)
    by_hand = f"schedule-run:{socket.gethostname()}:{os.getpid()}"  # shown in `schedule status` as who ran it
    click.echo(f"running {name} now (its period is ignored) ...", err=True)
    started = time.monotonic()
    try:
        outcome = _with_database(settings, lambda database: Scheduler(database, PERIODIC, name=by_hand).run_now(name))
    except AlreadyRunning as exc:
        raise click.ClickException(
            f"{exc}. Wait for that run to finish (`groundwork schedule status`), then try again."
        ) from exc
    took = time.monotonic() - started
    if outcome.status != "ok":
        raise click.ClickException(
            f"{name} failed after {took:.1f} s: {outcome.error}\nRecorded as failed (traceback above). "
            f"Fix the cause, then run `groundwork schedule run {name}` again."
        )
    click.echo(f"{name}: ok in {took:.1f} s: {json.dumps(outcome.result, sort_keys=True)}")


def _context_settings(ctx: click.Context) -> Settings:
    """The settings a caller handed in (tests: `CliRunner.invoke(main, ..., obj=settings)`), else the environment's."""
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, Settings) else get_settings()


def _with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Connect, do `work`, close; database trouble becomes a message saying what to do next."""
    from sqlalchemy.exc import DBAPIError

    from backend.db.admin import prepare_server
    from backend.db.engine import Database

    async def run() -> T:
        database = await Database.connect(settings)
        try:
            return await work(database)
        finally:
            await database.close()

    prepare_server(settings)
    try:
        return asyncio.run(run())
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "42P01":  # undefined table
            raise click.ClickException("the database is not migrated yet: run `groundwork db migrate`") from exc
        raise click.ClickException(f"the database refused: {exc.orig}") from exc
    except OSError as exc:
        raise click.ClickException(
            f"cannot reach the database ({exc}): check DATABASE_URL, or `groundwork db start` for the embedded one"
        ) from exc


if __name__ == "__main__":
    main()
