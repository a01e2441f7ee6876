"""The supervisor console: one web page served by the app (`/console`), its script and styles, the vendored map
library (Leaflet, VENDORED.json), the grid tile of the default base map, and the page's settings.

No internet needed and nothing from a CDN: every asset comes from this app. The page is a static document; it
signs in with POST /v1/auth/token and then reads the same API the phones use (live view, its event stream,
exceptions, a person's day and trail), in the coordinate system of the base map's tiles. A strict
Content-Security-Policy says so to the browser: scripts, styles and connections only from this origin, images
from here and from the tile server's origin, no inline script or style, no frames, no forms posting elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
from litestar import Request, Response, Router, get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.static_files import create_static_files_router

from backend.settings import Settings

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = "/console/assets"
_GRID_TILE = (STATIC / "grid-tile.png").read_bytes()


class ConsoleConfig(msgspec.Struct, frozen=True):
    """What the page needs to draw its base map (settings.py: GROUNDWORK_CONSOLE_TILE_*)."""

    tile_url: str
    tile_crs: str  # the page asks the API for positions in this system, so they sit right on these tiles
    attribution: str


def tile_origin(tile_url: str) -> str | None:
    """The origin a tile URL template points at, for the CSP's img-src; None for the app's own tiles."""
    parts = urlsplit(tile_url.replace("{s}", "a"))
    if not parts.scheme or not parts.netloc:
        return None
    host = parts.netloc
    if "{s}" in tile_url:  # subdomains a, b, c ...: allow the parent domain's subdomains
        host = "*." + host.split(".", 1)[1] if "." in host else host
    return f"{parts.scheme}://{host}"


def content_security_policy(settings: Settings) -> str:
    images = ["'self'", "data:"]
    origin = tile_origin(settings.console_tile_url)
    if origin:
        images.append(origin)
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {' '.join(images)}",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _headers(settings: Settings) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


@get("/console", include_in_schema=False, sync_to_thread=False)
def console_page(request: Request[Any, Any, State]) -> Response[bytes]:
    settings: Settings = request.app.state.settings
    return Response(
        (STATIC / "index.html").read_bytes(), media_type="text/html; charset=utf-8", headers=_headers(settings)
    )


@get("/console/config.json", include_in_schema=False, sync_to_thread=False)
def console_config(request: Request[Any, Any, State]) -> Response[bytes]:
    settings: Settings = request.app.state.settings
    config = ConsoleConfig(
        tile_url=settings.console_tile_url,
        tile_crs=settings.console_tile_crs,
        attribution=settings.console_tile_attribution,
    )
    return Response(msgspec.json.encode(config), media_type="application/json", headers={"Cache-Control": "no-cache"})


@get("/console/tiles/{z:int}/{x:int}/{tile:str}", include_in_schema=False, sync_to_thread=False)
def grid_tile(z: FromPath[int], x: FromPath[int], tile: FromPath[str]) -> Response[bytes]:
    """The default base map: the same light grid everywhere (no internet, no map data to license). `tile` is
    "{y}.png"."""
    del z, x, tile
    return Response(_GRID_TILE, media_type="image/png", headers={"Cache-Control": "public, max-age=86400"})


CONSOLE_ROUTES = Router(
    path="/",
    route_handlers=[
        console_page,
        console_config,
        grid_tile,
        create_static_files_router(path=ASSETS, directories=[STATIC], include_in_schema=False),
    ],
    include_in_schema=False,
)
