"""A bot call end to end: snapshot saved by the bot, then the recording,
sampled frames and the photo on disk and in the gallery."""

from __future__ import annotations

import hashlib
import json

from playwright.async_api import expect

from webapp.keys import CONFIG
from tests.support.browser import SLOW, log_in, screenshot, wait_video_playing
from tests.support.wait import eventually

VIDEO_SUFFIXES = (".webm", ".mp4", ".mkv", ".ogv", ".mov")


def _finished_call(calls_dir):
    """The one call directory whose manifest says the call is over."""
    for meta_path in calls_dir.glob("*/meta.json"):
        meta = json.loads(meta_path.read_text())
        if meta.get("status") == "complete" and meta.get("kind", "bot") == "bot":
            return meta_path.parent, meta
    return None


def _decoded_video_frames(path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


async def test_bot_snapshot_is_saved_and_confirmed(open_page, server):
    page = await open_page()
    await log_in(page, "nora")
    await page.click('#people li[data-username="bot"] button')
    await expect(page.locator("#call-state")).to_have_attribute("data-state", "connected", timeout=SLOW)
    await wait_video_playing(page, "#remote-video")
    await expect(page.locator("#snapshot-button")).to_be_enabled()
    await page.click("#snapshot-button")
    await expect(page.locator("#photo-status")).to_have_attribute("data-state", "saved", timeout=SLOW)
    await expect(page.locator("#photo-message")).to_contain_text("Saved by bot ✓")
    await screenshot(page, "13-bot-photo-saved")


async def test_bot_call_leaves_recording_frames_and_photo(open_page, server):
    page = await open_page()
    await log_in(page, "olga")
    await page.click('#people li[data-username="bot"] button')
    await expect(page.locator("#call-state")).to_have_attribute("data-state", "connected", timeout=SLOW)
    await wait_video_playing(page, "#remote-video", frames=60)  # a few seconds to record
    await page.click("#snapshot-button")
    await expect(page.locator("#photo-status")).to_have_attribute("data-state", "saved", timeout=SLOW)
    sha256 = await page.locator("#call-photos li.photo-sent").first.get_attribute("data-sha256")
    await page.click("#hangup-button")
    await expect(page.locator("#call-state")).to_have_attribute("data-state", "ended")

    calls_dir = server.app[CONFIG].calls_dir
    call_dir, meta = await eventually(lambda: _finished_call(calls_dir), SLOW / 1000)
    assert meta["caller"] == "olga"
    assert meta["duration"] > 0

    # The photo: listed in the manifest, on disk, same bytes as the page sent.
    assert [p["sha256"] for p in meta["photos"]] == [sha256]
    photo = call_dir / meta["photos"][0]["file"]
    assert hashlib.sha256(photo.read_bytes()).hexdigest() == sha256

    # The recording decodes, and sampled frames are there.
    videos = [p for p in call_dir.rglob("*") if p.suffix in VIDEO_SUFFIXES]
    assert videos, f"no recording in {sorted(p.name for p in call_dir.rglob('*'))}"
    assert _decoded_video_frames(videos[0]) > 10
    frames = [p for p in call_dir.rglob("*.jpg") if p != photo]
    assert frames, "no sampled frames"

    # The gallery lists it with a thumbnail, and the recording plays and seeks.
    await page.click("#tab-gallery")
    card = page.locator(f'.call-card[data-call-id="{call_dir.name}"]')
    await expect(card).to_contain_text("1 photo")
    await page.wait_for_function(
        "(id) => { const i = document.querySelector(`.call-card[data-call-id='${id}'] img.thumb`);"
        " return i && i.complete && i.naturalWidth > 0; }",
        arg=call_dir.name,
    )
    await screenshot(page, "14-gallery-with-recording")
    await card.locator("[data-action=open]").click()
    video = page.locator("#viewer video.recording")
    await expect(video).to_be_visible()
    await page.evaluate("() => document.querySelector('#viewer video.recording').play()")
    await page.wait_for_function(
        "() => { const v = document.querySelector('#viewer video.recording');"
        " return v.currentTime > 0.3 && v.seekable.length > 0 && v.seekable.end(0) > 1; }",
        timeout=SLOW,
    )
    # Seeking works because files are served with range requests.
    await page.evaluate(
        "() => { const v = document.querySelector('#viewer video.recording'); v.currentTime = 0.5; }"
    )
    await page.wait_for_function(
        "() => { const v = document.querySelector('#viewer video.recording');"
        " return !v.seeking && Math.abs(v.currentTime - 0.5) < 1; }"
    )
    await screenshot(page, "15-gallery-viewer")
