"""Issue 14 #5, #7, #14 and privacy by default: who can reach what, through
which Host and proxy, and what a refusal leaves on disk. Real servers."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from peer.api import Bot, RefuseCall
from webapp.auth import mint_token
from webapp.config import SecurityConfig
from tests.support.caller import Caller, CallRefused
from tests.support.photos import make_jpeg
from tests.support.process import ROOT
from tests.support.server import Client, running_server, test_config
from tests.support.wait import eventually

SECRET = "test-secret-0123456789-0123456789"
CALL_ID = "20261206T050000Z-0123abcd"


def make_call(data_dir: Path, call_id: str, caller: str, ended: float | None = None) -> Path:
    directory = data_dir / "calls" / call_id
    directory.mkdir(parents=True)
    meta = {"caller": caller, "bot": "bot", "status": "complete"}
    if ended is not None:
        meta["ended_at"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ended))
    (directory / "meta.json").write_text(json.dumps(meta))
    (directory / "frame-000001.jpg").write_bytes(b"\xff\xd8\xff frame")
    return directory


async def get(url: str, **kwargs) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, **kwargs) as r:
            return r.status, (await r.read()).decode(errors="replace")


async def upgrade(url: str, **kwargs) -> int:
    async with aiohttp.ClientSession() as http:
        try:
            ws = await http.ws_connect(url, **kwargs)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        await ws.close()
        return 101


# -- #7 DNS rebinding --------------------------------------------------------------------


async def test_dns_rebinding_host_names_are_refused(tmp_path):
    """A page on rebind.evil.example whose name now resolves to 127.0.0.1:
    same origin as far as the browser knows (the old code let it in)."""
    config = test_config(tmp_path)
    make_call(config.data_dir, CALL_ID, "alice")
    async with running_server(config) as srv:
        evil = {"Host": f"rebind.evil.example:{srv.port}"}
        status, body = await get(srv.url + "/api/calls", headers=evil)
        assert (status, json.loads(body)) == (421, {"error": "host-not-allowed"})
        assert (await get(srv.url + f"/api/calls/{CALL_ID}/files/frame-000001.jpg", headers=evil))[0] == 421
        assert await upgrade(srv.ws_url, headers=evil, origin=f"http://rebind.evil.example:{srv.port}") == 421
        # Addresses and localhost names are this machine.
        for host in (f"127.0.0.1:{srv.port}", f"localhost:{srv.port}", "[::1]", "app.localhost"):
            assert (await get(srv.url + "/api/calls", headers={"Host": host}))[0] == 200, host
        assert await upgrade(srv.ws_url, origin=srv.url) == 101
    config = test_config(tmp_path, security=SecurityConfig(allowed_hosts=("call.example.org",)))
    async with running_server(config) as srv:
        assert (await get(srv.url + "/healthz", headers={"Host": "call.example.org"}))[0] == 200
        assert (await get(srv.url + "/healthz", headers={"Host": "rebind.evil.example"}))[0] == 421


# -- #14 behind a TLS proxy ----------------------------------------------------------------


async def test_trusted_proxy_headers_are_believed_from_it_only(tmp_path, caplog):
    """Behind nginx terminating TLS, the browser's Origin is https://NAME while
    the server sees http from 127.0.0.1: the old code answered 403."""
    forwarded = {"Host": "call.example.org", "X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
    origin = "https://call.example.org"
    config = test_config(tmp_path, security=SecurityConfig(trusted_proxies=("127.0.0.1",),
                                                            allowed_hosts=("call.example.org",)))
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        async with running_server(config) as srv:
            assert await upgrade(srv.ws_url, headers=forwarded, origin=origin) == 101
            # The forwarded client is not local: the calls are not its to read.
            assert (await get(srv.url + "/api/calls", headers=forwarded))[0] == 403
    # The access log names the client the proxy forwarded for (the old code
    # logged only the proxy's address), and the proxy.
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any(line.startswith('198.51.100.7 via 127.0.0.1 "GET /api/calls') for line in lines), lines
    caplog.clear()
    config = test_config(tmp_path, security=SecurityConfig(allowed_hosts=("call.example.org",)))
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        async with running_server(config) as srv:  # the same headers from a proxy nobody vouched for
            assert await upgrade(srv.ws_url, headers=forwarded, origin=origin) == 403
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert lines and not any("198.51.100.7" in line for line in lines), lines


# -- privacy by default ---------------------------------------------------------------------


async def test_without_token_auth_calls_are_for_local_clients_only(tmp_path, caplog):
    config = test_config(tmp_path, security=SecurityConfig(trusted_proxies=("127.0.0.1",)))
    make_call(config.data_dir, CALL_ID, "alice")
    file_path = f"/api/calls/{CALL_ID}/files/frame-000001.jpg"
    remote = {"X-Forwarded-For": "192.0.2.7"}
    async with running_server(config) as srv:
        assert (await get(srv.url + "/api/calls"))[0] == 200  # loopback
        for path in ("/api/calls", f"/api/calls/{CALL_ID}", file_path):
            status, body = await get(srv.url + path, headers=remote)
            assert (status, json.loads(body)) == (403, {"error": "local-only"}), path
        assert (await get(srv.url + "/metrics", headers=remote))[0] == 403
        assert (await get(srv.url + "/healthz", headers=remote))[0] == 200  # not personal data
    # A local proxy the server was not told about speaks for someone else.
    async with running_server(test_config(tmp_path)) as srv:
        assert (await get(srv.url + "/api/calls", headers=remote))[0] == 403
    with caplog.at_level(logging.WARNING, logger="webapp.app"):
        config = test_config(tmp_path, security=SecurityConfig(trusted_proxies=("127.0.0.1",),
                                                                trusted_networks=("192.0.2.0/24",)))
        async with running_server(config) as srv:
            assert (await get(srv.url + file_path, headers=remote))[0] == 200
            assert (await get(srv.url + "/api/calls", headers={"X-Forwarded-For": "198.51.100.1"}))[0] == 403
    assert any("may read and delete every call" in r.getMessage() for r in caplog.records)


async def test_delete_a_call(tmp_path, caplog):
    config = test_config(tmp_path, security=SecurityConfig(auth_secret=SECRET))
    directory = make_call(config.data_dir, CALL_ID, "alice")
    async with running_server(config) as srv, aiohttp.ClientSession() as http:
        def auth(user: str, admin: bool = False) -> dict:
            return {"Authorization": f"Bearer {mint_token(SECRET, user, admin=admin)}"}

        async with http.delete(srv.url + f"/api/calls/{CALL_ID}", headers=auth("mallory")) as r:
            assert r.status == 404 and directory.exists()
        with caplog.at_level(logging.INFO, logger="webapp.gallery"):
            async with http.delete(srv.url + f"/api/calls/{CALL_ID}", headers=auth("alice")) as r:
                assert r.status == 200 and await r.json() == {"deleted": CALL_ID}
        assert not directory.exists()
        assert any(f"call {CALL_ID} deleted by alice" in r.getMessage() for r in caplog.records)
        make_call(config.data_dir, CALL_ID, "alice")
        async with http.delete(srv.url + f"/api/calls/{CALL_ID}", headers=auth("root", admin=True)) as r:
            assert r.status == 200
        async with http.get(srv.url + "/api/calls", headers=auth("alice")) as r:
            assert (await r.json())["calls"] == []


async def test_a_call_in_progress_is_not_deleted(tmp_path):
    async with running_server(test_config(tmp_path)) as srv:
        alice = await Client.connect(srv.ws_url)
        await alice.login("alice")
        caller = Caller(alice)
        await caller.call()
        (call_id,) = [p.name for p in (tmp_path / "data" / "calls").iterdir()]
        async with aiohttp.ClientSession() as http:
            async with http.delete(srv.url + f"/api/calls/{call_id}") as r:
                assert r.status == 409
            await caller.hangup()
            from webapp.keys import BOT
            await eventually(lambda: not srv.app[BOT].calls)
            async with http.delete(srv.url + f"/api/calls/{call_id}") as r:
                assert r.status == 200
        assert not (tmp_path / "data" / "calls" / call_id).exists()
        await alice.close()


async def test_retention_deletes_old_calls(tmp_path):
    config = test_config(tmp_path, security=SecurityConfig(retention_days=7))
    old = make_call(config.data_dir, "20261120T050000Z-0123abcd", "alice", ended=time.time() - 8 * 86400)
    recent = make_call(config.data_dir, "20261205T050000Z-0123abcd", "alice", ended=time.time() - 6 * 86400)
    async with running_server(config):
        await eventually(lambda: not old.exists())
        assert recent.exists()


async def test_metrics_for_local_clients_and_admins(tmp_path):
    config = test_config(tmp_path, security=SecurityConfig(auth_secret=SECRET, trusted_proxies=("127.0.0.1",)))
    async with running_server(config) as srv:
        alice = await Client.connect(srv.ws_url + f"?token={mint_token(SECRET, 'alice')}")
        await alice.login("alice")
        caller = Caller(alice)
        await caller.call()
        status, text = await get(srv.url + "/metrics")
        assert status == 200
        assert "callbot_calls_active 1.0" in text and "callbot_signaling_connections 1.0" in text
        assert "callbot_call_setup_seconds_count" in text
        await caller.hangup()
        from webapp.keys import BOT
        await eventually(lambda: not srv.app[BOT].calls)
        _, text = await get(srv.url + "/metrics")
        assert 'callbot_calls_total{reason="caller-closed"}' in text
        remote = {"X-Forwarded-For": "192.0.2.7"}
        assert (await get(srv.url + "/metrics", headers=remote))[0] == 401
        assert (await get(srv.url + "/metrics", headers={**remote, "Authorization": f"Bearer {mint_token(SECRET, 'alice')}"}))[0] == 403
        admin = {**remote, "Authorization": f"Bearer {mint_token(SECRET, 'root', admin=True)}"}
        assert (await get(srv.url + "/metrics", headers=admin))[0] == 200
        await alice.close()


# -- #14 configuration traps -------------------------------------------------------------------


async def test_turn_secret_without_token_auth_is_refused_at_start(tmp_path):
    """Anyone could fetch TURN credentials from /api/rtc-config: an open relay."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "server.py"), "--port", "0", "--data-dir", str(tmp_path),
        "--turn-url", "turn:turn.example:3478", "--turn-secret", "s3cret",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert b"serving" not in line
        assert await asyncio.wait_for(proc.wait(), 20) == 2
        assert b"open relay" in await proc.stderr.read()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    with pytest.raises(ValueError, match="open relay"):
        SecurityConfig(turn_urls=("turn:x",), turn_secret="s")
    SecurityConfig(turn_urls=("turn:x",), turn_secret="s", allow_open_turn=True)  # said explicitly
    SecurityConfig(turn_urls=("turn:x",), turn_secret="s", auth_secret=SECRET)


