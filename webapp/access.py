"""Who may connect and what they may read.

One middleware (:func:`make_security_middleware`) runs before every handler:

1. **Trusted proxies** (``--trusted-proxy``): a request whose TCP peer is a
   trusted proxy is seen with the client address, scheme and host that proxy
   forwarded (``X-Forwarded-For``, ``-Proto``, ``-Host``); from anyone else
   those headers are ignored, since anyone can send them.
2. **Host names** (DNS rebinding): a web page on ``evil.example`` whose DNS
   answer is changed to 127.0.0.1 makes the victim's browser send
   ``Host: evil.example`` (and a matching ``Origin``) to our server, same
   origin as far as the browser knows. So only these Hosts are answered: IP
   literals (a rebinding attack needs a *name*), ``localhost`` names, the
   listen address, and ``--allowed-host`` names; others get 421 Misdirected
   Request (RFC 9110 section 15.5.20).
3. **Tokens**: with token auth, a token in ``Authorization: Bearer`` or
   ``?token=`` is verified (``webapp.auth.TokenVerifier``, which may fetch a
   JWKS, hence here and not in the handlers); handlers call :func:`authorize`.

Every refusal is a plain HTTP status with a JSON body naming the kind of
refusal and nothing more.

**Privacy by default.** Recordings, frames and photos are personal data:
without token auth, :func:`authorize_data` lets only loopback clients (and
``--trusted-network`` ones) read or delete them. A request that came through
a proxy we do not trust (it carries ``X-Forwarded-For``) is not loopback,
even from 127.0.0.1: a proxy on the same machine is speaking for somebody
else.

**Media URLs.** A ``<video>`` element cannot send an ``Authorization``
header, and a login token in a URL ends up in logs and history. With token
auth the gallery API hands out file URLs signed for that one file
(``?exp=<unix time>&sig=<base64url HMAC-SHA256>``, valid ``--media-url-ttl``
seconds); the file route accepts such a URL without a token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import re
import time
from collections import Counter
from typing import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from webapp.auth import AuthError, TokenClaims, TokenVerifier
from webapp.config import Config
from webapp.netaddr import forwarded_client, in_networks, parse_address, parse_networks

logger = logging.getLogger(__name__)

__all__ = [
    "AddressLimiter",
    "RedactingAccessLogger",
    "allowed_host",
    "authorize",
    "authorize_data",
    "check_origin",
    "client_address",
    "is_local_client",
    "media_signature",
    "redact",
    "request_token",
    "make_security_middleware",
    "verify_media_signature",
]

#: Where the middleware leaves the outcome of token verification.
_CLAIMS = web.RequestKey("callbot.claims", TokenClaims)
_AUTH_ERROR = web.RequestKey("callbot.auth_error", str)
#: Set on requests that a trusted proxy forwarded.
_FORWARDED = web.RequestKey("callbot.forwarded", bool)
#: The client a trusted proxy forwarded for, set on the request aiohttp logs
#: (the handlers see a clone whose ``remote`` is already that client).
_LOGGED_CLIENT = web.RequestKey("callbot.logged_client", str)
#: Names that are always this machine.
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _refuse(exc_type: type[web.HTTPException], code: str) -> web.HTTPException:
    return exc_type(text=f'{{"error":"{code}"}}', content_type="application/json")


# -- the middleware ----------------------------------------------------------------


def make_security_middleware(config: Config, verifier: TokenVerifier | None) -> Callable[..., Awaitable[web.StreamResponse]]:
    sec = config.security
    proxies = parse_networks(sec.trusted_proxies)

    @web.middleware
    async def security_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if proxies:
            request = _forwarded(request, proxies)
        if not allowed_host(request.host, config):
            logger.info("refused %s %s from %s: Host %r is not allowed", request.method, request.path,
                        request.remote, request.host[:100])
            raise _refuse(web.HTTPMisdirectedRequest, "host-not-allowed")
        if verifier is not None:
            token = request_token(request)
            if token:
                try:
                    request[_CLAIMS] = await verifier.verify(token)
                except AuthError as exc:
                    request[_AUTH_ERROR] = str(exc)
        return await handler(request)

    return security_middleware


def _forwarded(request: web.Request, proxies: tuple) -> web.Request:
    peer = parse_address(request.remote)
    if not in_networks(peer, proxies):
        return request
    changes: dict[str, str] = {}
    client = forwarded_client(peer, request.headers.get("X-Forwarded-For", ""), proxies)
    if client is not None:
        changes["remote"] = str(client)
        request[_LOGGED_CLIENT] = f"{client} via {peer}"
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
    if proto in ("http", "https"):
        changes["scheme"] = proto
    host = request.headers.get("X-Forwarded-Host", "").split(",")[-1].strip()
    if host:
        changes["host"] = host
    clone = request.clone(**changes)  # type: ignore[arg-type]
    clone[_FORWARDED] = True
    return clone


# -- host names ----------------------------------------------------------------------


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def allowed_host(host: str | None, config: Config) -> bool:
    """May a request with this Host header be answered? (see the module docstring)"""
    if not host:
        return True  # HTTP/1.0 without Host: no name a page could have chosen
    allowed = config.security.allowed_hosts
    if "*" in allowed:
        return True
    name = _hostname(host)
    try:
        ipaddress.ip_address(name)
        return True  # an address: not something DNS rebinding can produce
    except ValueError:
        pass
    return name in _LOCAL_NAMES or name.endswith(".localhost") or name == config.host.lower() or name in allowed


# -- tokens ----------------------------------------------------------------------------


def request_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.query.get("token")


def authorize(request: web.Request, config: Config) -> TokenClaims | None:
    """The token's claims, or None when auth is off; 401 when it fails."""
    if not config.security.auth_enabled:
        return None
    claims = request.get(_CLAIMS)
    if claims is not None:
        return claims
    reason = request.get(_AUTH_ERROR, "no token")
    logger.info("refused %s %s from %s: %s", request.method, request.path, request.remote, reason)
    raise _refuse(web.HTTPUnauthorized, "unauthorized")


