"""The two load generators: wrk against the HTTP endpoint, pgbench against PostgreSQL with the endpoint's SQL.

Both are closed loops (each connection sends its next request when the previous answer is in), so at the same
number of connections their throughputs compare directly. Latency percentiles come from wrk's histogram
(printed by nearby.lua's `done()`) and from pgbench's per-transaction log (`-l`): both are per request, measured
by the client.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.db.embedded import PG_BIN
from bench import cpu, database
from bench.progress import BenchError, say

PidFinder = Callable[[int], dict[str, list[int]]]  # load generator pid -> groups of pids to meter


@dataclass(frozen=True, slots=True)
class Measurement:
    workload: str
    requests: int
    seconds: float
    requests_per_s: float
    latency_ms: dict[str, float]  # mean, p50, p90, p99, max
    cpu: cpu.CpuWindow | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.requests_per_s, 1),
            "latency_ms": {key: round(value, 3) for key, value in self.latency_ms.items()},
            "cpu": self.cpu.to_json() if self.cpu else None,
            **self.details,
        }


@dataclass(frozen=True, slots=True)
class _Run:
    returncode: int
    stdout: str
    stderr: str
    snapshots: tuple[cpu.Snapshot, cpu.Snapshot] | None
    pids: dict[str, list[int]]


def _run_metered(argv: list[str], *, env: dict[str, str], duration: float, find_pids: PidFinder | None) -> _Run:
    """Run a load generator for `duration` seconds; snapshot CPU use inside the steady part of the run."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err, text=True, env=env)
        snapshots: tuple[cpu.Snapshot, cpu.Snapshot] | None = None
        pids: dict[str, list[int]] = {}
        try:
            settle = min(1.0, duration / 5)
            if find_pids is not None and duration >= 2:
                time.sleep(settle)
                if process.poll() is None:
                    pids = find_pids(process.pid)
                    first = cpu.snapshot(pids)
                    time.sleep(max(0.0, duration - 2 * settle - (time.monotonic() - first.at)))
                    if process.poll() is None:
                        snapshots = (first, cpu.snapshot(pids))
            returncode = process.wait(timeout=duration + 120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        out.seek(0)
        err.seek(0)
        return _Run(returncode, out.read(), err.read(), snapshots, pids)


def _percentile(sorted_values: list[float], percent: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * percent // 100))
    return sorted_values[int(rank) - 1]


def latency_summary_ms(seconds: list[float]) -> dict[str, float]:
    """mean, p50, p90, p99 and max, in milliseconds, of per-request times in seconds (as wrk and pgbench give)."""
    values = sorted(value * 1000 for value in seconds)
    if not values:
        return {key: float("nan") for key in ("mean", "p50", "p90", "p99", "max")}
    return {
        "mean": sum(values) / len(values),
        "p50": _percentile(values, 50),
        "p90": _percentile(values, 90),
        "p99": _percentile(values, 99),
        "max": values[-1],
    }


# -- wrk ----------------------------------------------------------------------------------------------------


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("wrk is missing: apt-get install -y wrk")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        result = subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, env=env)
        if result.returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], check=False, env=env)
            result = subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, env=env)
        found = shutil.which("wrk")
        if result.returncode == 0 and found:
            return found
    raise BenchError("wrk (the HTTP load generator) is not installed. On Debian: apt-get install wrk")


_WRK_MARKER = "BENCH_RESULT "


def run_wrk(
    *,
    url: str,
    script: Path,
    connections: int,
    duration: float,
    env: dict[str, str],
    find_pids: PidFinder | None = None,
    workload: str = "http",
) -> Measurement:
    threads = min(2, connections)
    seconds = max(1, round(duration))
    argv = [wrk_path(), f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    run = _run_metered(argv, env={**os.environ, **env}, duration=seconds, find_pids=find_pids)
    lines = [line for line in run.stdout.splitlines() if line.startswith(_WRK_MARKER)]
    if run.returncode != 0 or not lines:
        raise BenchError(f"wrk failed (exit {run.returncode}):\n{run.stdout}{run.stderr}")
    result = json.loads(lines[-1][len(_WRK_MARKER) :])
    errors = {key: int(result[key]) for key in ("status_errors", "connect", "read", "write", "timeout")}
    if any(errors.values()):
        raise BenchError(
            f"wrk saw failed requests {errors} (status_errors: answers with status >= 400). "
            f"The numbers are not valid. wrk said:\n{run.stdout}"
        )
    wall = result["duration_us"] / 1e6
    rps = result["requests"] / wall
    return Measurement(
        workload=workload,
        requests=int(result["requests"]),
        seconds=wall,
        requests_per_s=rps,
        latency_ms={key: result[f"{key}_us"] / 1000 for key in ("mean", "p50", "p90", "p99", "max")},
        cpu=cpu.window(*run.snapshots, rps, run.pids) if run.snapshots else None,
        details={"tool": "wrk", "argv": argv[1:], "errors": errors},
    )


# -- pgbench ------------------------------------------------------------------------------------------------


def pgbench_path() -> str:
    candidate = PG_BIN / "pgbench"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("pgbench")
    if found:
        return found
    raise BenchError("pgbench is not installed. On Debian: apt-get install postgresql-client-15")


def _pgbench_latencies_us(log_dir: Path) -> list[float]:
    """Per-transaction latencies from pgbench's logs: `client_id transaction_no time_us script_no epoch us`."""
    values: list[float] = []
    for path in log_dir.iterdir():
        with path.open() as log:
            for line in log:
                fields = line.split()
                if len(fields) >= 3 and fields[2].isdigit():  # a failed transaction logs a word here instead
                    values.append(float(fields[2]))
    values.sort()
    return values


def _pgbench_number(stdout: str, prefix: str) -> float:
    for line in stdout.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :].split()[0])
    raise BenchError(f"pgbench printed no `{prefix}` line:\n{stdout}")


