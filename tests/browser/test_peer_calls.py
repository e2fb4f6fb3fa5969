"""Two pages call each other through the signaling and exchange photos over
their data channel."""

from __future__ import annotations

import hashlib
import re

from playwright.async_api import expect

from webapp.keys import CONFIG
from tests.support.browser import SLOW, log_in, screenshot, wait_video_playing
from tests.support.wait import eventually

#: The sender's status once the peer confirmed (with a server copy or not).
_DELIVERED = re.compile(r"^(delivered|saved|copy-failed)$")


async def _connected_pair(open_page, caller_name: str, callee_name: str):
    caller = await open_page()
    await log_in(caller, caller_name)
    callee = await open_page()
    await log_in(callee, callee_name)
    await caller.click(f'#people li[data-username="{callee_name}"] button')
    await expect(callee.locator("#incoming")).to_be_visible()
    await callee.click("#accept-button")
    for page in (caller, callee):
        await expect(page.locator("#call-state")).to_have_attribute("data-state", "connected", timeout=SLOW)
        await expect(page.locator("#snapshot-button")).to_be_enabled()
    return caller, callee


async def _send_snapshot(sender, receiver) -> str:
    """Sends a snapshot; returns its sha256 once the receiver shows it."""
    before = await receiver.locator("#call-photos li.photo-received").count()
    await sender.click("#snapshot-button")
    sent = sender.locator("#call-photos li.photo-sent").first
    await expect(sender.locator("#photo-status")).to_have_attribute(
        "data-state", _DELIVERED, timeout=SLOW
    )
    sha256 = await sent.get_attribute("data-sha256")
    received = receiver.locator("#call-photos li.photo-received")
    await expect(received).to_have_count(before + 1)
    await expect(received.first).to_have_attribute("data-sha256", sha256)
    # The image decodes on the receiver's page.
    await receiver.wait_for_function(
        "() => { const i = document.querySelector('#call-photos li.photo-received img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    return sha256


async def test_two_pages_call_and_exchange_photos(open_page):
    jack, kate = await _connected_pair(open_page, "jack", "kate")
    await wait_video_playing(jack, "#remote-video")
    await wait_video_playing(kate, "#remote-video")

    await _send_snapshot(jack, kate)
    await expect(jack.locator("#photo-message")).to_contain_text("Delivered to kate")
    await _send_snapshot(kate, jack)  # and the other way, on the same channel
    await screenshot(jack, "10-peer-call-sender")
    await screenshot(kate, "11-peer-call-receiver")

    await kate.click("#hangup-button")
    await expect(kate.locator("#call-state")).to_have_attribute("data-state", "ended")
    await expect(jack.locator("#call-state")).to_have_attribute("data-state", "ended")
    await expect(jack.locator("#call-message")).to_have_text("kate hung up.")
    await screenshot(jack, "12-peer-call-ended")


async def test_peer_photo_copy_is_kept_on_server(open_page, server):
    leo, mia = await _connected_pair(open_page, "leo", "mia")
    await _send_snapshot(leo, mia)
    await expect(leo.locator("#photo-status")).to_have_attribute("data-state", "saved", timeout=SLOW)
    await expect(leo.locator("#photo-message")).to_contain_text("copy saved on the server")
    sha256 = await leo.locator("#call-photos li.photo-sent").first.get_attribute("data-sha256")

    def stored():
        root = server.app[CONFIG].data_dir
        return [p for p in root.rglob("*") if p.is_file() and p.suffix in (".jpg", ".jpeg")
                and hashlib.sha256(p.read_bytes()).hexdigest() == sha256]

    assert await eventually(stored, SLOW / 1000)
