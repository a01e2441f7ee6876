"""Where photo bytes live: a small interface, and the local-disk store the app uses by default.

Keys are `<tenant>/<sha256>`: identical bytes are stored once, and a key always names the same bytes, so `put` is
idempotent by construction. An S3-compatible store implements the same three calls (a PUT of the object, a GET,
a HEAD). The service writes the bytes before it commits the row that points at them: a crash in between leaves
at worst an orphan file, never a row without its photo.
"""

from __future__ import annotations

import os
import re
import tempfile
from functools import cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import anyio.to_thread

_KEY = re.compile(r"^[0-9a-f-]{36}/[0-9a-f]{64}$")


@runtime_checkable  # Litestar checks a dependency's type when it injects it
class PhotoStore(Protocol):
    async def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, all or nothing; storing the same key again changes nothing."""

    async def get(self, key: str) -> bytes:
        """The bytes under `key`; FileNotFoundError when there are none."""

    async def exists(self, key: str) -> bool: ...


def photo_key(tenant_id: object, sha256: str) -> str:
    return f"{tenant_id}/{sha256}"


class LocalDiskStore:
    """Files under `root`, fanned out by the first hex digits of the hash so no directory grows huge."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        # Keys are made by `photo_key`; checking the shape keeps any other string (`..`, `/etc`) off the disk.
        if not _KEY.match(key):
            raise ValueError(f"not a photo key: {key!r}")
        tenant, digest = key.split("/")
        return self.root / tenant / digest[:2] / digest

    async def put(self, key: str, data: bytes) -> None:
        await anyio.to_thread.run_sync(self._put, self.path(key), data)

    async def get(self, key: str) -> bytes:
        return await anyio.to_thread.run_sync(self.path(key).read_bytes)

    async def exists(self, key: str) -> bool:
        return await anyio.to_thread.run_sync(self.path(key).is_file)

    @staticmethod
    def _put(path: Path, data: bytes) -> None:
        if path.is_file():
            return  # same key, same bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write a temporary file beside the target and rename it into place: a reader or a crash sees the whole
        # file or none of it. fsync before the rename (and of the directory after) so that, once this returns
        # and the row is committed, a power cut cannot leave the row pointing at an empty file.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


@cache
def local_store(root: Path) -> LocalDiskStore:
    return LocalDiskStore(root)
