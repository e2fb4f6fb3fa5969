"""The page under --auth-secret: opened as /?token=..., it signs every request."""

from __future__ import annotations

from playwright.async_api import expect

from webapp.config import BotConfig, SecurityConfig
from webapp.auth import mint_token
from tests.support.browser import SLOW, log_in, wait_video_playing
from tests.support.server import running_server, test_config

SECRET = "browser-test-secret-0123456789-0123456789"


async def test_page_with_a_token_logs_in_calls_and_sees_its_gallery(open_page, tmp_path):
    config = test_config(tmp_path, bot=BotConfig(talkback="overlay"), security=SecurityConfig(auth_secret=SECRET))
    async with running_server(config) as srv:
        token = mint_token(SECRET, "ruth")
        page = await open_page(f"{srv.url}/?token={token}")
        await log_in(page, "ruth")
        await page.click('#people li[data-username="bot"] button')
        await expect(page.locator("#call-state")).to_have_attribute("data-state", "connected", timeout=SLOW)
        await wait_video_playing(page, "#remote-video", frames=45)  # long enough for a sampled frame
        await page.click("#hangup-button")
        await expect(page.locator("#call-state")).to_have_attribute("data-state", "ended", timeout=SLOW)
        await page.click("#tab-gallery")
        await expect(page.locator(".call-card")).to_have_count(1, timeout=SLOW)
        await page.wait_for_function(
            "() => { const i = document.querySelector('.call-card img.thumb');"
            " return i && i.complete && i.naturalWidth > 0; }",
            timeout=SLOW,
        )

        # Without the token the same page cannot even connect.
        bare = await open_page(srv.url)
        await bare.fill("#username", "ruth")
        await bare.click("#login-button")
        await expect(bare.locator("#login-error")).not_to_be_empty(timeout=SLOW)
