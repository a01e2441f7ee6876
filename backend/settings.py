"""Settings, read once from the environment at start-up into one typed object.

With no DATABASE_URL the app uses the embedded PostGIS cluster the project runs itself under `.data/`.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str  # postgresql://... (asyncpg form); SQLAlchemy's +asyncpg form is derived
    embedded: bool  # True when we run the database ourselves under data_dir
    data_dir: Path
    embedded_pg_port: int
    jwt_secret: str
    access_token_ttl_s: int
    refresh_token_ttl_s: int
    host: str
    port: int
    max_body_bytes: int
    hot_pool_size: int  # asyncpg connections for the hot read paths (nearby)
    orm_pool_size: int  # SQLAlchemy connections for ordinary reads and writes
    argon2_fast: bool  # cheaper argon2 parameters, for tests only
    photo_dir: Path  # where LocalDiskStore keeps uploaded photos
    max_photo_bytes: int  # one photo upload; the JSON bodies keep max_body_bytes
    # Accounts (backend/auth/): how long a user's version and active flag are trusted before they are read again,
    # the argon2 concurrency cap and its queue, and the login throttle.
    user_state_ttl_s: float = 5.0
    password_hash_concurrency: int = 1  # get_settings: half the cores, at least 1 (argon2 takes a core each)
    password_hash_queue: int = 16
    login_max_failures: int = 5  # per account (username) and window
    login_max_failures_per_source: int = 50  # per source address and window
    login_window_s: int = 900
    login_lockout_s: int = 900
    login_locked_delay_s: float = 1.0  # a locked login waits this long before its 429 (slows closed-loop guessers)

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url.replace("postgresql://", "postgresql+asyncpg://", 1)

    def with_database(self, database_url: str) -> Settings:
        from dataclasses import replace

        return replace(self, database_url=database_url)


def _jwt_secret(data_dir: Path) -> str:
    """A configured secret, or for the embedded development setup one generated once and kept in .data/."""
    configured = os.environ.get("GROUNDWORK_JWT_SECRET")
    if configured:
        return configured
    path = data_dir / "jwt-secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.write_text(secret)
    path.chmod(0o600)
    return secret


def embedded_database_url(port: int, database: str = "groundwork") -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


@cache
def get_settings() -> Settings:
    env = os.environ
    data_dir = Path(env.get("GROUNDWORK_DATA_DIR", REPO_ROOT / ".data"))
    pg_port = int(env.get("GROUNDWORK_PG_PORT", "54329"))
    url = env.get("DATABASE_URL")
    if url:
        url = url.replace("postgresql+asyncpg://", "postgresql://", 1).replace("postgres://", "postgresql://", 1)
    return Settings(
        database_url=url or embedded_database_url(pg_port),
        embedded=not url,
        data_dir=data_dir,
        embedded_pg_port=pg_port,
        jwt_secret=_jwt_secret(data_dir),
        access_token_ttl_s=int(env.get("GROUNDWORK_ACCESS_TTL_S", "900")),
        refresh_token_ttl_s=int(env.get("GROUNDWORK_REFRESH_TTL_S", str(60 * 86_400))),
        host=env.get("GROUNDWORK_HOST", "127.0.0.1"),
        port=int(env.get("GROUNDWORK_PORT", "8000")),
        max_body_bytes=int(env.get("GROUNDWORK_MAX_BODY_BYTES", str(1024 * 1024))),
        hot_pool_size=int(env.get("GROUNDWORK_HOT_POOL_SIZE", "8")),
        orm_pool_size=int(env.get("GROUNDWORK_ORM_POOL_SIZE", "8")),
        argon2_fast=env.get("GROUNDWORK_ARGON2_FAST") == "1",
        photo_dir=Path(env.get("GROUNDWORK_PHOTO_DIR", data_dir / "photos")),
        max_photo_bytes=int(env.get("GROUNDWORK_MAX_PHOTO_BYTES", str(15 * 1024 * 1024))),
        user_state_ttl_s=float(env.get("GROUNDWORK_USER_STATE_TTL_S", "5")),
        password_hash_concurrency=int(
            env.get("GROUNDWORK_PASSWORD_HASH_CONCURRENCY", str(max(1, (os.cpu_count() or 2) // 2)))
        ),
        password_hash_queue=int(env.get("GROUNDWORK_PASSWORD_HASH_QUEUE", "16")),
        login_max_failures=int(env.get("GROUNDWORK_LOGIN_MAX_FAILURES", "5")),
        login_max_failures_per_source=int(env.get("GROUNDWORK_LOGIN_MAX_FAILURES_PER_SOURCE", "50")),
        login_window_s=int(env.get("GROUNDWORK_LOGIN_WINDOW_S", "900")),
        login_lockout_s=int(env.get("GROUNDWORK_LOGIN_LOCKOUT_S", "900")),
        login_locked_delay_s=float(env.get("GROUNDWORK_LOGIN_LOCKED_DELAY_S", "1")),
    )
