"""Every screen of the page, on a laptop and on a phone, in the dark and the
light theme: nothing sticks out sideways, every button's text has at least
4.5:1 contrast and every focus ring 3:1 (computed from the page's styles),
and the page's accessibility basics hold (a state announced once per change,
errors tied to their field, labelled videos)."""

from __future__ import annotations

from playwright.async_api import expect

from tests.support.browser import (
    SLOW,
    ChattyBot,
    assert_buttons_readable,
    assert_focus_visible,
    assert_no_overflow,
    call_bot,
    log_in,
    screenshot,
)
from tests.support.server import running_server, test_config

async def _check(page, where: str, size: str, *, focus: bool = False) -> None:
    """The checks on one screen, in both themes, with a screenshot of each."""
    for scheme in ("dark", "light"):
        await page.emulate_media(color_scheme=scheme)
        label = f"{where} ({size}, {scheme})"
        await assert_no_overflow(page, label)
        await assert_buttons_readable(page, label)
        if focus:
            await assert_focus_visible(page, label)
        await screenshot(page, f"90-{where}-{size}-{scheme}")
    await page.emulate_media(color_scheme="dark")


async def test_every_screen_fits_and_reads_well(open_page, size, tmp_path):
    async with running_server(test_config(tmp_path), ChattyBot()) as srv:
        page = await open_page(srv.url, size=size)
        await _check(page, "login", size, focus=True)

        # The light theme is a real one, not the dark one with another name.
        await page.emulate_media(color_scheme="light")
        light = await page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        await page.emulate_media(color_scheme="dark")
        dark = await page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert light == "rgb(244, 246, 251)" and dark == "rgb(15, 20, 32)", (light, dark)

        # A login error is tied to its field.
        name = page.locator("#username")
        await name.fill("no spaces please")
        await page.click("#login-button")
        error = page.locator("#login-error")
        await expect(error).to_contain_text("Names are 1 to 64 letters or digits")
        await expect(name).to_have_attribute("aria-invalid", "true")
        described = (await name.get_attribute("aria-describedby")).split()
        assert "login-error" in described, described
        await _check(page, "login-error", size)
        await log_in(page, f"eve-{size}")
        await expect(name).not_to_have_attribute("aria-invalid", "true")

        await _check(page, "online", size, focus=True)

        # A bot call with everything showing: devices, chat, a snapshot, a photo.
        await call_bot(page)
        for video, label in (("#remote-video", "The other side’s video"), ("#local-video", "Your camera")):
            await expect(page.locator(video)).to_have_attribute("aria-label", label)
        # The state is announced when it changes, not with every tick of
        # the clock (which is a separate, silent timer).
        changes = await page.evaluate(
            """() => new Promise((resolve) => {
                 const count = { state: 0, timer: 0 };
                 const watch = (id, key) => new MutationObserver((m) => { count[key] += m.length; })
                   .observe(document.getElementById(id), { childList: true, characterData: true, subtree: true });
                 watch('call-state', 'state');
                 watch('call-timer', 'timer');
                 setTimeout(() => resolve(count), 2500);
               })"""
        )
        assert changes["state"] == 0 and changes["timer"] >= 2, changes
        assert await page.get_attribute("#call-state", "aria-live") == "polite"
        assert await page.get_attribute("#call-timer", "role") == "timer"

        await page.click("#devices-button")
        await expect(page.locator("#device-panel")).to_be_visible()
        await page.fill("#chat-input", "hello")
        await page.press("#chat-input", "Enter")
        await expect(page.locator("#chat-log .chat-peer").last).to_contain_text("You said: hello")
        await page.click("#snapshot-button")
        await expect(page.locator("#photo-status")).to_have_attribute("data-state", "saved", timeout=SLOW)
        await page.fill("#chat-input", "photo please")
        await page.press("#chat-input", "Enter")
        await expect(page.locator("#photo-toast")).to_be_visible(timeout=SLOW)
        await _check(page, "in-call", size, focus=True)
        await page.click("#mic-button")  # a pressed toggle reads well too
        await _check(page, "in-call-muted", size)
        await page.click("#mic-button")

        await page.click("#photo-toast-view")
        await expect(page.locator("#lightbox")).to_be_visible()
        await _check(page, "photo-large", size)
        await page.click("#lightbox-close")

        await page.click("#hangup-button")
        await expect(page.locator("#call-summary")).to_be_visible()
        await _check(page, "call-summary", size)

        # The gallery, its viewer and the delete confirmation.
        await page.click("#tab-gallery")
        card = page.locator(".call-card").first
        await expect(card).to_have_attribute("data-status", "complete", timeout=SLOW)
        await _check(page, "gallery", size, focus=True)
        await card.locator("[data-action=open]").click()
        await expect(page.locator("#viewer")).to_be_visible()
        await _check(page, "gallery-viewer", size)
        await page.click("#viewer-close")
        await card.locator("[data-action=delete]").click()
        await expect(page.locator("#confirm-delete")).to_be_visible()
        await expect(page.locator("#confirm-cancel")).to_be_focused()
        await _check(page, "delete-confirm", size, focus=True)
        await page.click("#confirm-cancel")
        await expect(page.locator("#confirm-delete")).to_be_hidden()

        # Someone calls.
        await page.click("#tab-calls")
        other = await open_page(srv.url, size=size)
        await log_in(other, f"fay-{size}")
        await other.click(f'#people li[data-username="eve-{size}"] button')
        await expect(page.locator("#incoming")).to_be_visible()
        await _check(page, "incoming", size, focus=True)
        await page.click("#decline-button")
