"""`./dev bench` (`python -m bench`): run the benchmarks, print a table, keep the result in bench/results/."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from backend.settings import get_settings
from bench import nearby, report
from bench.progress import BenchError, say

QUICK_DURATION_S = 5.0
QUICK_POIS = 100_000


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
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = QUICK_DURATION_S if args.quick else 20.0
    if args.pois is None:
        args.pois = QUICK_POIS if args.quick else 1_000_000
    if args.duration < 1 or args.connections < 1 or args.pois < 1000:
        parser.error("--duration must be >= 1, --connections >= 1 and --pois >= 1000")
    return args


def run_nearby(args: argparse.Namespace) -> None:
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
    suffix = "-quick" if args.quick else ""
    payload = {
        "started_at": started.isoformat(timespec="seconds"),
        **result.payload,
        "quick": args.quick,
        "machine": machine,
        "versions": report.versions(),  # PostgreSQL's and PostGIS's are under "server"
    }
    path = report.write_json(f"nearby-{started.date().isoformat()}{suffix}", payload)
    say(f"wrote {path}")


BENCHMARKS: dict[str, Callable[[argparse.Namespace], None]] = {"nearby": run_nearby}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        for name, run in BENCHMARKS.items():
            if args.only in (None, name):
                run(args)
    except BenchError as exc:
        say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