def run_pgbench(
    *,
    conninfo: str,
    script: Path,
    variables: dict[str, str],
    connections: int,
    duration: float,
    find_pids: PidFinder | None = None,
    workload: str = "pgbench",
    log: bool = True,
) -> Measurement:
    threads = min(2, connections)
    seconds = max(1, round(duration))
    with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as tmp:
        log_dir = Path(tmp)
        argv = [pgbench_path(), "-n", "-M", "prepared", "-c", str(connections), "-j", str(threads), "-T", str(seconds)]
        argv += [arg for name, value in variables.items() for arg in ("-D", f"{name}={value}")]
        if log:
            argv += ["-l", f"--log-prefix={log_dir / 'tx'}"]
        argv += ["-f", str(script), conninfo]
        run = _run_metered(argv, env=dict(os.environ), duration=seconds, find_pids=find_pids)
        if run.returncode != 0:
            raise BenchError(f"pgbench failed (exit {run.returncode}):\n{run.stdout}{run.stderr}")
        failed = _pgbench_number(run.stdout, "number of failed transactions:")
        if failed:
            raise BenchError(f"pgbench had {failed:.0f} failed transactions; the numbers are not valid:\n{run.stdout}")
        requests = int(_pgbench_number(run.stdout, "number of transactions actually processed:"))
        tps = _pgbench_number(run.stdout, "tps =")
        latency_ms = {"mean": _pgbench_number(run.stdout, "latency average =")}
        if log:
            latencies = _pgbench_latencies_us(log_dir)
            latency_ms |= {
                "p50": _percentile(latencies, 50) / 1000,
                "p90": _percentile(latencies, 90) / 1000,
                "p99": _percentile(latencies, 99) / 1000,
                "max": latencies[-1] / 1000 if latencies else float("nan"),
            }
    return Measurement(
        workload=workload,
        requests=requests,
        seconds=requests / tps if tps else float(seconds),
        requests_per_s=tps,
        latency_ms=latency_ms,
        cpu=cpu.window(*run.snapshots, tps, run.pids) if run.snapshots else None,
        details={"tool": "pgbench", "argv": argv[1:], "summary": run.stdout.strip().splitlines()},
    )


def pid_finders(server_pid: int, database_url: str) -> tuple[PidFinder, PidFinder]:
    """Who is who in the CPU accounting: for the pgbench side and for the HTTP side of a measurement."""

    def pgbench_pids(pid: int) -> dict[str, list[int]]:
        return {
            "app": [server_pid],
            "postgres": database.backend_pids(database_url, "pgbench"),
            "load generator": [pid],
        }

    def wrk_pids(pid: int) -> dict[str, list[int]]:
        return {
            "app": [server_pid],
            "postgres": database.backend_pids(database_url, "groundwork-hot"),
            "load generator": [pid],
        }

    return pgbench_pids, wrk_pids


def warm_then_run_pgbench(
    *,
    conninfo: str,
    script: Path,
    variables: dict[str, str],
    connections: int,
    warmup: float,
    duration: float,
    find_pids: PidFinder,
    workload: str,
) -> Measurement:
    """A warm-up (plans prepared, caches hot), then the measured pgbench run of an endpoint's SQL."""
    say(f"pgbench warm-up, {warmup:.0f} s")
    run_pgbench(
        conninfo=conninfo, script=script, variables=variables, duration=warmup, log=False, connections=connections
    )
    say(f"{workload}, {connections} connections, {duration:.0f} s")
    measured = run_pgbench(
        conninfo=conninfo,
        script=script,
        variables=variables,
        duration=duration,
        find_pids=find_pids,
        workload=workload,
        connections=connections,
    )
    say(f"  {measured.requests_per_s:,.0f} transactions/s")
    return measured


def warm_then_run_wrk(
    *,
    url: str,
    script: Path,
    env: dict[str, str],
    connections: int,
    warmup: float,
    duration: float,
    find_pids: PidFinder,
    workload: str,
) -> Measurement:
    """A warm-up (connections opened, statements prepared), then the measured wrk run of an endpoint."""
    say(f"wrk warm-up, {warmup:.0f} s")
    run_wrk(url=url, script=script, duration=warmup, env=env, connections=connections)
    say(f"{workload}, {connections} connections, {duration:.0f} s")
    measured = run_wrk(
        url=url,
        script=script,
        duration=duration,
        env=env,
        find_pids=find_pids,
        workload=workload,
        connections=connections,
    )
    say(f"  {measured.requests_per_s:,.0f} requests/s")
    return measured
