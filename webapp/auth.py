"""Token auth (JWT HS256, RFC 7519 / RFC 7515).

With ``--auth-secret`` set, every WebSocket upgrade and API request needs a
token, in a ``token`` query parameter or an ``Authorization: Bearer`` header,
naming the username it may log in as (``sub``) and its expiry (``exp``). A
token with ``"admin": true`` may read every call. Mint one with::

    python server.py mint-token alice --auth-secret S --ttl 3600

Only HS256 is accepted: the ``alg`` header is checked, never trusted, so
``none`` or an RS/HS confusion cannot get in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from media.errors import CallbotError


class AuthError(CallbotError):
    """A missing, malformed, forged or expired token. Answered with 401."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    if len(text) > 8192:
        raise AuthError("token too long")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise AuthError("token is not base64url") from None


@dataclass(frozen=True)
class TokenClaims:
    username: str
    expires: float
    admin: bool = False


def mint_token(secret: str, username: str, *, ttl: float = 3600, admin: bool = False, now: float | None = None) -> str:
    now = time.time() if now is None else now
    header = {"alg": "HS256", "typ": "JWT"}
    claims: dict[str, Any] = {"sub": username, "iat": int(now), "exp": int(now + ttl)}
    if admin:
        claims["admin"] = True
    signing_input = f"{_b64url(json.dumps(header, separators=(',', ':')).encode())}.{_b64url(json.dumps(claims, separators=(',', ':')).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def verify_token(secret: str, token: str, *, now: float | None = None, leeway: float = 5.0) -> TokenClaims:
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthError("malformed token")
    head_b64, body_b64, sig_b64 = parts
    expected = hmac.new(secret.encode(), f"{head_b64}.{body_b64}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _b64url_decode(sig_b64)):
        raise AuthError("bad signature")
    try:
        header = json.loads(_b64url_decode(head_b64))
        claims = json.loads(_b64url_decode(body_b64))
    except ValueError:
        raise AuthError("malformed token") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise AuthError("unsupported algorithm")
    if not isinstance(claims, dict):
        raise AuthError("malformed claims")
    sub, exp = claims.get("sub"), claims.get("exp")
    if not isinstance(sub, str) or not sub:
        raise AuthError("token names no user")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise AuthError("token has no expiry")
    now = time.time() if now is None else now
    if exp + leeway < now:
        raise AuthError("token expired")
    return TokenClaims(sub, float(exp), claims.get("admin") is True)
