"""A server restart: the page says it is reconnecting, comes back by itself
with growing pauses between attempts, signs in again, and says once that the
call ended (a restart is the no-resume path: the bot's call died with the old
process). On the laptop the server is stopped (SIGTERM: it ends the call and
says it is going away); on the phone it crashes (SIGKILL: the socket just
drops, and the call is given up only once the page is back)."""

from __future__ import annotations

import signal
import time


from playwright.async_api import expect

from tests.support.browser import SLOW, assert_no_overflow, call_bot, log_in, screenshot
from tests.support.process import ServerProcess
from tests.support.wait import eventually

async def test_server_restart_reconnects_and_says_once_that_the_call_ended(open_page, size, tmp_path):
    data = tmp_path / "data"
    first = await ServerProcess.start(data)
    second = None
    try:
        port = first.url.rsplit(":", 1)[1]
        page = await open_page(first.url, size=size)
        sockets: list[float] = []
        page.on("websocket", lambda ws: sockets.append(time.monotonic()))
        name = f"xia-{size}"
        await log_in(page, name)
        await call_bot(page)

        message = page.locator("#call-message")
        status = page.locator("#connection-status")
        if size == "desktop":
            first.send_signal(signal.SIGTERM)
            assert await first.wait() == 0
            await expect(status).to_have_text("The server is restarting. Reconnecting…")
            ended = "The call ended: the server is restarting."
            await expect(message).to_have_text(ended)
        else:
            first.send_signal(signal.SIGKILL)
            assert await first.wait() == -signal.SIGKILL
            await expect(status).to_have_text("Connection to the server lost. Reconnecting…")
            await expect(message).to_have_text("Reconnecting to the server… the call goes on meanwhile.")
            ended = "The call ended: the connection to the server was lost."
        await screenshot(page, f"50-reconnecting-{size}")
        # Three attempts fail while the server is down (the first socket is
        # the one from signing in).
        await eventually(lambda: len(sockets) >= 4, SLOW / 1000)

        second = await ServerProcess.start(data, "--port", port)
        await expect(status).to_be_hidden(timeout=SLOW)
        await expect(page.locator("#me-name")).to_have_text(name)
        await expect(page.locator('#people li[data-username="bot"]')).to_be_visible()

        # Said once, as news, in the call view; no banner, no login form.
        await expect(message).to_have_text(ended)
        await expect(message).to_have_attribute("data-kind", "info")
        await expect(page.get_by_text("The call ended")).to_have_count(1)
        await expect(page.locator("#banner")).to_be_hidden()
        await expect(page.locator("#login-view")).to_be_hidden()
        await expect(page.locator("#call-state")).to_have_attribute("data-state", "ended")
        await assert_no_overflow(page, "after reconnecting")
        await screenshot(page, f"51-reconnected-{size}")

        # Exponential backoff: each pause at least 1.25 times the last
        # (doubling, with +-20% jitter).
        attempts = sockets[1:]
        gaps = [b - a for a, b in zip(attempts, attempts[1:])]
        assert len(gaps) >= 3, gaps
        assert all(later >= 1.25 * earlier for earlier, later in zip(gaps, gaps[1:3])), gaps

        # And the new server takes calls at once.
        await call_bot(page)
        await expect(message).to_be_hidden()
        await page.click("#hangup-button")
        await expect(page.locator("#call-state")).to_have_attribute("data-state", "ended")
    finally:
        await first.stop()
        if second is not None:
            await second.stop()
