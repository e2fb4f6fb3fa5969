""""Watch live" in the gallery, on a laptop and on a phone: a call in progress
offers it, the viewer plays the call, and closing the viewer ends the WHEP
session on the server.
"""

from __future__ import annotations

import asyncio
import contextlib

from playwright.async_api import expect

from tests.support.browser import SLOW, assert_no_overflow, log_in, screenshot, wait_video_playing
from tests.support.caller import Caller
from tests.support.server import Client, running_server, test_config
from tests.support.wait import eventually
from webapp.keys import VIEWERS



async def _drain(client: Client) -> None:
    while True:
        await client.ws.receive()

async def test_watch_a_call_in_progress(open_page, size, tmp_path):
    async with running_server(test_config(tmp_path)) as srv:
        page = await open_page(srv.url, size=size)
        await log_in(page, f"max-{size}")
        await page.click("#tab-gallery")

        client = await Client.connect(srv.ws_url)
        caller = None
        reading = None
        try:
            await client.login(f"ned-{size}")
            caller = Caller(client)
            await caller.call()
            # Keep reading its socket: aiohttp answers the server's pings only
            # while someone receives (else the server drops it after 1.5 beats).
            reading = asyncio.ensure_future(_drain(client))
            live = page.locator('.call-card[data-status="in-progress"]')
            await expect(live).to_have_count(1, timeout=SLOW)
            await live.locator("[data-action=watch-live]").click()
            viewer = page.locator("#viewer")
            await expect(viewer).to_be_visible()
            await wait_video_playing(page, "#viewer video.live", frames=10)
            await expect(viewer.locator("[role=status]")).to_have_text("Live.")
            assert len(srv.app[VIEWERS].viewers) == 1
            await assert_no_overflow(page, "watching live")
            await screenshot(page, f"66-watch-live-{size}")

            # Closing the viewer ends the WHEP session (DELETE).
            await page.click("#viewer-close")
            await eventually(lambda: not srv.app[VIEWERS].viewers, SLOW / 1000)
        finally:
            if reading is not None:
                reading.cancel()
            if caller is not None:
                # Its signaling may already be gone (the call then ends anyway).
                with contextlib.suppress(ConnectionError):
                    await caller.hangup()
            await client.close()
        # A finished call offers no live view.
        await expect(page.locator(".call-card").first).to_have_attribute("data-status", "complete", timeout=SLOW)
        await expect(page.locator("[data-action=watch-live]")).to_have_count(0)
