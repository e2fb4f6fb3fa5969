"""The call view, on a laptop and on a phone: a bot call that shows
something (your camera large, a REC mark with the time, what the bot says),
photos from the other side that are noticed and can be opened and saved,
and endings shown as what they are, with a summary linking to the gallery."""

from __future__ import annotations

import hashlib
import re

from playwright.async_api import expect

from tests.support.browser import (
    SLOW,
    ChattyBot,
    assert_no_overflow,
    call_bot,
    log_in,
    screenshot,
)
from tests.support.server import running_server, test_config
from webapp.keys import BOT

async def _box(page, selector):
    box = await page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not shown"
    return box


async def test_default_bot_call_shows_you_large_and_a_rec_mark(open_page, size, tmp_path):
    # The default bot sends nothing back: the page must not be a black void.
    async with running_server(test_config(tmp_path)) as srv:
        page = await open_page(srv.url, size=size)
        await log_in(page, f"pia-{size}")
        await call_bot(page)

        videos = page.locator("#videos")
        await expect(videos).to_have_attribute("data-layout", "self-main")
        await expect(page.locator("#remote-video")).to_be_hidden()
        await page.wait_for_function(
            "() => { const v = document.querySelector('#local-video'); return v.videoWidth > 0 && !v.paused; }"
        )
        # Your camera fills the stage, not a corner of it.
        stage, mine = await _box(page, "#videos"), await _box(page, "#local-video")
        assert mine["width"] >= stage["width"] - 4 and mine["height"] >= stage["height"] - 4, (stage, mine)

        # The bot said it records (call-info): a REC mark whose time runs.
        rec = page.locator("#rec-badge")
        await expect(rec).to_be_visible()
        await expect(rec).to_have_attribute("data-recording", "true")
        await expect(page.locator("#rec-text")).to_have_text(re.compile(r"^REC 0:0[2-9]$"), timeout=SLOW)
        # Inside the stage, on screen.
        badge = await _box(page, "#rec-badge")
        assert stage["x"] <= badge["x"] and badge["x"] + badge["width"] <= stage["x"] + stage["width"]
        await assert_no_overflow(page, "bot call")
        await screenshot(page, f"20-bot-call-self-view-{size}")

        call_id = srv.app[BOT].calls[f"pia-{size}"].id
        await page.click("#hangup-button")
        state = page.locator("#call-state")
        await expect(state).to_have_attribute("data-state", "ended")
        # Hanging up yourself is no news: no message, no leftover status.
        await expect(page.locator("#call-message")).to_be_hidden()
        await expect(page.locator("#photo-status")).to_be_hidden()
        await expect(page.locator("#rec-badge")).to_be_hidden()
        await expect(page.locator("#call-controls")).to_be_hidden()
        summary = page.locator("#call-summary")
        await expect(summary).to_be_visible()
        await expect(summary).to_contain_text(re.compile(r"0:0\d with bot · recorded"))
        # The hint points to where the list of people really is.
        hint = await page.locator("#stage-placeholder").inner_text()
        people, placeholder = await _box(page, ".people-card"), await _box(page, "#stage-placeholder")
        if people["y"] >= placeholder["y"] + placeholder["height"]:
            assert "in the list below" in hint, hint
        elif people["x"] + people["width"] <= placeholder["x"]:
            assert "on the left" in hint, hint
        else:
            assert "in the list above" in hint, hint
        await screenshot(page, f"21-bot-call-summary-{size}")

        # The summary leads to this very call in the gallery.
        await page.click("#summary-open")
        await expect(page.locator("#tab-gallery")).to_have_attribute("aria-selected", "true")
        viewer = page.locator("#viewer")
        await expect(viewer).to_be_visible()
        await expect(viewer.locator("video.recording")).to_have_attribute(
            "src", re.compile(rf"/api/calls/{call_id}/files/recording\.")
        )
        await assert_no_overflow(page, "gallery viewer")
        await screenshot(page, f"22-summary-opens-gallery-{size}")


