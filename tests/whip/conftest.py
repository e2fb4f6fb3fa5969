"""WHIP and WHEP against real servers: aiortc peers over HTTP, FFmpeg and
GStreamer as subprocesses, Chromium through Playwright."""

from __future__ import annotations

from typing import AsyncIterator

import aiohttp
import pytest

from tests.support.browser import BASE_ARGS, CHROMIUM, GRANT_MEDIA, SLOW, require_browser_namespace


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def chromium():
    """Debian's Chromium with a fake camera, granted without a prompt."""
    from playwright.async_api import async_playwright

    require_browser_namespace()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=BASE_ARGS + [GRANT_MEDIA])
        contexts = []

        async def new_page(url: str):
            context = await browser.new_context(viewport={"width": 1000, "height": 800})
            contexts.append(context)
            page = await context.new_page()
            page.set_default_timeout(SLOW)
            page.console_messages = []  # type: ignore[attr-defined]
            page.on("console", lambda m: page.console_messages.append(f"{m.type}: {m.text} {m.location.get('url', '').split('?')[0]}"))
            page.on("pageerror", lambda e: page.console_messages.append(f"pageerror: {e}"))
            page.on("response", lambda r: r.status >= 400 and page.console_messages.append(
                f"http: {r.request.method} {r.url.split('?')[0]} {r.status}"))
            await page.goto(url)
            return page

        try:
            yield new_page
        finally:
            for context in contexts:
                await context.close()
            await browser.close()
