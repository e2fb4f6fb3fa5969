"""Chromium publishes its camera with our WHIP client page, and plays a live
call with our WHEP client page (static/whip.html, static/whep.html)."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiortc.mediastreams import AudioStreamTrack

from tests.support.browser import screenshot, wait_video_playing
from tests.support.caller import PatternVideoTrack
from tests.support.media import CountFrames, inspect_recording
from tests.support.server import running_server, test_config
from tests.support.wait import eventually
from tests.support.whip import publisher
from webapp.auth import mint_token
from webapp.config import SecurityConfig
from webapp.keys import BOT, VIEWERS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SECRET = "browser-whip-secret-0123456789-0123456789"


async def test_chromium_publishes_its_camera(tmp_path, chromium):
    config = test_config(tmp_path, security=SecurityConfig(auth_secret=SECRET))
    async with running_server(config) as server:
        page = await chromium(f"{server.url}/static/whip.html?token={mint_token(SECRET, 'alice')}")
        await page.click("#publish")
        await page.wait_for_function("document.getElementById('state').textContent === 'Publishing.'")
        (resource,) = server.app[BOT].whip.values()
        session = resource.session
        count = CountFrames()
        session.media.taps["video"].subscribe(count)
        await count.wait_for(60, 20)
        await screenshot(page, "whip-publishing")
        await page.click("#stop")
        await page.wait_for_selector("body[data-stopped='true']")
        await asyncio.wait_for(session.ended.wait(), 10)
        assert not [m for m in page.console_messages if m.startswith(("error", "pageerror"))], page.console_messages

    manifest = json.loads(session.directory.manifest_path.read_text())
    assert manifest["source"] == "whip" and manifest["caller"] == "alice"
    assert manifest["status"] == "complete" and manifest["end_reason"] == "caller-closed"
    assert "Chrome" in manifest["publisher"]["user_agent"] and manifest["publisher"]["dtls"]["version"] == "DTLSv1.2"
    section = manifest["recording"]
    report = inspect_recording(session.directory.file(section["file"]), decode=False)
    assert report.codecs == {"video": "vp8", "audio": "opus"}
    assert report.duration is not None and report.duration >= 1.5 and report.first_video_keyframe
    recorded = {t["kind"]: t["frames"] for t in section["tracks"]}
    assert report.video_packets >= 45 and report.audio_packets >= 50
    assert (report.video_packets, report.audio_packets) == (recorded["video"], recorded["audio"])


async def test_chromium_watches_a_call_live(tmp_path, chromium, http):
    async with running_server(test_config(tmp_path)) as server:
        publishing = await publisher(http, [PatternVideoTrack(colour=(255, 0, 0)), AudioStreamTrack()])
        await publishing.offer(f"{server.url}/whip")
        (resource,) = server.app[BOT].whip.values()
        await eventually(lambda: resource.session.media.taps["video"].codec is not None)
        page = await chromium(f"{server.url}/static/whep.html?call={resource.call_id}")
        await page.click("#watch")
        await wait_video_playing(page, "#live")
        # What plays is the publisher's picture: red, at its size.
        colour = await page.evaluate("""() => {
            const v = document.getElementById('live');
            const c = document.createElement('canvas');
            c.width = v.videoWidth; c.height = v.videoHeight;
            const g = c.getContext('2d');
            g.drawImage(v, 0, 0);
            const d = g.getImageData(0, 0, c.width, c.height).data;
            let r = 0, gr = 0, b = 0;
            for (let i = 0; i < d.length; i += 4) { r += d[i]; gr += d[i + 1]; b += d[i + 2]; }
            const n = d.length / 4;
            return [c.width, c.height, r / n, gr / n, b / n];
        }""")
        width, height, *rgb = colour
        assert (width, height) == (320, 240)
        assert rgb[0] > 200 and rgb[1] < 60 and rgb[2] < 60, rgb
        await screenshot(page, "whep-watching")
        await page.click("#stop")
        await page.wait_for_function("document.getElementById('state').textContent === 'Stopped.'")
        await eventually(lambda: server.app[VIEWERS].viewers == {})
        assert await publishing.delete() == 200
        await publishing.close()
