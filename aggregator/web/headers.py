"""Security headers on every response: what a browser may do with what this server sends.

Pages load nothing but their own stylesheet and submit forms only here; nothing may frame them.
Every other response (feeds, JSON, OPML, plain text) is data: if a browser opens one, it runs
nothing in it. No response is sniffed into another type, and no link followed from a page tells
the next site which page (and which query) it came from.
"""

from __future__ import annotations

from flask import Response

PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
DATA_POLICY = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'; sandbox"
COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate CSP 2
}


def secure(response: Response) -> Response:
    """The response with its security headers (those a view set itself are kept)."""
    policy = PAGE_POLICY if response.mimetype == "text/html" else DATA_POLICY
    response.headers.setdefault("Content-Security-Policy", policy)
    for name, value in COMMON.items():
        response.headers.setdefault(name, value)
    return response
