"""What a run prints (a Markdown table) and keeps (a JSON file in bench/results/, with the machine and versions)."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.cpu import CpuWindow
from bench.loadgen import Measurement, pgbench_path, wrk_path

RESULTS_DIR = Path(__file__).with_name("results")
PACKAGES = ("litestar", "msgspec", "asyncpg", "uvicorn", "uvloop", "httptools", "sqlalchemy", "pyjwt")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": _memory_gb(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def _tool_version(argv: list[str]) -> str:
    result = subprocess.run(argv, check=False, capture_output=True, text=True)
    lines = (result.stdout + result.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    found["wrk"] = _tool_version([wrk_path(), "-v"]).split(" [")[0]
    found["pgbench"] = _tool_version([pgbench_path(), "--version"])
    return found


def _ms(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2f}"


def _cpu_cell(window: CpuWindow | None, group: str) -> str:
    if window is None or group not in window.cores:
        return "-"
    return f"{window.us_per_request(group):,.0f} us ({window.cores[group]:.2f})"


def table(measurements: list[Measurement]) -> str:
    lines = [
        "| workload | req/s | p50 ms | p90 ms | p99 ms | mean ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m in measurements:
        latency = m.latency_ms
        lines.append(
            f"| {m.workload} | {m.requests_per_s:,.0f} | {_ms(latency.get('p50'))} | {_ms(latency.get('p90'))} "
            f"| {_ms(latency.get('p99'))} | {_ms(latency.get('mean'))} |"
        )
    return "\n".join(lines)


def cpu_table(measurements: list[Measurement]) -> str:
    groups = ("app", "postgres", "load generator", "other")
    lines = [
        "CPU per request, and in cores (1.00 = one core busy), in the steady middle of each run:",
        "",
        "| workload | " + " | ".join(groups) + " | idle |",
        "|---|" + "---:|" * (len(groups) + 1),
    ]
    for m in measurements:
        idle = f"{m.cpu.cores['idle']:.2f}" if m.cpu else "-"
        lines.append(f"| {m.workload} | " + " | ".join(_cpu_cell(m.cpu, g) for g in groups) + f" | {idle} |")
    return "\n".join(lines)


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    return path


def utc_now() -> datetime:
    return datetime.now(UTC)


def markdown(headers: list[str], rows: list[list[str]], *, right_from: int = 1) -> str:
    """A Markdown table; columns from `right_from` on are right-aligned (numbers)."""
    align = ["---" if index < right_from else "---:" for index in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """One line of the table printed at the end of `./dev bench`: a benchmark's headline figure."""

    benchmark: str
    measurement: str
    result: str
    against: str = ""  # the reference it is read against (pgbench, a target), and the ratio


def summary_table(rows: list[SummaryRow]) -> str:
    return markdown(
        ["benchmark", "measurement", "result", "against"],
        [[row.benchmark, row.measurement, row.result, row.against] for row in rows],
        right_from=4,
    )
