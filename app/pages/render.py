"""Rendering server-side pages: an autoescaping Jinja2 environment per front end, and the
pages' own Content-Security-Policy (scripts and styles only from the panel, no inline
script or style, forms posting only to the panel, no frame)."""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def environment(templates: Path) -> Environment:
    return Environment(
        loader=FileSystemLoader(templates),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def html_page(html: str, status: int) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers={"content-security-policy": CSP})
