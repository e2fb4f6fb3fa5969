"""Call quality in meta.json and in the gallery: the selected pair, protocol,
RTT at connect, then loss, bytes and bitrate at the end (real bot, real
aiortc caller on loopback)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.support.caller import Caller
from tests.support.wait import eventually
from webapp.keys import BOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


async def test_meta_json_and_the_gallery_say_how_the_call_went(server, connect):
    alice = await connect("alice")
    caller = Caller(alice)
    await caller.call()
    call = server.app[BOT].calls["alice"]
    meta_path = call.directory.path / "meta.json"

    def rtt_at_connect():
        quality = json.loads(meta_path.read_text()).get("quality") or {}
        connect = quality.get("connect") or {}
        return connect if connect.get("rtt_ms") is not None else None

    at_connect = await eventually(rtt_at_connect, 10)
    assert at_connect["local"] == "host" and at_connect["remote"] in ("host", "prflx")
    assert at_connect["protocol"] == "udp"
    assert 0 <= at_connect["rtt_ms"] < 500
    assert at_connect["local_address"].startswith("127.0.0.1:")

    # A second and a half of media recorded, then hang up.
    await eventually(lambda: call.media.recorder.status()["duration"] > 1.5, 15)
    await caller.hangup()
    await asyncio.wait_for(call.ended.wait(), 10)
    meta = json.loads(meta_path.read_text())
    end = meta["quality"]["end"]
    assert end["local"] == "host" and end["protocol"] == "udp"
    assert end["packets_received"] > 30 and end["packets_lost"] >= 0
    assert end["bytes_received"] > 10_000 and end["bitrate_in_kbps"] > 10
    assert end["seconds"] > 0.5

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/api/calls/{call.id}") as r:
            summary = await r.json()
    assert summary["quality"] == {
        "local": "host", "remote": end["remote"], "protocol": "udp", "rtt_ms": end["rtt_ms"],
        "packets_lost": end["packets_lost"], "bitrate_in_kbps": end["bitrate_in_kbps"],
    }
