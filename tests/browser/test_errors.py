"""The errors a person can meet, in plain language."""

from __future__ import annotations

from dataclasses import replace

from playwright.async_api import expect

from tests.support.browser import SLOW, log_in, screenshot
from tests.support.server import Client, running_server, test_config

async def test_username_taken_and_invalid(open_page):
    first = await open_page()
    await log_in(first, "dana")

    page = await open_page()
    error = page.locator("#login-error")
    await page.fill("#username", "dana")
    await page.click("#login-button")
    await expect(error).to_have_text("That name is already in use. Please pick another one.")

    # The bot's name is taken too.
    await page.fill("#username", "bot")
    await page.click("#login-button")
    await expect(error).to_contain_text("already in use")

    await page.fill("#username", "not a name!")
    await page.click("#login-button")
    await expect(error).to_contain_text("Names are 1 to 64 letters or digits")
    await screenshot(page, "05-login-error")

    # The same connection can still log in with a free name.
    await log_in(page, "dana2")


async def test_server_unreachable(open_page, tmp_path):
    async with running_server(test_config(tmp_path / "gone")) as gone:
        page = await open_page(gone.url)
    # The server has stopped; the page is still open.
    await page.fill("#username", "erin")
    await page.click("#login-button")
    await expect(page.locator("#login-error")).to_contain_text("Can’t reach the server")
    await screenshot(page, "06-server-unreachable")


async def test_camera_denied(open_page, browser_without_media):
    page = await open_page(in_browser=browser_without_media)
    await log_in(page, "frank")
    await page.click('#people li[data-username="bot"] button')
    await expect(page.locator("#call-state")).to_have_attribute("data-state", "failed")
    await expect(page.locator("#call-message")).to_contain_text(
        "Camera or microphone access was denied"
    )
    await screenshot(page, "07-camera-denied")


async def test_user_offline(open_page, browser, tmp_path):
    # A long presence interval keeps "left" from reaching the page, so the
    # page still lists a user who is gone: the server answers user-offline.
    config = replace(test_config(tmp_path), presence_interval=60.0)
    async with running_server(config) as srv:
        ghost = await Client.connect(srv.ws_url)
        await ghost.login("ghost")
        context = await browser.new_context(viewport={"width": 1280, "height": 820})
        try:
            page = await context.new_page()
            await page.goto(srv.url)
            await log_in(page, "gina")
            await expect(page.locator('#people li[data-username="ghost"]')).to_be_visible()
            await ghost.close()
            await page.click('#people li[data-username="ghost"] button')
            await expect(page.locator("#call-state")).to_have_attribute(
                "data-state", "failed", timeout=SLOW
            )
            await expect(page.locator("#call-message")).to_have_text("ghost is not online any more.")
            await screenshot(page, "08-user-offline")
            await expect(page.locator("#banner")).to_be_hidden()
        finally:
            await context.close()


async def test_declined_call(open_page):
    caller = await open_page()
    await log_in(caller, "hank")
    callee = await open_page()
    await log_in(callee, "iris")
    await caller.click('#people li[data-username="iris"] button')
    await expect(callee.locator("#incoming")).to_be_visible()
    await expect(callee.locator("#incoming-text")).to_have_text("hank is calling you")
    await screenshot(callee, "09-incoming-call")
    await callee.click("#decline-button")
    await expect(caller.locator("#call-state")).to_have_attribute("data-state", "ended")
    await expect(caller.locator("#call-message")).to_have_text("iris declined the call.")
