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

from tests.support.browser import BASE_ARGS, CHROMIUM, GRANT_MEDIA, SLOW
from tests.support.server import RunningServer, running_server, test_config
from webapp.config import BotConfig

def _only_loopback() -> bool:
    # /sys/class/net shows the namespace sysfs was mounted in, not ours.
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def _require_chromium_in_loopback_only_namespace() -> None:
    # Not skips: a browser test that cannot run fails and says why.
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: scripts/test installs Debian's chromium", pytrace=False)
    # Not a skip: outside a loopback-only namespace Chromium offers candidates
    # on every interface and calls can take odd paths; say so loudly.
    if not _only_loopback():
        pytest.fail(
            "browser tests must run in a network namespace with only loopback: "
            "unshare -n sh -c 'ip link set lo up && python -m pytest tests/browser' "
            "(unshare -rn when not root)",
            pytrace=False,
        )


@pytest.fixture
async def server(tmp_path) -> AsyncIterator[RunningServer]:
    """A server whose bot sends video back (overlay), so remote video plays."""
    # A page that closes goes away with 1001, which keeps its slot for the
    # resume grace: a short one, so closed pages leave within a test's wait.
    config = test_config(tmp_path, bot=BotConfig(talkback="overlay"), resume_grace=2.0)
    async with running_server(config) as srv:
        yield srv


@pytest.fixture
async def playwright_instance():
    from playwright.async_api import async_playwright

    _require_chromium_in_loopback_only_namespace()
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


