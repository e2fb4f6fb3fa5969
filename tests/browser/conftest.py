"""Real Chromium (Debian's /usr/bin/chromium) driven by Playwright, against an
in-process server on port 0.

Run inside a network namespace that has only loopback, so Chromium's ICE
candidates are 127.0.0.1 only::

    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m pytest tests/browser -q'

Screenshots of the main screens go to test-artifacts/browser/ (gitignored).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import AsyncIterator

import pytest

from callbot.config import BotConfig
from tests.helpers import RunningServer, running_server, test_config

CHROMIUM = os.environ.get("CALLBOT_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
#: Milliseconds for anything that involves ICE, media or the bot.
SLOW = 30_000

BASE_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
]
#: Grants camera and microphone without a prompt.
GRANT_MEDIA = "--use-fake-ui-for-media-stream"


def _only_loopback() -> bool:
    # /sys/class/net shows the namespace sysfs was mounted in, not ours.
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def pytest_collection_modifyitems(config, items):
    if not Path(CHROMIUM).exists():
        skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM}")
        here = Path(__file__).parent
        for item in items:
            if here in Path(item.path).parents:
                item.add_marker(skip)


def _require_loopback_only_namespace() -> None:
    # Not a skip: outside a loopback-only namespace Chromium offers candidates
    # on every interface and calls can take odd paths; say so loudly.
    if not _only_loopback():
        pytest.fail(
            "browser tests must run in a network namespace with only loopback: "
            "unshare -n sh -c 'ip link set lo up && python -m pytest tests/browser' "
            "(unshare -rn when not root)",
            pytrace=False,
        )


page_server = running_server  # server.py wires every route the page uses


@pytest.fixture
async def server(tmp_path) -> AsyncIterator[RunningServer]:
    """A server whose bot sends video back (overlay), so remote video plays."""
    async with page_server(test_config(tmp_path, bot=BotConfig(talkback="overlay"))) as srv:
        yield srv


@pytest.fixture
async def playwright_instance():
    from playwright.async_api import async_playwright

    _require_loopback_only_namespace()
    async with async_playwright() as pw:
        yield pw


async def _launch(pw, *, grant_media: bool):
    args = BASE_ARGS + ([GRANT_MEDIA] if grant_media else ["--deny-permission-prompts"])
    # launch() gives every browser a fresh temporary user-data-dir.
    return await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)


@pytest.fixture
async def browser(playwright_instance):
    b = await _launch(playwright_instance, grant_media=True)
    yield b
    await b.close()


@pytest.fixture
async def browser_without_media(playwright_instance):
    """A browser that refuses camera and microphone, as a person who clicked Block."""
    b = await _launch(playwright_instance, grant_media=False)
    yield b
    await b.close()


@pytest.fixture
async def open_page(browser, server):
    """Opens the app in a fresh browser context (its own cookies and storage)."""
    contexts = []

    async def make(url: str | None = None, *, in_browser=None):
        context = await (in_browser or browser).new_context(viewport={"width": 1280, "height": 820})
        contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(SLOW)
        page.console_messages = []  # type: ignore[attr-defined]
        page.on("console", lambda m: page.console_messages.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: page.console_messages.append(f"pageerror: {e}"))
        await page.goto(url or server.url)
        return page

    yield make
    for context in contexts:
        await context.close()


async def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def log_in(page, username: str) -> None:
    from playwright.async_api import expect

    await page.fill("#username", username)
    await page.click("#login-button")
    await expect(page.locator("#me-name")).to_have_text(username)


async def wait_video_playing(page, selector: str, frames: int = 15) -> None:
    """Waits until the <video> has decoded `frames` more frames than now."""
    await page.wait_for_function(
        """(sel) => { const v = document.querySelector(sel);
             return v && v.readyState >= 2 && v.videoWidth > 0
                    && v.getVideoPlaybackQuality().totalVideoFrames > 0; }""",
        arg=selector, timeout=SLOW,
    )
    start = await page.evaluate(
        "(sel) => document.querySelector(sel).getVideoPlaybackQuality().totalVideoFrames", selector
    )
    await page.wait_for_function(
        """([sel, n]) => { const v = document.querySelector(sel);
             return v.getVideoPlaybackQuality().totalVideoFrames > n && !v.paused; }""",
        arg=[selector, start + frames], timeout=SLOW,
    )


async def eventually(check, timeout: float = SLOW / 1000, interval: float = 0.05):
    """Returns check()'s first truthy result, retrying until `timeout` seconds;
    for conditions on disk that no page event announces."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {check}")
        await asyncio.sleep(interval)