def client_address(request: web.Request) -> str:
    """The client's address (the forwarded one behind a trusted proxy)."""
    return request.remote or "?"


def is_local_client(request: web.Request) -> bool:
    address = parse_address(request.remote)
    if address is None or not address.is_loopback:
        return False
    if request.get(_FORWARDED):
        return True  # a trusted proxy says the client itself is local
    # 127.0.0.1 speaking for somebody else: a local proxy we were not told of.
    return "X-Forwarded-For" not in request.headers and "Forwarded" not in request.headers


def authorize_data(request: web.Request, config: Config) -> TokenClaims | None:
    """Who may read or delete calls: the token's user with token auth;
    without it, loopback clients and ``--trusted-network`` ones only (403)."""
    claims = authorize(request, config)
    if claims is not None:
        return claims
    if is_local_client(request):
        return None
    networks = parse_networks(config.security.trusted_networks)
    if networks and in_networks(parse_address(request.remote), networks) and not (
        "X-Forwarded-For" in request.headers and not request.get(_FORWARDED)
    ):
        return None
    logger.info("refused %s %s from %s: calls are private without token auth", request.method,
                request.path, request.remote)
    raise _refuse(web.HTTPForbidden, "local-only")


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


# -- signed media URLs -------------------------------------------------------------------


def media_signature(key: bytes, call_id: str, name: str, expires: int) -> str:
    message = f"{call_id}\n{name}\n{expires}".encode()
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).rstrip(b"=").decode()


def verify_media_signature(request: web.Request, key: bytes, call_id: str, name: str) -> bool:
    """Is this request a file URL signed for ``call_id``/``name``, not expired?"""
    sig, exp = request.query.get("sig"), request.query.get("exp")
    if not sig or not exp or not exp.isdigit() or len(exp) > 12:
        return False
    if int(exp) < time.time():
        return False
    return hmac.compare_digest(sig, media_signature(key, call_id, name, int(exp)))


# -- the access log ----------------------------------------------------------------------

_SECRET_PARAMS = re.compile(r"(?i)([?&](?:token|sig|upload_token|access_token)=)[^&#]*")


def redact(path_qs: str) -> str:
    """``/ws?token=eyJ...`` -> ``/ws?token=[redacted]``."""
    return _SECRET_PARAMS.sub(r"\1[redacted]", path_qs)


class RedactingAccessLogger(AbstractAccessLogger):
    """aiohttp's access log line, with tokens and signatures in the query
    replaced: a log file is read by more people than may log in. Behind a
    trusted proxy the line names the client it forwarded for, then the proxy
    (``198.51.100.7 via 127.0.0.1``)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.3fs "%s"',
            request.get(_LOGGED_CLIENT, request.remote), request.method, redact(request.path_qs), request.version.major,
            request.version.minor, response.status, response.body_length, time,
            request.headers.get("User-Agent", "-")[:200],
        )


class AddressLimiter:
    """Concurrent WebSockets per client address (behind a trusted proxy: per
    forwarded address)."""

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
