"""The listening page: a static HTML page at ``/`` and its few files under
``/static/``. Loading them needs no key; the page's own calls to ``/v1`` send
the key it keeps in the browser's localStorage, as any other client does.

The page is served under a strict Content-Security-Policy: scripts, styles and
API calls from this origin only, audio also from the S3 endpoint that presigned
URLs point to (another origin)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from chorus.configs import get_settings

STATIC = Path(__file__).resolve().parent.parent / "static"
# Only these files are served: nothing else under the folder is reachable by name.
FILES = {
    "app.js": "text/javascript",
    "reading.js": "text/javascript",
    "style.css": "text/css",
    "icon.svg": "image/svg+xml",
}

router = APIRouter(include_in_schema=False)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@cache
def content_security_policy() -> str:
    settings = get_settings()
    s3 = _origin(settings.s3_public_endpoint or settings.s3_endpoint)
    return "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        f"media-src 'self' {s3}",
        "form-action 'none'",  # forms are sent by the script, never by the browser
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ])


def _headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


@router.get("/")
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=_headers())


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    if name not in FILES:
        raise HTTPException(404, f"no file {name!r}")
    return FileResponse(STATIC / name, media_type=FILES[name], headers=_headers())
