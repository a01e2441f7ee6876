"""Settings, read once from the environment at start-up into one typed object.

With no DATABASE_URL the app uses the embedded PostGIS cluster the project runs itself under `.data/`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
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
    scheduler_poll_s: float  # how often `groundwork worker` asks which periodic tasks are due
    sync_tombstone_retention_days: int  # removals kept in the sync feed; an older cursor must resync
    watermelon_pull_retention_days: int  # WatermelonDB pull bases kept; an older push is judged as it is
    sms_outbox: Path | None = None  # demo only: SMS texts (customer codes) written to this file instead of sent
    code_key: bytes = b""  # keys the hashes of customer codes; GROUNDWORK_CODE_KEY, else derived from jwt_secret
    # Seals integration keys' secrets (AES-256-GCM, backend/events/keys.py); GROUNDWORK_INTEGRATION_KEK (64 hex
    # digits), else derived from jwt_secret.
    integration_kek: bytes = b""
    # Operations (README, "Operating Groundwork"). Defaults here too, so a Settings built by hand stays valid.
    log_format: str = "text"  # "text" or "json" (one JSON object per line)
    log_level: str = "INFO"
    pool_timeout_s: float = 5.0  # longest wait for a database connection (both pools); then 503 + Retry-After
    retry_after_s: int = 2  # the Retry-After of a 503 (database busy or away) and of a 429 (per-user limit)
    user_concurrency: int = 3  # expensive calls (sync, photos, dispatch, codes, login) running at once per user
    tenant_pool_share: int = 0  # ORM connections one tenant may hold at once (backend/db/shares.py); 0: half the pool
    # Accounts (backend/auth/): how long a user's version and active flag are trusted before they are read again,
    # the argon2 concurrency cap and its queue, and the login throttle.
    user_state_ttl_s: float = 5.0
    password_hash_concurrency: int = 1  # get_settings: half the cores, at least 1 (argon2 takes a core each)
    password_hash_queue: int = 16
    login_max_failures: int = 5  # per account (username) and window
    login_max_failures_per_source: int = 50  # per source address and window
    login_window_s: int = 900
    login_lockout_s: int = 900
    # An abuse refusal (locked login or code, too many at once, too often) is held this long (jittered 0.5x-1.5x)
    # before it is answered, holding no connection (backend/tarpit.py): closed-loop guessers slow to a crawl.
    refusal_delay_s: float = 1.0
    gc_freeze: bool = True  # freeze the start-up objects out of the cyclic GC (app.py); tests turn it off

    def tenant_share_of(self, overflow: int) -> int:
        """A tenant's share of the ORM pool of `orm_pool_size` + `overflow` connections."""
        return self.tenant_pool_share if self.tenant_pool_share > 0 else max(1, (self.orm_pool_size + overflow) // 2)

    # The supervisor console (backend/console/): its base map. The default is the app's own grid tile, which needs
    # no internet; a tile server's URL template ({z}/{x}/{y}, {s} for subdomains) replaces it.
    console_tile_url: str = "/console/tiles/{z}/{x}/{y}.png"
    console_tile_crs: str = "wgs84"  # the tiles' coordinate system: wgs84, gcj02 (AMap, Tencent) or bd09 (Baidu)
    console_tile_attribution: str = "Groundwork grid (no base map)"

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


def _code_key(jwt_secret: str) -> bytes:
    """GROUNDWORK_CODE_KEY, else a key derived from the JWT secret for this one purpose (HMAC with a label), so
    a customer code's hash and a token's signature never share a key."""
    configured = os.environ.get("GROUNDWORK_CODE_KEY")
    if configured:
        return configured.encode()
    return hmac.new(jwt_secret.encode(), b"groundwork customer codes v1", hashlib.sha256).digest()


def _integration_kek(jwt_secret: str) -> bytes:
    """GROUNDWORK_INTEGRATION_KEK (32 bytes as hex), else a key derived from the JWT secret for this one purpose."""
    configured = os.environ.get("GROUNDWORK_INTEGRATION_KEK")
    if configured:
        key = bytes.fromhex(configured)
        if len(key) != 32:
            raise ValueError("GROUNDWORK_INTEGRATION_KEK: expected 64 hex digits (32 bytes)")
        return key
    return hmac.new(jwt_secret.encode(), b"groundwork integration keys v1", hashlib.sha256).digest()


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
    jwt_secret = _jwt_secret(data_dir)
    return Settings(
        database_url=url or embedded_database_url(pg_port),
        embedded=not url,
        data_dir=data_dir,
        embedded_pg_port=pg_port,
        jwt_secret=jwt_secret,
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
        scheduler_poll_s=float(env.get("GROUNDWORK_SCHEDULER_POLL_S", "15")),
        sync_tombstone_retention_days=int(env.get("GROUNDWORK_SYNC_TOMBSTONE_RETENTION_DAYS", "30")),
        watermelon_pull_retention_days=int(env.get("GROUNDWORK_WATERMELON_PULL_RETENTION_DAYS", "30")),
        sms_outbox=Path(env["GROUNDWORK_SMS_OUTBOX"]) if env.get("GROUNDWORK_SMS_OUTBOX") else None,
        code_key=_code_key(jwt_secret),
        integration_kek=_integration_kek(jwt_secret),
        log_format=_choice(env, "GROUNDWORK_LOG_FORMAT", "text", ("text", "json")),
        log_level=env.get("GROUNDWORK_LOG_LEVEL", "INFO").upper(),
        pool_timeout_s=float(env.get("GROUNDWORK_POOL_TIMEOUT_S", "5")),
        retry_after_s=int(env.get("GROUNDWORK_RETRY_AFTER_S", "2")),
        user_concurrency=int(env.get("GROUNDWORK_USER_CONCURRENCY", "3")),
        tenant_pool_share=int(env.get("GROUNDWORK_TENANT_POOL_SHARE", "0")),
        user_state_ttl_s=float(env.get("GROUNDWORK_USER_STATE_TTL_S", "5")),
        password_hash_concurrency=int(
            env.get("GROUNDWORK_PASSWORD_HASH_CONCURRENCY", str(max(1, (os.cpu_count() or 2) // 2)))
        ),
        password_hash_queue=int(env.get("GROUNDWORK_PASSWORD_HASH_QUEUE", "16")),
        login_max_failures=int(env.get("GROUNDWORK_LOGIN_MAX_FAILURES", "5")),
        login_max_failures_per_source=int(env.get("GROUNDWORK_LOGIN_MAX_FAILURES_PER_SOURCE", "50")),
        login_window_s=int(env.get("GROUNDWORK_LOGIN_WINDOW_S", "900")),
        login_lockout_s=int(env.get("GROUNDWORK_LOGIN_LOCKOUT_S", "900")),
        refusal_delay_s=float(env.get("GROUNDWORK_REFUSAL_DELAY_S", "1")),
        gc_freeze=env.get("GROUNDWORK_GC_FREEZE", "1") != "0",
        console_tile_url=env.get("GROUNDWORK_CONSOLE_TILE_URL", "/console/tiles/{z}/{x}/{y}.png"),
        console_tile_crs=_choice(env, "GROUNDWORK_CONSOLE_TILE_CRS", "wgs84", ("wgs84", "gcj02", "bd09")),
        console_tile_attribution=env.get("GROUNDWORK_CONSOLE_TILE_ATTRIBUTION", "Groundwork grid (no base map)"),
    )


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    """A setting with a few allowed values: a typo fails at start-up instead of silently meaning the default."""
    value = env.get(name, default).strip().lower()
    if value not in allowed:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(allowed)}")
    return value
