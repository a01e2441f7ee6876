"""Where the CPU went during a measurement, read from /proc (Linux).

Two snapshots inside the steady part of a run give, for each group of processes (the app server, the PostgreSQL
backends serving the workload, the load generator), the CPU it used per request; the machine's own counters give
how busy the whole machine was, and what is left over is other work on the machine (other people's test suites,
PostgreSQL's background processes). On a 2-core machine this shows at once which side is the bottleneck.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads), or None when it is gone or not on this machine."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces; fields start at `state`
    return (int(fields[11]) + int(fields[12])) * _TICK_S  # utime, stime


def machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, summed over cores."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest time is inside user)
    return (total - idle) * _TICK_S, total * _TICK_S


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float  # monotonic seconds
    machine_busy_s: float
    machine_total_s: float
    groups: dict[str, float]  # CPU seconds per group of processes


def snapshot(groups: dict[str, list[int]]) -> Snapshot:
    busy, total = machine_cpu_s()
    return Snapshot(
        at=time.monotonic(),
        machine_busy_s=busy,
        machine_total_s=total,
        groups={name: sum(process_cpu_s(pid) or 0.0 for pid in pids) for name, pids in groups.items()},
    )


@dataclass(frozen=True, slots=True)
class CpuWindow:
    """CPU use over a window of a run, per request and in cores (1.0 = one core fully busy)."""

    seconds: float
    requests_per_s: float
    cores: dict[str, float]  # per group, plus "other" (the rest of the machine's busy time) and "idle"
    pids: dict[str, list[int]]

    def us_per_request(self, group: str) -> float:
        return self.cores[group] / self.requests_per_s * 1e6 if self.requests_per_s else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {
            "window_s": round(self.seconds, 2),
            "cores": {name: round(value, 3) for name, value in self.cores.items()},
            "us_per_request": {
                name: round(self.us_per_request(name), 1) for name in self.cores if name not in ("idle",)
            },
            "pids": self.pids,
        }


def window(first: Snapshot, last: Snapshot, requests_per_s: float, pids: dict[str, list[int]]) -> CpuWindow:
    seconds = last.at - first.at
    cores = {name: (last.groups[name] - first.groups[name]) / seconds for name in first.groups}
    busy = (last.machine_busy_s - first.machine_busy_s) / seconds
    total = (last.machine_total_s - first.machine_total_s) / seconds
    cores["other"] = max(0.0, busy - sum(cores.values()))
    cores["idle"] = max(0.0, total - busy)
    return CpuWindow(seconds=seconds, requests_per_s=requests_per_s, cores=cores, pids=pids)


def machine_busy_cores(seconds: float = 1.0) -> float:
    """How many cores the machine keeps busy right now (a quiet machine: close to 0)."""
    busy_before, total_before = machine_cpu_s()
    time.sleep(seconds)
    busy_after, total_after = machine_cpu_s()
    cores = os.cpu_count() or 1
    return (busy_after - busy_before) / (total_after - total_before) * cores if total_after > total_before else 0.0
