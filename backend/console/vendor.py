"""Vendor the console's map library from the npm registry: `python -m backend.console.vendor`.

The console must work with no internet (ARCHITECTURE.md: the API's pages load nothing from CDNs), so Leaflet is
kept in the repository under static/vendor/. This fetches the pinned version's tarball with `npm pack` (the
ordinary client, and its registry settings), refuses it unless its sha512 matches the registry's published
integrity, unpacks the files the console serves, and records in VENDORED.json what came from where: the
package, version, tarball, its integrity, and each file's sha256 (tests/console/test_console.py checks the files
against it, so a hand edit of a vendored file fails the suite).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
RECORD = HERE / "VENDORED.json"
PACKAGE = "leaflet"
VERSION = "1.9.4"
TARGET = STATIC / "vendor" / f"{PACKAGE}-{VERSION}"
# Tarball member -> path under TARGET.
FILES = {
    "package/dist/leaflet.js": "leaflet.js",
    "package/dist/leaflet.css": "leaflet.css",
    "package/dist/images/layers.png": "images/layers.png",
    "package/dist/images/layers-2x.png": "images/layers-2x.png",
    "package/dist/images/marker-icon.png": "images/marker-icon.png",
    "package/dist/images/marker-icon-2x.png": "images/marker-icon-2x.png",
    "package/dist/images/marker-shadow.png": "images/marker-shadow.png",
    "package/LICENSE": "LICENSE",
}


def sha512_integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _npm(*args: str, cwd: Path) -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed to vendor the map library (apt-get install npm)")
    done = subprocess.run([npm, *args], cwd=cwd, check=True, capture_output=True, text=True)  # noqa: S603
    return done.stdout.strip()


def vendor() -> dict[str, object]:
    spec = f"{PACKAGE}@{VERSION}"
    with tempfile.TemporaryDirectory() as scratch:
        where = Path(scratch)
        published = _npm("view", spec, "dist.integrity", cwd=where)
        tarball_url = _npm("view", spec, "dist.tarball", cwd=where)
        name = _npm("pack", spec, "--silent", cwd=where).splitlines()[-1]
        data = (where / name).read_bytes()
    integrity = sha512_integrity(data)
    if integrity != published:
        raise SystemExit(f"{spec}: the tarball's integrity {integrity} is not the registry's {published}")
    files: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member, relative in FILES.items():
            extracted = archive.extractfile(member)
            if extracted is None:
                raise SystemExit(f"{spec}: {member} is missing from the tarball")
            content = extracted.read()
            path = TARGET / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            files[relative] = sha256(content)
    record: dict[str, object] = {
        "package": PACKAGE,
        "version": VERSION,
        "registry": "npm",
        "tarball": tarball_url,
        "integrity": integrity,
        "directory": str(TARGET.relative_to(HERE)),
        "files": files,
        "how": "python -m backend.console.vendor (npm pack, integrity checked against the registry's)",
    }
    RECORD.write_text(json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    result = vendor()
    sys.stdout.write(f"vendored {result['package']} {result['version']} ({result['integrity']})\n")
