"""Firefox as a caller (issue 11): Debian's firefox-esr, headless, driven over
WebDriver BiDi (tests/support/firefox.py), in the loopback-only namespace
scripts/test runs in. Its WebRTC stack differs from Chromium's where it
matters to us (NSS DTLS, nICEr ICE with candidates trickled about a
millisecond after the offer and "" ending each m-section, usrsctp).

Twenty runs in a row (20 of 20 passed; the README's "Tests with real networks" section)::

    for i in $(seq 20); do scripts/test tests/net/test_firefox.py -q || break; done
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
from pathlib import Path

import pytest

from tests.support.browser import SLOW, launch_chromium, log_in, wait_video_playing
from tests.support.firefox import FIREFOX, FirefoxBiDi
from tests.support.wait import eventually
from webapp.keys import BOT

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

WAIT = SLOW / 1000  # seconds


@pytest.fixture
async def firefox():
    # Not skips: a browser test that cannot run fails and says why.
    if not Path(FIREFOX).exists():
        pytest.fail(f"no Firefox at {FIREFOX}: scripts/test installs Debian's firefox-esr", pytrace=False)
    if [name for _, name in socket.if_nameindex()] != ["lo"]:
        pytest.fail("Firefox tests run in a loopback-only network namespace (scripts/test)", pytrace=False)
    async with FirefoxBiDi() as ff:
        yield ff


async def _log_in(ff: FirefoxBiDi, url: str, username: str) -> str:
    ctx = await ff.new_context()
    await ff.navigate(ctx, url)
    await ff.fill(ctx, "#username", username)
    await ff.click(ctx, "#login-button")
    await ff.wait_for(ctx, f"document.querySelector('#me-name').textContent === {json.dumps(username)}", WAIT)
    return ctx


def _state_is(state: str) -> str:
    return f"document.querySelector('#call-state').dataset.state === {json.dumps(state)}"


async def test_firefox_calls_the_bot_sends_a_snapshot_and_hangs_up(firefox, server):
    ff = firefox
    ctx = await _log_in(ff, server.url, "fay")
    await ff.wait_for(ctx, "document.querySelector('#people li[data-username=\"bot\"] button')", WAIT)
    await ff.click(ctx, '#people li[data-username="bot"] button')
    await ff.wait_for(ctx, _state_is("connected"), WAIT)
    call = server.app[BOT].calls["fay"]
    await ff.wait_for(ctx, "!document.querySelector('#snapshot-button').disabled", WAIT)
    await ff.click(ctx, "#snapshot-button")
    await ff.wait_for(ctx, "document.querySelector('#photo-status').dataset.state === 'saved'", WAIT)
    sha256 = await ff.attribute(ctx, "#call-photos li.photo-sent", "data-sha256")
    # A second of media in the recording, then hang up.
    await eventually(lambda: call.media.recorder.status()["duration"] > 1.0, WAIT)
    await ff.click(ctx, "#hangup-button")
    await ff.wait_for(ctx, _state_is("ended"), WAIT)
    await asyncio.wait_for(call.ended.wait(), WAIT)

    meta = json.loads((call.directory.path / "meta.json").read_text())
    assert meta["end_reason"] == "caller-closed" and meta["caller"] == "fay"
    assert {t["kind"]: t["codec"] for t in meta["tracks"]} == {"video": "video/VP8", "audio": "audio/opus"}
    assert [p["sha256"] for p in meta["photos"]] == [sha256]
    photo = call.directory.path / meta["photos"][0]["file"]
    assert hashlib.sha256(photo.read_bytes()).hexdigest() == sha256
    assert meta["recording"]["state"] == "complete" and meta["recording"]["duration"] > 1.0
    # Firefox's trickled candidates reached the call: the bot paired with one.
    assert meta["quality"]["connect"]["local"] == "host"
    assert meta["errors"] == []


async def test_firefox_calls_chromium_through_the_signaling(firefox, server, tmp_path):
    from playwright.async_api import async_playwright, expect

    ff = firefox
    async with async_playwright() as pw:
        chromium = await launch_chromium(pw)
        try:
            page = await (await chromium.new_context()).new_page()
            page.set_default_timeout(SLOW)
            await page.goto(server.url)
            await log_in(page, "chro")
            ctx = await _log_in(ff, server.url, "fox")
            await ff.wait_for(ctx, "document.querySelector('#people li[data-username=\"chro\"] button')", WAIT)
            await ff.click(ctx, '#people li[data-username="chro"] button')
            await expect(page.locator("#incoming")).to_be_visible()
            await page.click("#accept-button")
            await expect(page.locator("#call-state")).to_have_attribute("data-state", "connected", timeout=SLOW)
            await ff.wait_for(ctx, _state_is("connected"), WAIT)
            # Video both ways: Firefox's VP8 decoded by Chromium and back.
            await wait_video_playing(page, "#remote-video")
            frames = await ff.video_frames(ctx, "#remote-video", 30, WAIT)
            assert frames["frames"] >= 30 and frames["width"] > 0
            # A snapshot over the data channel (usrsctp to Chromium's SCTP).
            await ff.wait_for(ctx, "!document.querySelector('#snapshot-button').disabled", WAIT)
            await ff.click(ctx, "#snapshot-button")
            received = page.locator("#call-photos li.photo-received")
            await expect(received).to_have_count(1)
            await ff.wait_for(ctx, "document.querySelector('#call-photos li.photo-sent')", WAIT)
            sent = await ff.attribute(ctx, "#call-photos li.photo-sent", "data-sha256")
            await expect(received.first).to_have_attribute("data-sha256", sent)
            # Firefox hangs up; Chromium hears it.
            await ff.click(ctx, "#hangup-button")
            await ff.wait_for(ctx, _state_is("ended"), WAIT)
            await expect(page.locator("#call-state")).to_have_attribute("data-state", "ended")
            await expect(page.locator("#call-message")).to_have_text("fox hung up.")
        finally:
            await chromium.close()
