"""The `groundwork` command line: serve the API, manage the database, load demo data, export the contract."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import click

from backend.settings import REPO_ROOT, get_settings


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
    _serve(settings.host, settings.port)


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


@main.command(help="Run background jobs (push delivery, ...) until Ctrl-C or SIGTERM. Run as many as you like.")
@click.option("--concurrency", default=8, show_default=True, help="How many jobs this worker runs at once.")
def worker(concurrency: int) -> None:
    from backend.db.admin import prepare_server
    from backend.queue.worker import serve

    settings = get_settings()
    prepare_server(settings)
    asyncio.run(serve(settings, concurrency=concurrency))


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

    results = asyncio.run(run_again(get_settings(), user_id=user_id, mutation_id=mutation_id, progress=progress))
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
