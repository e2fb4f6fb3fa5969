"""``/api/connection-test``: the server side of the page's "Test my connection",
driven by a real aiortc peer (a browser's role) against a real server."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from peer import conntest
from tests.support.server import running_server, test_config
from tests.support.wait import eventually
from webapp.auth import mint_token
from webapp.config import SecurityConfig

pytestmark = pytest.mark.timeout(90)


class PageSide:
    """The page's side: a data channel, an offer with its candidates, echo checks."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channel = self.pc.createDataChannel("connection-test")
        self.opened = asyncio.Event()
        self.messages: asyncio.Queue = asyncio.Queue()
        self.channel.on("open", self.opened.set)
        self.channel.on("message", self.messages.put_nowait)

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())  # gathers: candidates inside
        return self.pc.localDescription.sdp

    async def start(self, http: aiohttp.ClientSession, url: str, **kwargs) -> str:
        async with http.post(f"{url}/api/connection-test", json={"sdp": await self.offer()}, **kwargs) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
        await self.pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "answer"))
        await asyncio.wait_for(self.opened.wait(), 15)
        return body["id"]

    async def echo(self, message) -> object:
        self.channel.send(message)
        return await asyncio.wait_for(self.messages.get(), 10)

    async def close(self) -> None:
        await self.pc.close()


async def _status(http, url, test_id, **kwargs):
    async with http.get(f"{url}/api/connection-test/{test_id}", **kwargs) as r:
        return r.status, await r.json()


async def test_a_test_connects_echoes_and_reports_its_path(server, tmp_path):
    async with aiohttp.ClientSession() as http:
        tester = PageSide()
        test_id = await tester.start(http, server.url)
        # Every message comes back verbatim: text as text, bytes as bytes.
        assert await tester.echo("ping 1") == "ping 1"
        assert await tester.echo(b"\x00\xffbinary") == b"\x00\xffbinary"
        assert await tester.echo("é" * 5000) == "é" * 5000

        async def measured():
            status, body = await _status(http, server.url, test_id)
            return body if status == 200 and body["selected"] and body["selected"]["rtt"] is not None else None

        body = await eventually(measured, 10)
        assert body["state"] == "connected"
        assert body["selected"]["local"] == "host" and body["selected"]["remote"] in ("host", "prflx")
        assert body["selected"]["protocol"] == "udp"
        assert 0 <= body["selected"]["rtt"] < 1

        async with http.delete(f"{server.url}/api/connection-test/{test_id}") as r:
            assert r.status == 200 and (await r.json())["state"] == "closed"
        status, body = await _status(http, server.url, test_id)
        assert (status, body["error"]) == (404, "no-such-test")
        await tester.close()
    # Nothing written to disk.
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


async def test_at_most_four_at_once_then_503_with_retry_after(server):
    async with aiohttp.ClientSession() as http:
        testers = [PageSide() for _ in range(conntest.MAX_TESTS)]
        ids = [await t.start(http, server.url) for t in testers]
        extra = PageSide()
        async with http.post(f"{server.url}/api/connection-test", json={"sdp": await extra.offer()}) as r:
            assert r.status == 503
            assert (await r.json())["error"] == "busy"
            assert 1 <= int(r.headers["Retry-After"]) <= conntest.LIFETIME
        # The running ones are untouched; ending one frees a slot.
        assert await testers[0].echo("still here") == "still here"
        async with http.delete(f"{server.url}/api/connection-test/{ids[0]}") as r:
            assert r.status == 200
        await extra.close()
        again = PageSide()
        await again.start(http, server.url)
        assert await again.echo("in") == "in"
        for t in [*testers, again]:
            await t.close()


async def test_a_test_ends_by_itself(server, monkeypatch):
    monkeypatch.setattr(conntest, "LIFETIME", 1.5)
    async with aiohttp.ClientSession() as http:
        tester = PageSide()
        test_id = await tester.start(http, server.url)

        async def gone():
            status, _ = await _status(http, server.url, test_id)
            return status == 404

        await eventually(gone, 10)
        # Its peer connection was closed, so the page's side sees it end too.
        await eventually(lambda: tester.pc.connectionState in ("closed", "failed") or tester.channel.readyState == "closed", 20)
        await tester.close()


@pytest.mark.parametrize("body,status,code", [
    (b"not json", 400, "bad-request"),
    (b'{"sdp": 5}', 400, "bad-request"),
    (b'["sdp"]', 400, "bad-request"),
    (b'{"sdp": "v=0 nonsense"}', 400, "bad-offer"),
    (b'{"sdp": "' + b"a" * 70000 + b'"}', 413, "too-large"),
])
async def test_bad_requests(server, body, status, code):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/api/connection-test", data=body,
                             headers={"Content-Type": "application/json"}) as r:
            assert r.status == status
            assert (await r.json())["error"] == code


async def test_an_offer_with_media_is_refused(server):
    from aiortc.mediastreams import AudioStreamTrack

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(AudioStreamTrack())
    pc.createDataChannel("x")
    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/api/connection-test", json={"sdp": pc.localDescription.sdp}) as r:
            assert r.status == 400
            body = await r.json()
    assert body["error"] == "bad-offer" and "data channel only" in body["message"]
    await pc.close()


async def test_same_auth_as_the_api_and_tests_are_private(tmp_path):
    secret = "s" * 32
    config = replace(test_config(tmp_path), security=SecurityConfig(auth_secret=secret))
    alice = {"Authorization": f"Bearer {mint_token(secret, 'alice')}"}
    bob = {"Authorization": f"Bearer {mint_token(secret, 'bob')}"}
    async with running_server(config) as srv, aiohttp.ClientSession() as http:
        tester = PageSide()
        async with http.post(f"{srv.url}/api/connection-test", json={"sdp": await tester.offer()}) as r:
            assert r.status == 401
        test_id = await tester.start(http, srv.url, headers=alice)
        assert (await _status(http, srv.url, test_id, headers=alice))[0] == 200
        assert (await _status(http, srv.url, test_id, headers=bob))[0] == 404
        async with http.delete(f"{srv.url}/api/connection-test/{test_id}", headers=bob) as r:
            assert r.status == 404
        assert await tester.echo(json.dumps({"still": "open"})) == json.dumps({"still": "open"})
        await tester.close()
