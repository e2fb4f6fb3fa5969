"""Who may connect: token auth, the origin allow-list, per-address limits.

Every refusal happens before the WebSocket upgrade, with a plain HTTP status
and a body that says what kind of refusal it is and nothing more.
"""

from __future__ import annotations

import logging
from collections import Counter
from urllib.parse import urlsplit

from aiohttp import web

from webapp.config import Config
from webapp.auth import AuthError, TokenClaims, verify_token

logger = logging.getLogger(__name__)


def _refuse(exc_type: type[web.HTTPException], code: str) -> web.HTTPException:
    return exc_type(text=f'{{"error":"{code}"}}', content_type="application/json")


def request_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.query.get("token")


def authorize(request: web.Request, config: Config) -> TokenClaims | None:
    """The token's claims, or None when auth is off; 401 when it fails."""
    secret = config.security.auth_secret
    if secret is None:
        return None
    token = request_token(request)
    if not token:
        raise _refuse(web.HTTPUnauthorized, "unauthorized")
    try:
        return verify_token(secret, token)
    except AuthError as exc:
        logger.info("refused %s %s from %s: %s", request.method, request.path, request.remote, exc)
        raise _refuse(web.HTTPUnauthorized, "unauthorized") from None


def check_origin(request: web.Request, config: Config) -> None:
    """Browsers always send Origin on a WebSocket upgrade; a page on another
    site must not drive a user's session (cross-site WebSocket hijacking)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return  # not a browser: nothing to hijack
    allowed = config.security.allowed_origins
    if allowed:
        if "*" in allowed or origin.rstrip("/") in allowed:
            return
    else:
        parts = urlsplit(origin)
        own_scheme = "https" if request.secure else "http"
        if parts.netloc.lower() == request.host.lower() and parts.scheme in (own_scheme, own_scheme.replace("http", "ws")):
            return
    logger.info("refused WebSocket from origin %r", origin)
    raise _refuse(web.HTTPForbidden, "origin-not-allowed")


class AddressLimiter:
    """Concurrent connections per client address."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def acquire(self, address: str) -> None:
        if self._open[address] >= self.limit:
            raise _refuse(web.HTTPTooManyRequests, "too-many-connections")
        self._open[address] += 1

    def release(self, address: str) -> None:
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]
