"""The storefront's stylesheet and script under names that carry their digest
(`/web/assets/web.<digest>.css`), so a browser keeps them for a year and a new release is
a new name; the favicon (`/favicon.ico`, a 32 px icon drawn here, no file to ship); and
gzip for the pages (their CSRF tokens are masked per response, app/pages/csrf.py)."""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
FILES = {
    "web.css": "text/css; charset=utf-8",
    "web.js": "text/javascript; charset=utf-8",
    "analytics.js": "text/javascript; charset=utf-8",
}
FOREVER = "public, max-age=31536000, immutable"
DAY = "public, max-age=86400"

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Asset:
    path: str  # /web/assets/web.<digest>.css
    body: bytes
    media_type: str


@cache
def assets() -> dict[str, Asset]:
    """Each static file by its plain name, read once with its digest name."""
    found = {}
    for name, media_type in FILES.items():
        body = (STATIC / name).read_bytes()
        stem, _, ext = name.rpartition(".")
        digest = hashlib.sha256(body).hexdigest()[:16]
        found[name] = Asset(f"/web/assets/{stem}.{digest}.{ext}", body, media_type)
    return found


def asset_url(name: str) -> str:
    return assets()[name].path


@router.get("/web/assets/{file_name}")
async def asset(file_name: str) -> Response:
    for found in assets().values():
        if found.path.rsplit("/", 1)[1] == file_name:
            headers = {"cache-control": FOREVER}
            return Response(found.body, media_type=found.media_type, headers=headers)
    return Response("Not found", status_code=404, media_type="text/plain")


def _png(size: int) -> bytes:
    """A square icon: the header's navy with a gold bar chart (three rising bars)."""
    navy, gold = (0x14, 0x21, 0x3D, 0xFF), (0xFF, 0xD1, 0x66, 0xFF)
    bars = [(6, 12, 20), (14, 20, 13), (22, 28, 6)]  # x from, x to, top (of 32)
    rows = []
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            sx, sy = x * 32 // size, y * 32 // size
            on = any(a <= sx < b and top <= sy < 27 for a, b, top in bars)
            row += bytes(gold if on else navy)
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


@cache
def favicon() -> bytes:
    """An ICO file holding one 32×32 PNG (as every browser reads it)."""
    png = _png(32)
    entry = struct.pack("<BBBBHHII", 32, 32, 0, 0, 1, 32, len(png), 6 + 16)
    return struct.pack("<HHH", 0, 1, 1) + entry + png


@router.get("/favicon.ico")
async def favicon_ico() -> Response:
    return Response(favicon(), media_type="image/x-icon", headers={"cache-control": DAY})


class PagesGzip:
    """gzip for the server-rendered pages only (/web, the console included); API answers
    are small and their clients' hot path, so they stay as they are."""

    def __init__(self, app: ASGIApp, minimum_size: int = 500) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith("/web"):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)