async def test_bot_talks_and_sends_a_photo_that_is_noticed_opened_and_saved(open_page, size, tmp_path):
    bot = ChattyBot()
    async with running_server(test_config(tmp_path), bot) as srv:
        page = await open_page(srv.url, size=size)
        name = f"quin-{size}"
        await log_in(page, name)
        await call_bot(page)

        # What the bot says appears in the call view (its app data channel).
        log = page.locator("#chat-log")
        await expect(log.locator(".chat-peer").first).to_have_text(f"botHello {name}, I am listening.")
        await page.fill("#chat-input", "hello bot")
        await page.press("#chat-input", "Enter")
        await expect(log.locator(".chat-me").last).to_contain_text("hello bot")
        await expect(log.locator(".chat-peer").last).to_contain_text("You said: hello bot")
        assert bot.messages == ["hello bot"]

        # The bot sends a photo over the photos channel: a notice shows on
        # screen wherever the page is scrolled to.
        await page.fill("#chat-input", "photo please")
        await page.click("#chat-send")
        toast = page.locator("#photo-toast")
        await expect(toast).to_be_visible(timeout=SLOW)
        await expect(toast).to_contain_text("bot sent you a photo")
        box = await _box(page, "#photo-toast")
        viewport = page.viewport_size
        assert 0 <= box["y"] and box["y"] + box["height"] <= viewport["height"], (box, viewport)
        assert 0 <= box["x"] and box["x"] + box["width"] <= viewport["width"], (box, viewport)
        await assert_no_overflow(page, "photo notice")
        await screenshot(page, f"23-photo-from-bot-notice-{size}")
        assert len(bot.sent_photos) == 1
        sha256, reply = bot.sent_photos[0]
        assert reply["type"] == "photo-saved" and reply["sha256"] == sha256

        # Opened large, and saved with the same bytes.
        await page.click("#photo-toast-view")
        await expect(toast).to_be_hidden()
        lightbox = page.locator("#lightbox")
        await expect(lightbox).to_be_visible()
        await page.wait_for_function(
            "() => { const i = document.querySelector('#lightbox-image'); return i.complete && i.naturalWidth === 640; }"
        )
        await assert_no_overflow(page, "photo large")
        await screenshot(page, f"24-photo-from-bot-large-{size}")
        async with page.expect_download() as download_info:
            await page.click("#lightbox-save")
        download = await download_info.value
        assert download.suggested_filename == "from-the-bot.jpg"
        saved = await download.path()
        assert hashlib.sha256(saved.read_bytes()).hexdigest() == sha256
        await page.click("#lightbox-close")

        # It is also a tile among the call's photos, which opens large too.
        tile = page.locator('#call-photos li[data-direction="received"]')
        await expect(tile).to_have_attribute("data-sha256", sha256)
        await tile.locator("button.photo-open").click()
        await expect(lightbox).to_be_visible()
        await page.click("#lightbox-close")
        await expect(log.locator(".chat-peer").last).to_contain_text("There you are.")
        await srv.app[BOT].close()


async def test_normal_endings_are_news_not_errors(open_page, size):
    caller = await open_page(size=size)
    await log_in(caller, f"rex-{size}")
    callee = await open_page(size=size)
    await log_in(callee, f"sue-{size}")
    message = caller.locator("#call-message")

    # While it rings, the caller can cancel, not "hang up".
    await caller.click(f'#people li[data-username="sue-{size}"] button')
    await expect(callee.locator("#incoming")).to_be_visible()
    await expect(caller.locator("#call-state")).to_have_attribute("data-state", "ringing")
    await expect(caller.locator("#hangup-button")).to_have_text("Cancel")
    await callee.click("#decline-button")
    await expect(message).to_have_text(f"sue-{size} declined the call.")
    await expect(message).to_have_attribute("data-kind", "info")
    await expect(caller.locator("#call-state")).to_have_attribute("data-state", "ended")
    await screenshot(caller, f"25-declined-{size}")

    # Answered, then the other side hangs up: news, with a summary.
    await caller.click(f'#people li[data-username="sue-{size}"] button')
    await expect(callee.locator("#incoming")).to_be_visible()
    await expect(message).to_be_hidden()  # the old ending went with the old call
    await callee.click("#accept-button")
    await expect(caller.locator("#call-state")).to_have_attribute("data-state", "connected", timeout=SLOW)
    await expect(caller.locator("#hangup-button")).to_have_text("Hang up")
    await expect(caller.locator("#videos")).to_have_attribute("data-layout", "remote-main", timeout=SLOW)
    await callee.click("#hangup-button")
    await expect(message).to_have_text(f"sue-{size} hung up.")
    await expect(message).to_have_attribute("data-kind", "info")
    await expect(caller.locator("#call-summary")).to_contain_text(f"with sue-{size}")
    # A call between two people has no gallery entry.
    await expect(caller.locator("#summary-open")).to_be_hidden()
    await assert_no_overflow(caller, "call ended")
    await screenshot(caller, f"26-hung-up-{size}")
