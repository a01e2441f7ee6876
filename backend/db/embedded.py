"""The embedded PostgreSQL + PostGIS cluster the project runs itself under `.data/`.

No PyPI wheel ships PostGIS, so the server comes from Debian (`postgresql-15-postgis-3`), installed here when it
is missing and we are root. `pg_ctl` refuses to run as root, so as root every server command runs as the
`postgres` user. The cluster listens on 127.0.0.1 only, with trust authentication: it is a development and test
database. Anything else is reached through DATABASE_URL instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PG_MAJOR = "15"
PG_BIN = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
POSTGIS_CONTROL = Path(f"/usr/share/postgresql/{PG_MAJOR}/extension/postgis.control")
DEBIAN_PACKAGES = (f"postgresql-{PG_MAJOR}", f"postgresql-{PG_MAJOR}-postgis-3", "postgresql-contrib")

# Server settings: loopback only, room for tests and benchmarks, and a writer left idle in a transaction is
# cut off, because an open writing transaction holds every sync cursor back (ARCHITECTURE.md, Sync).
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "200",
    "shared_buffers": "1GB",
    "work_mem": "16MB",
    "maintenance_work_mem": "512MB",
    "idle_in_transaction_session_timeout": "60s",
    "max_wal_size": "4GB",
    "timezone": "UTC",
    "log_min_duration_statement": "2000",
    # JIT compiles the odd query whose cost estimate crosses jit_above_cost: 20 ms of compiling for a 0.5 ms
    # nearby search (measured). Our statements are short; JIT only adds tail latency.
    "jit": "off",
}


class ProvisionError(RuntimeError):
    """Provisioning failed; the message says what to do next."""


def say(message: str) -> None:
    print(f"[groundwork] {message}", file=sys.stderr, flush=True)  # noqa: T201 - progress for humans


@dataclass(frozen=True, slots=True)
class EmbeddedCluster:
    data_dir: Path  # the project's .data/
    port: int

    @property
    def cluster_dir(self) -> Path:
        return self.data_dir / "pg"

    @property
    def socket_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def log_file(self) -> Path:
        # Beside the cluster itself: when the cluster was relocated (see _place_cluster_dir), the server's user
        # cannot write into .data/.
        return self.cluster_dir.resolve().parent / "postgres.log"

    # -- the one entry point -------------------------------------------------------------------------------

    def ensure_running(self) -> None:
        """Install the server if missing, create the cluster if missing, start it if stopped. Safe to repeat."""
        ensure_server_installed()
        self._ensure_cluster()
        if not self.is_running():
            self._start()

    def is_running(self) -> bool:
        if not (self.cluster_dir / "PG_VERSION").exists():
            return False
        result = self._pg(["pg_ctl", "status", "-D", str(self.cluster_dir.resolve())], check=False, capture=True)
        return result.returncode == 0

    def stop(self) -> None:
        if self.is_running():
            say("stopping the embedded PostgreSQL")
            self._pg(["pg_ctl", "stop", "-D", str(self.cluster_dir.resolve()), "-m", "fast", "-w"])

    # -- steps -----------------------------------------------------------------------------------------------

    def _ensure_cluster(self) -> None:
        if (self.cluster_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._place_cluster_dir()
        say(f"creating a PostgreSQL {PG_MAJOR} cluster in {self.cluster_dir}")
        self._pg(
            [
                "initdb",
                "-D",
                str(self.cluster_dir.resolve()),
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            capture=True,
        )

    def _place_cluster_dir(self) -> None:
        """Create the cluster directory where the server's user can reach it.

        As root, the server runs as `postgres`, which cannot enter a checkout under /root (mode 700). Then the
        cluster lives under /var/lib/groundwork/<hash of the checkout> and .data/pg links to it.
        """
        if self.cluster_dir.is_symlink():
            return  # placed by an earlier attempt whose initdb did not finish
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            self.cluster_dir.mkdir(mode=0o700, exist_ok=True)
            return
        target = self.cluster_dir
        if not _reachable_by_postgres(self.data_dir):
            digest = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:12]
            target = Path("/var/lib/groundwork") / digest / "pg"
            self.socket_dir.rmdir()
            socket_target = target.parent / "run"
            socket_target.mkdir(parents=True, exist_ok=True)
            shutil.chown(socket_target, "postgres", "postgres")
            self.socket_dir.symlink_to(socket_target)
            say(f"{self.data_dir} is not reachable by the postgres user; the cluster lives in {target}")
        else:
            shutil.chown(self.socket_dir, "postgres", "postgres")
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.chown(target, "postgres", "postgres")
        if target != self.cluster_dir:
            if self.cluster_dir.is_symlink():
                self.cluster_dir.unlink()
            self.cluster_dir.symlink_to(target)

    def _start(self) -> None:
        say(f"starting PostgreSQL on 127.0.0.1:{self.port} (log: {self.log_file})")
        self.log_file.touch(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.log_file, "postgres", "postgres")
        # Settings go on the command line, not into the cluster's files, so a cluster made by an older checkout
        # runs with today's settings after a restart.
        settings = " ".join(f"-c {key}={value}" for key, value in SERVER_SETTINGS.items())
        options = f"-p {self.port} -k {self.socket_dir.resolve()} {settings}"
        result = self._pg(
            [
                "pg_ctl",
                "start",
                "-D",
                str(self.cluster_dir.resolve()),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                "60",
                "-o",
                options,
            ],
            check=False,
            capture=True,
        )
        if result.returncode != 0:
            tail = self.log_file.read_text(errors="replace").splitlines()[-15:]
            raise ProvisionError(
                "PostgreSQL did not start. Last lines of its log:\n  "
                + "\n  ".join(tail)
                + f"\nIf port {self.port} is taken, set GROUNDWORK_PG_PORT; to start afresh, remove {self.data_dir}."
            )

    def _pg(self, argv: list[str], *, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess[str]:
        command = [str(PG_BIN / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        # From "/": the server's user may not be allowed into the directory we were started from.
        result = subprocess.run(command, check=False, text=True, capture_output=capture, cwd="/")  # noqa: S603
        if check and result.returncode != 0:
            raise ProvisionError(f"{' '.join(argv[:2])} failed:\n{result.stdout or ''}{result.stderr or ''}")
        return result


def _reachable_by_postgres(path: Path) -> bool:
    """Can the postgres user enter `path` (every parent included)?"""
    result = subprocess.run(  # noqa: S603
        ["runuser", "-u", "postgres", "--", "test", "-x", str(path.resolve())],  # noqa: S607
        check=False,
        capture_output=True,
    )
    return result.returncode == 0


def ensure_server_installed() -> None:
    """Install Debian's PostgreSQL 15 + PostGIS 3 when missing (root only); otherwise say what to run."""
    if (PG_BIN / "pg_ctl").exists() and POSTGIS_CONTROL.exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ProvisionError(
            "PostgreSQL 15 with PostGIS 3 is not installed. As root on Debian 12 run:\n"
            f"  apt-get update && apt-get install -y {' '.join(DEBIAN_PACKAGES)}\n"
            "or point DATABASE_URL at a PostgreSQL server that has PostGIS."
        )
    say(f"installing {', '.join(DEBIAN_PACKAGES)} from Debian (once; about a minute)")
    # Debian's package would create and start a cluster of its own on port 5432; we only want the binaries.
    createcluster = Path("/etc/postgresql-common/createcluster.d")
    createcluster.mkdir(parents=True, exist_ok=True)
    (createcluster / "groundwork.conf").write_text("create_main_cluster = false\n")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *DEBIAN_PACKAGES]):
        say(" ".join(argv))
        result = subprocess.run(argv, check=False, env=env)  # noqa: S603
        if result.returncode != 0:
            raise ProvisionError(f"`{' '.join(argv)}` failed (exit {result.returncode}); see its output above.")
    if not POSTGIS_CONTROL.exists():
        raise ProvisionError(f"PostGIS is still missing after installing {DEBIAN_PACKAGES}; check apt's output.")