async def test_uploads_need_the_uploaders_own_login(tmp_path):
    """Without token auth, ?user=alice attributed a photo to whoever was online."""
    config = test_config(tmp_path, security=SecurityConfig(trusted_proxies=("127.0.0.1",)))
    photo = make_jpeg(20_000)
    remote = {"X-Forwarded-For": "192.0.2.7", "Content-Type": "image/jpeg"}
    async with running_server(config) as srv, aiohttp.ClientSession() as http:
        alice, mallory = await Client.connect(srv.ws_url), await Client.connect(srv.ws_url)
        alice_token = (await alice.login("alice"))["uploadToken"]
        mallory_token = (await mallory.login("mallory"))["uploadToken"]

        async def post(headers: dict) -> tuple[int, dict]:
            async with http.post(srv.url + "/api/photos", params={"user": "alice", "peer": "bob"},
                                 data=photo, headers=headers) as r:
                return r.status, await r.json()

        status, reply = await post(remote)
        assert (status, reply["error"]) == (403, "upload-token-required")
        status, reply = await post({**remote, "X-Upload-Token": mallory_token})
        assert (status, reply["error"]) == (403, "bad-upload-token")
        assert not (tmp_path / "data" / "calls").exists() or not any((tmp_path / "data" / "calls").iterdir())
        status, reply = await post({**remote, "X-Upload-Token": alice_token})
        assert status == 200 and reply["type"] == "photo-saved"
        # The old form still works where it is safe: from this machine.
        status, reply = await post({"Content-Type": "image/jpeg"})
        assert status == 200
        await alice.close()
        await mallory.close()


