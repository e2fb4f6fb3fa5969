"""Real Chromium (Debian's /usr/bin/chromium) driven by Playwright, against an
in-process server on port 0.

Run inside a network namespace that has only loopback, so Chromium's ICE
candidates are 127.0.0.1 only::

    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m pytest tests/browser -q'

One Chromium per test module (starting one costs about 2 s): the tests in
this folder run on their module's event loop (the hook below), where the
module's Chromium lives; fixtures of their own that hold loop-bound objects
need ``@pytest_asyncio.fixture(loop_scope="module")``, as the ones here have.
Each test opens its own browser contexts (own storage, permissions and
pages), closed when it ends.

Screenshots go to test-artifacts/browser/ (gitignored).
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.browser import BASE_ARGS, CHROMIUM, GRANT_MEDIA, LAN_ADDRESS, SIZES, SLOW
from tests.support.server import RunningServer, running_server, test_config
from webapp.config import BotConfig

def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    module_loop = pytest.mark.asyncio(loop_scope="module")
    for item in items:
        if here in Path(item.path).resolve().parents:
            # First, so it is the closest asyncio mark (auto mode adds one).
            item.add_marker(module_loop, append=False)


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


@pytest_asyncio.fixture(loop_scope="module")
async def server(tmp_path) -> AsyncIterator[RunningServer]:
    """A server whose bot sends video back (overlay), so remote video plays."""
    # A page that closes goes away with 1001, which keeps its slot for the
    # resume grace: a short one, so closed pages leave within a test's wait.
    config = test_config(tmp_path, bot=BotConfig(talkback="overlay"), resume_grace=2.0)
    async with running_server(config) as srv:
        yield srv


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def playwright_instance():
    from playwright.async_api import async_playwright

    _require_chromium_in_loopback_only_namespace()
    async with async_playwright() as pw:
        yield pw


async def _launch(pw, *, grant_media: bool):
    args = BASE_ARGS + ([GRANT_MEDIA] if grant_media else ["--deny-permission-prompts"])
    # launch() gives every browser a fresh temporary user-data-dir.
    return await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(playwright_instance):
    b = await _launch(playwright_instance, grant_media=True)
    yield b
    await b.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser_without_media(playwright_instance):
    """A browser that refuses camera and microphone, as a person who clicked Block."""
    b = await _launch(playwright_instance, grant_media=False)
    yield b
    await b.close()


@pytest.fixture
def lan_address():
    """LAN_ADDRESS on lo, in this test's network namespace, for its duration."""
    _require_chromium_in_loopback_only_namespace()  # never on a real host's lo
    subprocess.run(["ip", "addr", "add", f"{LAN_ADDRESS}/32", "dev", "lo"], check=True)
    try:
        yield LAN_ADDRESS
    finally:
        subprocess.run(["ip", "addr", "del", f"{LAN_ADDRESS}/32", "dev", "lo"], check=False)


@pytest.fixture(params=list(SIZES))
def size(request) -> str:
    """Each test that takes it runs twice: on a laptop and on a phone screen."""
    return request.param


@pytest_asyncio.fixture(loop_scope="module")
async def open_page(browser, server):
    """Opens the app in a fresh browser context (its own cookies and storage).

    ``open_page(url=None, *, size="desktop", in_browser=None, color_scheme="dark",
    **context_options)``; the URL defaults to the ``server`` fixture's.
    """
    contexts = []

    async def make(url: str | None = None, *, in_browser=None, size: str = "desktop", color_scheme=None, **options):
        viewport = SIZES[size] if size in SIZES else {"width": 1280, "height": 820}
        context = await (in_browser or browser).new_context(
            viewport=viewport,
            color_scheme=color_scheme or "dark",
            accept_downloads=True,
            **options,
        )
        contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(SLOW)
        page.log = []  # type: ignore[attr-defined]
        page.on("console", lambda m: page.log.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: page.log.append(f"pageerror: {e}"))
        await page.goto(url or server.url)
        return page

    yield make
    # An uncaught error in the page is a bug even when the test passed.
    errors = [m for c in contexts for p in c.pages for m in getattr(p, "log", []) if m.startswith("pageerror")]
    for context in contexts:
        await context.close()
    assert not errors, errors
