"""The dashboard's static files, built from services/gateway/dashboard (npm) into gateway_service/static: the app's
page at `/` (the login) and at `/app/...` (the same page; its router picks the view), and its assets at
`/assets/<name>`. Public: the page holds no data; every figure comes from /api/v1 with the user's token.

Only the files of the build are served (read once, by name: no path from a request reaches the file system). The
assets' names carry a hash of their content, so they are cached for a year; the page itself is revalidated, so a new
build is picked up at the next load. Not in the OpenAPI description (they are not the API)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from gateway_service.problems import NotFound
from gateway_service.security import authorize

router = APIRouter(dependencies=[Depends(authorize)], tags=["dashboard"], include_in_schema=False)

MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
PAGE_HEADERS = {"Cache-Control": "no-cache"}
ASSET_HEADERS = {"Cache-Control": "public, max-age=31536000, immutable"}


class DashboardNotBuilt(RuntimeError):
    pass


@cache
def page() -> bytes:
    static = resources.files("gateway_service") / "static"
    index = static / "index.html"
    if not index.is_file():
        raise DashboardNotBuilt(
            "gateway_service/static/index.html is missing: build the dashboard (cd services/gateway/dashboard && "
            "npm ci && npm run build)"
        )
    return index.read_bytes()


@cache
def assets() -> dict[str, tuple[bytes, str]]:
    """Every built asset by file name, with its media type."""
    folder = resources.files("gateway_service") / "static" / "assets"
    if not folder.is_dir():
        return {}
    found = {}
    for entry in folder.iterdir():
        suffix = entry.name[entry.name.rfind(".") :]
        if entry.is_file() and suffix in MEDIA_TYPES:
            found[entry.name] = (entry.read_bytes(), MEDIA_TYPES[suffix])
    return found


def html() -> Response:
    return Response(page(), media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/")
async def login_page() -> Response:
    """The dashboard (it shows the login until a session is held)."""
    return html()


@router.get("/app")
async def app_root() -> Response:
    return html()


@router.get("/app/{view:path}")
async def app_page(view: Annotated[str, Path(max_length=200)]) -> Response:
    """Any page of the dashboard (/app/overview, /app/orders, ...): the same document, its router draws the view."""
    return html()


@router.get("/assets/{name}")
async def asset(name: Annotated[str, Path(max_length=200)]) -> Response:
    found = assets().get(name)
    if found is None:
        raise NotFound(f"no asset {name!r}", field="name")
    content, media_type = found
    return Response(content, media_type=media_type, headers=ASSET_HEADERS)
