"""Issue 14 #6, #12 and identity providers: tokens against a real server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from pathlib import Path

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from webapp.auth import mint_token
from webapp.config import SecurityConfig
from tests.support.server import running_server, test_config

SECRET = "test-secret-0123456789-0123456789"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(header: dict | str, payload: dict | str, secret: str = SECRET) -> str:
    """A token signed correctly, whatever its claims say (raw JSON allowed)."""
    h = header if isinstance(header, str) else json.dumps(header)
    p = payload if isinstance(payload, str) else json.dumps(payload)
    signing_input = f"{b64(h.encode())}.{b64(p.encode())}"
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(sig)}"


async def status(url: str, token: str | None = None, **kwargs) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=headers, **kwargs) as r:
            return r.status


def make_call(data_dir: Path, call_id: str, caller: str, ended: float | None = None) -> Path:
    directory = data_dir / "calls" / call_id
    directory.mkdir(parents=True)
    meta = {"caller": caller, "bot": "bot", "status": "complete"}
    if ended is not None:
        meta["ended_at"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ended))
    (directory / "meta.json").write_text(json.dumps(meta))
    (directory / "frame-000001.jpg").write_bytes(b"\xff\xd8\xff frame")
    return directory


CALL_ID = "20261206T050000Z-0123abcd"


async def test_lax_tokens_are_refused_with_401(tmp_path):
    """exp of NaN, 1e400 or 10**400 (the old code: never expires, or HTTP
    500), and malleable encodings of a valid token."""
    config = test_config(tmp_path, security=SecurityConfig(auth_secret=SECRET))
    async with running_server(config) as srv:
        url = srv.url + "/api/calls"
        header = {"alg": "HS256", "typ": "JWT"}
        good = hs256(header, {"sub": "alice", "exp": int(time.time()) + 60})
        assert await status(url, good) == 200
        for exp in ("NaN", "1e400", "Infinity", "1" + "0" * 400, '"2099-01-01"', "true", "253402300800"):
            token = hs256(header, '{"sub":"alice","exp":%s}' % exp)
            assert await status(url, token) == 401, exp
        head, body, sig = good.split(".")
        raw_sig = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
        std_sig = base64.b64encode(raw_sig).decode().rstrip("=")  # +/ instead of -_
        variants = [
            f"{head}.{body}.{sig}=",  # padding
            f"{head}.{body}.{std_sig}" if std_sig != sig else f"{head}.{body}.{sig}+",
            f"{head}.{body}.{sig}AA",  # trailing bytes
            f"{head}=.{body}.{sig}",
            f"{head}.{body}.{sig[:-1]}{chr(ord(sig[-1]) ^ 1)}",  # other spare bits
            f"{b64(json.dumps({'alg': 'none'}).encode())}.{body}.",
        ]
        for token in variants:
            assert await status(url, token) == 401, token
        assert await status(url + f"?token={good}") == 200


def _keys() -> dict[str, tuple[str, object, dict]]:
    """alg -> (kid, private key, public JWK)."""
    out = {}
    for alg, private in (
        ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ES256", ec.generate_private_key(ec.SECP256R1())),
        ("EdDSA", ed25519.Ed25519PrivateKey.generate()),
    ):
        algorithm = jwt.get_algorithm_by_name(alg)
        public = json.loads(algorithm.to_jwk(private.public_key()))
        kid = f"{alg.lower()}-1"
        public.update(kid=kid, use="sig")
        out[alg] = (kid, private, public)
    return out


def idp_token(alg: str, kid: str, private: object, sub: str = "alice", **claims) -> str:
    payload = {"sub": sub, "exp": int(time.time()) + 60, "iss": "https://idp.example", "aud": "callbot", **claims}
    return jwt.encode(payload, private, algorithm=alg, headers={"kid": kid})


async def test_identity_provider_keys_from_a_jwks_file(tmp_path):
    keys = _keys()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public for _, _, public in keys.values()]}))
    config = test_config(tmp_path, security=SecurityConfig(
        auth_jwks=str(jwks), auth_issuer="https://idp.example", auth_audience="callbot",
    ))
    async with running_server(config) as srv:
        url = srv.url + "/api/calls"
        for alg, (kid, private, _) in keys.items():
            assert await status(url, idp_token(alg, kid, private)) == 200, alg
        kid, private, public = keys["RS256"]
        assert await status(url, idp_token("RS256", kid, private, iss="https://other.example")) == 401
        assert await status(url, idp_token("RS256", kid, private, aud="someone-else")) == 401
        # RS256/HS256 confusion: the public key as an HMAC secret.
        from cryptography.hazmat.primitives import serialization
        pem_text = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        confused = hs256({"alg": "HS256", "kid": kid}, {"sub": "alice", "exp": int(time.time()) + 60,
                                                         "iss": "https://idp.example", "aud": "callbot"},
                         secret=pem_text.decode())
        assert await status(url, confused) == 401
        # A key of one kind cannot sign for another algorithm's kid.
        ec_kid, ec_private, _ = keys["ES256"]
        assert await status(url, idp_token("ES256", kid, ec_private)) == 401

        # Key rotation: an unknown kid makes the server read the JWKS again.
        from webapp.keys import VERIFIER
        verifier = srv.app[VERIFIER]
        loads = verifier.loads
        new_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        new_public = json.loads(jwt.get_algorithm_by_name("RS256").to_jwk(new_private.public_key()))
        new_public["kid"] = "rs256-2"
        jwks.write_text(json.dumps({"keys": [new_public]}))
        verifier._loaded_at = None  # the minute since start-up has passed
        assert await status(url, idp_token("RS256", "rs256-2", new_private)) == 200
        assert verifier.loads == loads + 1
        # Unknown kids do not make it fetch again within a minute.
        for i in range(5):
            assert await status(url, idp_token("RS256", f"nope-{i}", new_private)) == 401
        assert verifier.loads == loads + 1


async def test_identity_provider_keys_from_a_jwks_url(tmp_path):
    keys = _keys()
    kid, private, public = keys["ES256"]
    fetched = []

    async def serve_jwks(request: web.Request) -> web.Response:
        fetched.append(request.path)
        return web.json_response({"keys": [public]})

    idp = web.Application()
    idp.router.add_get("/jwks.json", serve_jwks)
    runner = web.AppRunner(idp)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    idp_port = runner.addresses[0][1]
    try:
        config = test_config(tmp_path, security=SecurityConfig(auth_jwks=f"http://127.0.0.1:{idp_port}/jwks.json",
                                                               auth_audience="callbot"))
        async with running_server(config) as srv:
            assert await status(srv.url + "/api/calls", idp_token("ES256", kid, private)) == 200
            assert await status(srv.url + "/api/calls", mint_token("not-configured-secret-0123456789-0123456789", "alice")) == 401
        assert fetched == ["/jwks.json"]
    finally:
        await runner.cleanup()


async def test_tokens_do_not_reach_the_access_log(tmp_path, caplog):
    config = test_config(tmp_path, security=SecurityConfig(auth_secret=SECRET))
    token = mint_token(SECRET, "alice")
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        async with running_server(config) as srv:
            assert await status(srv.url + f"/api/calls?token={token}") == 200
            async with aiohttp.ClientSession() as http:
                ws = await http.ws_connect(srv.ws_url + f"?token={token}")
                await ws.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any("/api/calls?token=[redacted]" in line for line in lines), lines
    assert any("/ws?token=[redacted]" in line for line in lines), lines
    assert not any(token in r.getMessage() or token.split(".")[2] in r.getMessage() for r in caplog.records)


async def test_media_urls_are_signed_for_one_file_and_expire(tmp_path):
    config = test_config(tmp_path, security=SecurityConfig(auth_secret=SECRET, media_url_ttl=60))
    make_call(config.data_dir, CALL_ID, "alice")
    (config.data_dir / "calls" / CALL_ID / "frame-000002.jpg").write_bytes(b"\xff\xd8\xff two")
    async with running_server(config) as srv, aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {mint_token(SECRET, 'alice')}"}
        async with http.get(srv.url + "/api/calls", headers=headers) as r:
            (call,) = (await r.json())["calls"]
        url = call["frames"][0]["url"]
        assert "token" not in url and "sig=" in url and "exp=" in url
        async with http.get(srv.url + url) as r:  # no token: the signature is enough
            assert r.status == 200 and await r.read() == b"\xff\xd8\xff frame"
        other = url.replace("frame-000001.jpg", "frame-000002.jpg")
        assert await status(srv.url + other) == 401  # signed for another file
        path, query = url.split("?")
        params = dict(p.split("=", 1) for p in query.split("&"))
        assert await status(srv.url + f"{path}?exp={params['exp']}&sig={params['sig'][:-2]}AA") == 401
        expired = int(time.time()) - 1
        from webapp.access import media_signature
        from webapp.keys import MEDIA_KEY
        sig = media_signature(srv.app[MEDIA_KEY], CALL_ID, "frame-000001.jpg", expired)
        assert await status(srv.url + f"{path}?exp={expired}&sig={sig}") == 401
        assert await status(srv.url + path) == 401


def test_mint_token_command_makes_tokens_pyjwt_accepts():
    token = mint_token(SECRET, "alice", ttl=60, admin=True)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice" and claims["admin"] is True


@pytest.mark.parametrize("algorithms", [("none",), ("RS256",)])
def test_algorithms_come_from_the_configuration(algorithms):
    from webapp.auth import TokenVerifier

    with pytest.raises(ValueError):
        TokenVerifier(secret=SECRET, algorithms=algorithms)
