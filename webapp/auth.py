"""Token auth: JSON Web Tokens (RFC 7519) verified with PyJWT.

With ``--auth-secret`` or ``--auth-jwks`` set, every WebSocket upgrade and API
request needs a token, in an ``Authorization: Bearer`` header or a ``token``
query parameter, naming the username it may log in as (``sub``) and its
expiry (``exp``). A token with ``"admin": true`` may read every call.

* ``--auth-secret S``: HS256 tokens signed with S, as minted by::

      python server.py mint-token alice --auth-secret S --ttl 3600

* ``--auth-jwks URL_OR_FILE``: tokens from an identity provider, signed with
  one of the keys of its JWK Set (RFC 7517 section 5): RS256, ES256, EdDSA.
  The key is picked by the token's ``kid``; an unknown ``kid`` makes us fetch
  the set again (the provider rotated its keys), at most once a minute.
* ``--auth-issuer``, ``--auth-audience``: ``iss`` and ``aud`` must match.
* ``--auth-algorithm``: the algorithms accepted. They come from the
  configuration only: the token's ``alg`` header must be one of them, an HS
  algorithm is only ever checked with the secret and any other only with a
  JWKS key of that algorithm's kind, so ``none`` or an RS256/HS256 confusion
  (a public key used as an HMAC secret) cannot get in.

Before PyJWT sees a token, its three parts must be canonical unpadded
base64url (RFC 7515 section 2: ``+``, ``/``, ``=``, spare bits or trailing
bytes make another string decode to the same bytes, so a signature would be
malleable), and ``exp`` must be a finite number within the year 9999 (PyJWT
accepts ``10**400``, which never expires).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet

from media.errors import CallbotError

logger = logging.getLogger(__name__)

__all__ = ["AuthError", "TokenClaims", "TokenVerifier", "mint_token", "verify_token"]

#: Longest token accepted, in characters.
MAX_TOKEN_CHARS = 8192
#: The last second of the year 9999: an ``exp`` past it is not a date.
MAX_EXP = 253402300799
#: Seconds between two fetches of the JWKS caused by unknown key ids.
JWKS_REFRESH_INTERVAL = 60.0
#: Clock skew allowed on exp/nbf/iat, seconds.
LEEWAY = 5.0

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_ASYMMETRIC_DEFAULT = ("RS256", "ES256", "EdDSA")


class AuthError(CallbotError):
    """A missing, malformed, forged or expired token. Answered with 401."""


@dataclass(frozen=True)
class TokenClaims:
    username: str
    expires: float
    admin: bool = False


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _check_canonical(token: str) -> None:
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthError("token too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthError("malformed token")
    for part in parts:
        if not _B64URL.fullmatch(part) or len(part) % 4 == 1:
            raise AuthError("token is not canonical base64url")
        decoded = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        if _b64url(decoded) != part:
            raise AuthError("token is not canonical base64url")


def _claims(payload: dict[str, Any]) -> TokenClaims:
    sub, exp = payload.get("sub"), payload.get("exp")
    if not isinstance(sub, str) or not sub:
        raise AuthError("token names no user")
    if (isinstance(exp, bool) or not isinstance(exp, (int, float))
            or (isinstance(exp, float) and not math.isfinite(exp)) or exp > MAX_EXP):
        raise AuthError("token has no valid expiry")
    return TokenClaims(sub, float(exp), payload.get("admin") is True)


def mint_token(secret: str, username: str, *, ttl: float = 3600, admin: bool = False, now: float | None = None,
               issuer: str | None = None, audience: str | None = None) -> str:
    """An HS256 token for ``username``, valid ``ttl`` seconds."""
    now = time.time() if now is None else now
    claims: dict[str, Any] = {"sub": username, "iat": int(now), "exp": int(now + ttl)}
    if admin:
        claims["admin"] = True
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_token(secret: str, token: str, *, now: float | None = None, leeway: float = LEEWAY) -> TokenClaims:
    """Check an HS256 token against ``secret`` (no issuer or audience)."""
    _check_canonical(token)
    options: dict[str, Any] = {"require": ["exp", "sub"]}
    try:
        if now is not None:
            # PyJWT reads the clock itself; check exp against ``now`` here.
            payload = jwt.decode(token, secret, algorithms=["HS256"], options={**options, "verify_exp": False})
            claims = _claims(payload)
            if claims.expires + leeway < now:
                raise AuthError("token expired")
            return claims
        payload = jwt.decode(token, secret, algorithms=["HS256"], options=options, leeway=leeway)
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired") from None
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError) as exc:
        raise AuthError(f"invalid token: {exc}") from None
    return _claims(payload)


class TokenVerifier:
    """Verifies tokens as the configuration says (see the module docstring)."""

    def __init__(
        self,
        *,
        secret: str | None = None,
        jwks: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        algorithms: tuple[str, ...] = (),
    ) -> None:
        if secret is None and jwks is None:
            raise ValueError("a verifier needs a secret or a JWKS")
        if not algorithms:
            algorithms = (("HS256",) if secret else ()) + (_ASYMMETRIC_DEFAULT if jwks else ())
        for alg in algorithms:
            if alg not in jwt.algorithms.get_default_algorithms() or alg == "none":
                raise ValueError(f"unsupported token algorithm {alg!r}")
            if alg.startswith("HS") and secret is None:
                raise ValueError(f"{alg} needs --auth-secret")
            if not alg.startswith("HS") and jwks is None:
                raise ValueError(f"{alg} needs --auth-jwks")
        self.secret = secret
        self.jwks_source = jwks
        self.issuer = issuer
        self.audience = audience
        self.algorithms = tuple(algorithms)
        self._keys: dict[str | None, PyJWK] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()
        #: JWKS loads so far (for tests and the log).
        self.loads = 0

    async def start(self) -> None:
        """Load the JWKS once at start-up (a failure is logged; tokens then
        fail until a later refresh works)."""
        if self.jwks_source is not None:
            await self._refresh(force=True)

    async def verify(self, token: str) -> TokenClaims:
        _check_canonical(token)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token header: {exc}") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise AuthError(f"algorithm {alg!r} is not accepted")
        key: Any
        if alg.startswith("HS"):
            key = self.secret
        else:
            key = await self._key_for(header.get("kid"), alg)
        options: dict[str, Any] = {"require": ["exp", "sub"]}
        if self.issuer is not None:
            options["require"].append("iss")
        if self.audience is not None:
            options["require"].append("aud")
        try:
            payload = jwt.decode(
                token, key, algorithms=[alg], options=options, leeway=LEEWAY,
                issuer=self.issuer, audience=self.audience,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError) as exc:
            raise AuthError(f"invalid token: {exc}") from None
        return _claims(payload)

    # -- JWKS ----------------------------------------------------------------------

    async def _key_for(self, kid: Any, alg: str) -> PyJWK:
        if kid is not None and not isinstance(kid, str):
            raise AuthError("kid must be a string")
        key = self._pick(kid, alg)
        if key is None:
            # Unknown kid: the provider may have rotated its keys.
            await self._refresh(force=False)
            key = self._pick(kid, alg)
        if key is None:
            raise AuthError(f"no key {kid!r} for {alg}")
        return key

    def _pick(self, kid: str | None, alg: str) -> PyJWK | None:
        if kid is None:
            # Without a kid, only an unambiguous set will do.
            candidates = [k for k in self._keys.values() if _fits(k, alg)]
            return candidates[0] if len(candidates) == 1 else None
        key = self._keys.get(kid)
        return key if key is not None and _fits(key, alg) else None

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            now = time.monotonic()
            if not force and self._loaded_at is not None and now - self._loaded_at < JWKS_REFRESH_INTERVAL:
                return
            self._loaded_at = now
            try:
                document = await self._fetch()
                keyset = PyJWKSet.from_dict(document)
            except Exception as exc:  # the provider is down or sent junk: keep the old keys
                logger.warning("cannot load the JWKS %s: %s", self.jwks_source, exc)
                return
            self._keys = {k.key_id: k for k in keyset.keys}
            self.loads += 1
            logger.info("loaded %d key(s) from the JWKS %s", len(self._keys), self.jwks_source)

    async def _fetch(self) -> dict[str, Any]:
        source = self.jwks_source
        assert source is not None
        if source.startswith(("https://", "http://")):
            import aiohttp  # noqa: PLC0415

            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                async with http.get(source) as response:
                    response.raise_for_status()
                    body = await response.content.read(1 << 20)
            return json.loads(body)
        path = Path(source[7:] if source.startswith("file://") else source)
        return json.loads(await asyncio.to_thread(path.read_bytes))


def _fits(key: PyJWK, alg: str) -> bool:
    """Is ``key`` a key for ``alg`` (its JWK ``alg``, or the one its kty and crv imply)?"""
    return key.algorithm_name == alg and not alg.startswith("HS")