# -- #5 directories only for accepted work; the free-space floor -------------------------------


class RefusingBot(Bot):
    async def on_call(self, call) -> None:
        raise RefuseCall("not today", code="closed")


async def test_refused_offers_and_uploads_leave_no_directories(tmp_path):
    async with running_server(test_config(tmp_path), RefusingBot()) as srv:
        alice = await Client.connect(srv.ws_url)
        login = await alice.login("alice")
        for _ in range(5):
            caller = Caller(alice, tracks=[])
            caller.pc.createDataChannel("chat")
            with pytest.raises(CallRefused):
                await caller.call()
            await caller.pc.close()
        await alice.send({"type": "offer", "otherUsername": "bot", "offer": {"type": "offer", "sdp": "v=0\r\n"}})
        assert (await alice.recv_type("error"))["code"] == "bad-offer"
        async with aiohttp.ClientSession() as http:
            for i in range(50):  # refused uploads for ever new peers (the old code: a directory each)
                async with http.post(srv.url + "/api/photos", params={"user": "alice", "peer": f"p{i}"},
                                     data=b"not an image", headers={"Content-Type": "image/jpeg",
                                                                    "X-Upload-Token": login.get("uploadToken", "")}) as r:
                    assert r.status == 422
        calls = tmp_path / "data" / "calls"
        assert not calls.exists() or list(calls.iterdir()) == []
        assert not any((tmp_path / "data" / "uploads").iterdir())  # no spool files left
        await alice.close()


async def test_uploads_below_the_free_space_floor_are_refused(tmp_path):
    config = test_config(tmp_path, security=SecurityConfig(min_free_bytes=10**18))
    async with running_server(config) as srv, aiohttp.ClientSession() as http:
        alice = await Client.connect(srv.ws_url)
        login = await alice.login("alice")
        async with http.post(srv.url + "/api/photos", params={"user": "alice", "peer": "bob"},
                             data=make_jpeg(20_000), headers={"Content-Type": "image/jpeg",
                                                              "X-Upload-Token": login.get("uploadToken", "")}) as r:
            assert r.status == 507 and (await r.json())["error"] == "disk-full"
        calls = tmp_path / "data" / "calls"
        assert not calls.exists() or list(calls.iterdir()) == []
        await alice.close()
