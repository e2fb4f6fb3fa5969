"""The page in real Chromium: logging in, presence, calls with the bot and
between two pages, photos, and the errors a person can meet."""

from __future__ import annotations

from playwright.async_api import expect

from tests.support.browser import SLOW, log_in, screenshot, wait_video_playing

async def test_login_shows_bot_first_and_presence_is_live(open_page):
    alice = await open_page()
    await expect(alice.locator("#login-view")).to_be_visible()
    await screenshot(alice, "01-login")
    await log_in(alice, "alice")

    people = alice.locator("#people li")
    await expect(people.first).to_have_attribute("data-username", "bot")

    bob = await open_page()
    await log_in(bob, "bob")
    await expect(alice.locator('#people li[data-username="bob"]')).to_be_visible()
    await expect(people.first).to_have_attribute("data-username", "bot")
    await expect(bob.locator('#people li[data-username="alice"]')).to_be_visible()
    await screenshot(alice, "02-online")

    await bob.context.close()
    await expect(alice.locator('#people li[data-username="bob"]')).to_have_count(0)


async def test_call_bot_reaches_connected_and_remote_video_plays(open_page, server):
    page = await open_page()
    await log_in(page, "carol")
    await page.click('#people li[data-username="bot"] button')
    state = page.locator("#call-state")
    await expect(state).to_have_attribute("data-state", "connected", timeout=SLOW)
    await wait_video_playing(page, "#remote-video")
    await wait_video_playing(page, "#local-video")
    await screenshot(page, "03-bot-call-connected")

    await page.click("#hangup-button")
    await expect(state).to_have_attribute("data-state", "ended")
    await expect(page.locator("#people li[data-username=bot] button")).to_be_enabled()

    # The finished call is listed in the gallery with its caller and duration.
    await page.click("#tab-gallery")
    card = page.locator(".call-card").first
    await expect(card).to_contain_text("carol with the bot", timeout=SLOW)
    await expect(card.locator(".call-card-facts")).to_contain_text("photo")
    await screenshot(page, "04-gallery")
