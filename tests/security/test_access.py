"""Access rules with real clients: tokens, origins, rate and resource limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import asyncio
import time

import aiohttp
import pytest

from webapp.config import SecurityConfig
from peer.ice import turn_credentials
from webapp.auth import AuthError, mint_token, verify_token
from webapp.keys import BOT
from tests.support.server import Client, running_server, test_config
from tests.support.caller import Caller

SECRET = "test-secret-0123456789-0123456789"


def secured(tmp_path, **security):
    return test_config(tmp_path, security=SecurityConfig(**security))


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def upgrade_status(url: str, **kwargs) -> int:
    async with aiohttp.ClientSession() as http:
        try:
            ws = await http.ws_connect(url, **kwargs)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        await ws.close()
        return 101


async def test_websocket_needs_a_valid_token(tmp_path):
    async with running_server(secured(tmp_path, auth_secret=SECRET)) as srv:
        assert await upgrade_status(srv.ws_url) == 401
        expired = mint_token(SECRET, "alice", ttl=-60)
        assert await upgrade_status(srv.ws_url + f"?token={expired}") == 401
        forged = mint_token("another-secret-0123456789-0123456789", "alice")
        assert await upgrade_status(srv.ws_url + f"?token={forged}") == 401
        head, body, sig = mint_token(SECRET, "alice").split(".")
        tampered = f"{head}.{b64({'sub': 'admin', 'exp': time.time() + 60, 'admin': True})}.{sig}"
        assert await upgrade_status(srv.ws_url + f"?token={tampered}") == 401
        none_alg = f"{b64({'alg': 'none'})}.{b64({'sub': 'alice', 'exp': time.time() + 60})}."
        assert await upgrade_status(srv.ws_url + f"?token={none_alg}") == 401
        async with aiohttp.ClientSession() as http:
            async with http.get(srv.ws_url.replace("ws://", "http://")) as r:
                assert r.status == 401 and await r.text() == '{"error":"unauthorized"}'

        token = mint_token(SECRET, "alice")
        alice = await Client.connect(srv.ws_url, headers={"Authorization": f"Bearer {token}"})
        r = await alice.request({"type": "login", "username": "mallory"}, "login")
        assert r["success"] is False and r["error"] == "not-authorized"
        await alice.login("alice")
        bob = await Client.connect(srv.ws_url + f"?token={mint_token(SECRET, 'bob')}")
        await bob.login("bob")
        for c in (alice, bob):
            await c.close()


def test_token_round_trip_and_rejections():
    token = mint_token(SECRET, "alice", ttl=60, admin=True, now=1000)
    claims = verify_token(SECRET, token, now=1030)
    assert claims.username == "alice" and claims.admin
    with pytest.raises(AuthError, match="expired"):
        verify_token(SECRET, token, now=1100)
    for junk in ("", "a.b", "a.b.c.d", "!!!.???.***", "x" * 10000):
        with pytest.raises(AuthError):
            verify_token(SECRET, junk)


async def test_wrong_origin_is_refused(tmp_path):
    async with running_server(test_config(tmp_path)) as srv:
        assert await upgrade_status(srv.ws_url, origin="http://evil.example") == 403
        assert await upgrade_status(srv.ws_url, origin=srv.url) == 101
        assert await upgrade_status(srv.ws_url) == 101  # no Origin: not a browser
    async with running_server(test_config(tmp_path, security=SecurityConfig(allowed_origins=("https://app.example",)))) as srv:
        assert await upgrade_status(srv.ws_url, origin="https://app.example") == 101
        assert await upgrade_status(srv.ws_url, origin=srv.url) == 403


async def test_rate_limit_answers_rate_limited_and_recovers(tmp_path):
    async with running_server(secured(tmp_path, rate_limit=5, rate_burst=5)) as srv:
        alice = await Client.connect(srv.ws_url)
        await alice.login("alice")  # 1 token
        for _ in range(10):
            await alice.send({"type": "presence"})
        replies = [await alice.recv() for _ in range(10)]
        codes = [r.get("code") for r in replies if r["type"] == "error"]
        assert codes and set(codes) == {"rate-limited"}
        assert sum(1 for r in replies if r["type"] == "presence" and "users" in r) == 4
        # tokens come back with time: once the bucket refills, messages are served
        async def eventually() -> None:
            while True:
                await asyncio.sleep(0.25)  # the thing under test is the passing of time
                await alice.send({"type": "presence"})
                if (await alice.recv()).get("users"):
                    return
        await asyncio.wait_for(eventually(), 5)
        await alice.close()


async def test_connections_per_address(tmp_path):
    async with running_server(secured(tmp_path, max_connections_per_address=2)) as srv:
        a = await Client.connect(srv.ws_url)
        b = await Client.connect(srv.ws_url)
        assert await upgrade_status(srv.ws_url) == 429
        await a.close()
        c = await Client.connect(srv.ws_url)
        for x in (b, c):
            await x.close()


async def test_disk_floor_refuses_new_calls(tmp_path):
    async with running_server(secured(tmp_path, min_free_bytes=10**18)) as srv:
        alice = await Client.connect(srv.ws_url)
        await alice.login("alice")
        caller = Caller(alice)
        await caller.pc.setLocalDescription(await caller.pc.createOffer())
        await alice.send({"type": "offer", "otherUsername": "bot", "offer": {"type": "offer", "sdp": caller.pc.localDescription.sdp}})
        err = await alice.recv_type("error")
        assert err["code"] == "disk-full" and err["username"] == "bot"
        calls = tmp_path / "data" / "calls"
        assert not calls.exists() or not any(calls.iterdir())
        await caller.pc.close()
        await alice.close()


async def test_turn_credentials_match_coturn_hmac(tmp_path):
    config = secured(tmp_path, turn_urls=("turn:turn.example:3478",), turn_secret="coturn-secret", turn_ttl=600,
                     allow_open_turn=True)
    async with running_server(config) as srv:
        alice = await Client.connect(srv.ws_url)
        reply = await alice.login("alice")
        (turn,) = reply["iceServers"]
        assert turn["urls"] == ["turn:turn.example:3478"]
        expiry, user = turn["username"].split(":")
        assert user == "alice" and 0 < int(expiry) - time.time() <= 600
        expected = base64.b64encode(hmac.new(b"coturn-secret", turn["username"].encode(), hashlib.sha1).digest()).decode()
        assert turn["credential"] == expected
        await alice.close()
    username, password = turn_credentials("s", ttl=10, now=100)
    assert username == "110"
    assert password == base64.b64encode(hmac.new(b"s", b"110", hashlib.sha1).digest()).decode()


async def test_another_users_call_is_refused(tmp_path):
    """Recordings, frames and photos are served to the caller and admins only."""
    config = secured(tmp_path, auth_secret=SECRET)
    async with running_server(config) as srv:
        alice = await Client.connect(srv.ws_url + f"?token={mint_token(SECRET, 'alice')}")
        await alice.login("alice")
        caller = Caller(alice)
        await caller.call()
        call = srv.app[BOT].calls["alice"]
        call_id = call.id
        await caller.hangup()
        await asyncio.wait_for(call.ended.wait(), 10)
        (tmp_path / "data" / "calls" / call_id / "probe.jpg").write_bytes(b"\xff\xd8\xff")
        async with aiohttp.ClientSession() as http:
            async def get(path: str, user: str | None, admin: bool = False) -> tuple[int, bytes]:
                headers = {"Authorization": f"Bearer {mint_token(SECRET, user, admin=admin)}"} if user else {}
                async with http.get(srv.url + path, headers=headers) as r:
                    return r.status, await r.read()

            assert (await get("/api/calls", None))[0] == 401
            status, body = await get("/api/calls", "mallory")
            assert status == 200 and json.loads(body)["calls"] == []
            assert (await get(f"/api/calls/{call_id}", "mallory"))[0] == 404
            assert (await get(f"/api/calls/{call_id}/files/probe.jpg", "mallory"))[0] == 404
            status, body = await get("/api/calls", "alice")
            assert [c["call_id"] for c in json.loads(body)["calls"]] == [call_id]
            assert await get(f"/api/calls/{call_id}/files/probe.jpg", "alice") == (200, b"\xff\xd8\xff")
            assert (await get(f"/api/calls/{call_id}/files/probe.jpg", "root", admin=True))[0] == 200
        await caller.pc.close()
        await alice.close()


async def test_calls_end_at_the_duration_limit(tmp_path):
    async with running_server(secured(tmp_path, max_call_seconds=1.0)) as srv:
        alice = await Client.connect(srv.ws_url)
        await alice.login("alice")
        caller = Caller(alice)
        await caller.call()
        call = srv.app[BOT].calls["alice"]
        assert await alice.recv_type("close", timeout=10) == {"type": "close", "username": "bot"}
        await asyncio.wait_for(call.ended.wait(), 10)
        assert call.manifest.end_reason == "max-duration"
        await caller.pc.close()
        await alice.close()
