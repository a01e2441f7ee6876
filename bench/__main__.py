"""`./dev bench` (`python -m bench`): run the benchmarks, print a table, keep the result in bench/results/."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from backend.settings import get_settings
from bench import dispatch, intake, logins, nearby, photos, report
from bench import sync as sync_bench
from bench import tracking as tracking_bench
from bench.progress import BenchError, say

QUICK_DURATION_S = 5.0
QUICK_POIS = 100_000
FIRST_SYNC_RUNS = 3  # per page size; --quick: 1
QUICK_DISPATCH_REQUESTS = 50


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./dev bench",
        description="Measure hot endpoints against pgbench running the same SQL (see bench/README.md).",
    )
    parser.add_argument("--duration", type=float, help="seconds per measurement (default 20; --quick: 5)")
    parser.add_argument("--connections", type=int, default=4, help="concurrent connections, both sides (default 4)")
    parser.add_argument("--pois", type=int, help="POIs in the bench data (default 1,000,000; --quick: 100,000)")
    parser.add_argument("--only", choices=sorted(BENCHMARKS), help="run only this benchmark")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 5 s runs over 100k POIs")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds before each measurement")
    parser.add_argument("--port", type=int, default=8765, help="port of the app under test (default 8765)")
    parser.add_argument(
        "--codes",
        action="store_true",
        help="logins: also measure tenant B's nearby during 40 parallel code entries (POST /v1/jobs/{id}/code)",
    )
    parser.add_argument(
        "--no-login-throttle",
        action="store_true",
        help="logins: lift the login limits, so that every wrong login is a full argon2 verification",
    )
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = QUICK_DURATION_S if args.quick else 20.0
    if args.pois is None:
        args.pois = QUICK_POIS if args.quick else 1_000_000
    if args.duration < 1 or args.connections < 1 or args.pois < 1000:
        parser.error("--duration must be >= 1, --connections >= 1 and --pois >= 1000")
    return args


def run_nearby(args: argparse.Namespace) -> list[report.SummaryRow]:
    started = report.utc_now()
    config = nearby.NearbyConfig(
        duration=args.duration, connections=args.connections, pois=args.pois, port=args.port, warmup=args.warmup
    )
    result = nearby.run(get_settings(), config)
    measurements = [result.sql_side, result.http_side]
    p99 = result.http_side.latency_ms["p99"]
    ratio_ok = result.ratio >= nearby.RATIO_TARGET
    p99_ok = p99 < nearby.P99_TARGET_MS
    machine = report.machine()
    print()
    print(
        f"## nearby: {args.pois:,} POIs, {args.connections} connections, {args.duration:.0f} s each, "
        f"{machine['nproc']} cores ({machine['cpu_model']})"
    )
    print()
    print(report.table(measurements))
    print()
    print(
        f"ratio: endpoint/pgbench = {result.ratio:.1%} "
        f"(target >= {nearby.RATIO_TARGET:.0%}: {'met' if ratio_ok else 'MISSED'})"
    )
    print(f"endpoint p99: {p99:.2f} ms (target < {nearby.P99_TARGET_MS:.0f} ms: {'met' if p99_ok else 'MISSED'})")
    http_cpu = result.http_side.cpu
    if http_cpu is not None and http_cpu.cores["app"] < 0.5 and http_cpu.cores["postgres"] > 1.0:
        print(
            "note: the app was mostly idle and PostgreSQL busy on both sides: the SQL itself is the bottleneck, "
            "so the ratio says little until the query is faster (see the plan in the JSON result)."
        )
    print()
    print(report.cpu_table(measurements))
    print()
    _write("nearby", args, started, result.payload)
    return [
        report.SummaryRow(
            "nearby",
            f"GET /v1/pois/nearby, {args.pois:,} POIs, {args.connections} connections",
            f"{result.http_side.requests_per_s:,.0f} req/s, p99 {p99:.2f} ms",
            f"pgbench {result.sql_side.requests_per_s:,.0f} tps: {result.ratio:.1%}",
        )
    ]


def _write(name: str, args: argparse.Namespace, started: datetime, payload: dict[str, Any]) -> None:
    """bench/results/<name>-<UTC date>[-quick].json, with the machine and the versions (PostgreSQL's and PostGIS's
    are in the payload, under "server"). A later run the same day replaces it."""
    suffix = "-quick" if args.quick else ""
    document = {
        "started_at": started.isoformat(timespec="seconds"),
        **payload,
        "quick": args.quick,
        "machine": report.machine(),
        "versions": report.versions(),
    }
    path = report.write_json(f"{name}-{started.date().isoformat()}{suffix}", document)
    say(f"wrote {path}")


def run_sync(args: argparse.Namespace) -> list[report.SummaryRow]:
    started = report.utc_now()
    config = sync_bench.SyncConfig(
        duration=args.duration,
        connections=args.connections,
        port=args.port,
        warmup=args.warmup,
        repeats=1 if args.quick else FIRST_SYNC_RUNS,
    )
    result = sync_bench.run(get_settings(), config)
    rows = sync_bench.print_result(result, config, report.machine())
    _write("sync", args, started, result.payload)
    return rows


def run_dispatch(args: argparse.Namespace) -> list[report.SummaryRow]:
    started = report.utc_now()
    config = dispatch.DispatchConfig(
        duration=args.duration,
        warmup=args.warmup,
        port=args.port,
        requests=QUICK_DISPATCH_REQUESTS if args.quick else dispatch.REQUESTS,
    )
    result = dispatch.run(get_settings(), config)
    rows = dispatch.print_result(result, config, report.machine())
    _write("dispatch", args, started, result.payload)
    return rows


def run_photos(args: argparse.Namespace) -> list[report.SummaryRow]:
    """bench/photos.py (its own module docstring says what it measures); it prints its own section. It keeps its
    own number of upload connections (`PhotosConfig.connections`), not --connections."""
    started = report.utc_now()
    config = photos.PhotosConfig(port=args.port)
    if args.quick:  # as `python -m bench.photos --quick`
        config = photos.PhotosConfig(uploads=20, lookups=200, connections=config.connections, port=args.port)
    payload = asyncio.run(photos.run(get_settings(), config))
    _write("photos", args, started, payload)
    ingest, lookup = payload["ingest"], payload["lookup"]
    return [
        report.SummaryRow(
            "photos",
            f"ingest of ~3 MB JPEGs, {config.connections} connections",
            f"{ingest['photos_per_s']:.1f} photos/s, p99 {ingest['latency_ms']['p99']:.0f} ms",
        ),
        report.SummaryRow(
            "photos",
            f"reuse lookup against {config.stored:,} stored hashes",
            f"p50 {lookup['latency_ms']['p50']:.2f} ms, p99 {lookup['latency_ms']['p99']:.2f} ms",
        ),
    ]


def run_logins(args: argparse.Namespace) -> list[report.SummaryRow]:
    """bench/logins.py: tenant B's nearby p99, quiet and while tenant A is under a storm of wrong logins (and
    with --codes, of code entries)."""
    started = report.utc_now()
    config = logins.LoginsConfig(
        duration=args.duration,
        connections=args.connections,
        pois=args.pois,
        port=args.port,
        warmup=args.warmup,
        codes=args.codes,
        throttle=not args.no_login_throttle,
        rounds=2 if args.quick else 3,
    )
    payload = logins.run(get_settings(), config)
    _write("logins" if config.throttle else "logins-unthrottled", args, started, payload)
    phases = payload["phases"]
    quiet = payload["median_p99_ms"][logins.QUIET]
    print()
    print(
        f"## logins: tenant B's nearby ({args.pois:,} POIs, {args.connections} connections, {args.duration:.0f} s) "
        f"while tenant A is attacked (login throttle {'on' if config.throttle else 'lifted'})"
    )
    print()
    rows = []
    for phase in phases:
        latency = phase["nearby"]["latency_ms"]
        storm = phase["storm"] or {}
        answers = ", ".join(
            f"{key}: {storm[key]}" for key in ("2xx", "401", "423", "429", "503", "5xx") if storm.get(key)
        )
        rows.append(
            [
                phase["name"],
                f"{phase['nearby']['requests_per_s']:,.0f}",
                f"{latency['p50']:.2f}",
                f"{latency['p99']:.2f}",
                f"{phase['p99_ratio_to_median_quiet']:.2f}x",
                f"{phase['app_rss_before_mb']:.0f} / {phase['app_rss_peak_mb']:.0f}",
                f"{storm.get('requests_per_s', 0):,.1f}/s ({answers})" if storm else "",
            ]
        )
    print(
        report.markdown(
            [
                "tenant A",
                "B req/s",
                "B p50 ms",
                "B p99 ms",
                "p99 / median quiet",
                "app MB (before / peak)",
                "A's storm",
            ],
            rows,
        )
    )
    print()
    summary = []
    for kind, ratio in payload["median_p99_ratio"].items():
        if kind == logins.QUIET:
            continue
        met = "met" if ratio <= logins.TARGET_RATIO else "MISSED"
        median = payload["median_p99_ms"][kind]
        print(
            f"{kind}: tenant B's median p99 {median:.2f} ms = {ratio:.2f}x its quiet median {quiet:.2f} ms "
            f"(target <= {logins.TARGET_RATIO:.0f}x: {met})"
        )
        summary.append(
            report.SummaryRow(
                "logins",
                f"tenant B nearby p99 during {kind} on tenant A (median of {config.rounds})",
                f"{median:.2f} ms ({ratio:.2f}x)",
                f"quiet median p99 {quiet:.2f} ms; target <= {logins.TARGET_RATIO:.0f}x: {met}",
            )
        )
    return summary


def run_tracking(args: argparse.Namespace) -> list[report.SummaryRow]:
    """bench/tracking.py: position ingest in batches of 500 against pgbench running the same INSERT."""
    started = report.utc_now()
    config = tracking_bench.TrackingConfig(
        duration=args.duration, connections=args.connections, port=args.port, warmup=args.warmup
    )
    payload = tracking_bench.run(get_settings(), config)
    _write("tracking", args, started, payload)
    http, sql = payload["http"], payload["pgbench"]
    met = http["fixes_per_s"] >= tracking_bench.TARGET_FIXES_PER_S
    print()
    print(f"## tracking ingest: batches of {payload['batch']}, {args.connections} connections, {args.duration:.0f} s")
    print()
    print(f"pgbench (same INSERT): {sql['fixes_per_s']:,.0f} fixes/s ({sql['batches_per_s']:,.1f} batches/s)")
    print(
        f"HTTP: {http['fixes_per_s']:,.0f} fixes/s, batch p99 {http['batch_latency_ms']['p99']:.1f} ms; "
        f"ratio {payload['ratio']:.1%}; target >= {tracking_bench.TARGET_FIXES_PER_S:,}: {'met' if met else 'MISSED'}"
    )
    return [
        report.SummaryRow(
            "tracking",
            f"ingest, batches of {payload['batch']}",
            f"{http['fixes_per_s']:,.0f} fixes/s vs pgbench {sql['fixes_per_s']:,.0f} ({payload['ratio']:.0%})",
        )
    ]


def run_intake(args: argparse.Namespace) -> list[report.SummaryRow]:
    started = report.utc_now()
    payload = intake.run(get_settings(), intake.IntakeConfig(rows=10_000 if args.quick else intake.ROWS))
    _write("intake", args, started, payload)
    done, base = payload["import"], payload["baseline"]
    print()
    print(f"## intake: {payload['rows']:,} merchants from one CSV, chunks of {payload['chunk']:,}")
    print()
    print(
        f"import: {done['rows_per_s']:,.0f} rows/s ({done['seconds']:.1f} s): {done['imported']:,} imported, "
        f"{done['duplicates']:,} duplicates skipped, {done['likely_duplicates']:,} to review, "
        f"{done['refused']:,} refused"
    )
    print(f"baseline (same INSERT, nothing judged): {base['rows_per_s']:,.0f} rows/s; ratio {payload['ratio']:.1%}")
    return [
        report.SummaryRow(
            "intake",
            f"import of {payload['rows']:,} merchants (CSV)",
            f"{done['rows_per_s']:,.0f} rows/s ({done['seconds']:.0f} s)",
            f"insert alone {base['rows_per_s']:,.0f} rows/s: {payload['ratio']:.0%}",
        )
    ]


BENCHMARKS: dict[str, Callable[[argparse.Namespace], list[report.SummaryRow]]] = {
    "nearby": run_nearby,
    "sync": run_sync,
    "dispatch": run_dispatch,
    "photos": run_photos,
    "logins": run_logins,
    "tracking": run_tracking,
    "intake": run_intake,
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()
    rows: list[report.SummaryRow] = []
    try:
        for name, run in BENCHMARKS.items():
            if args.only in (None, name):
                rows += run(args)
        load_after = os.getloadavg()
        print()
        print(
            f"## summary (load average {' '.join(f'{value:.2f}' for value in load_before)} before, "
            f"{' '.join(f'{value:.2f}' for value in load_after)} after; figures per benchmark above)"
        )
        print()
        print(report.summary_table(rows))
    except BenchError as exc:
        say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
