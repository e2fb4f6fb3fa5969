"""The page's side of resume, on a laptop and on a phone: a signaling socket
cut mid-call comes back within the grace with the login reply's resume
token, and the call with the bot goes on (same session, still recording);
one that comes back too late says once that the call ended.
"""

from __future__ import annotations

import json
import re

from playwright.async_api import expect

from tests.support.browser import SLOW, call_bot, log_in, screenshot
from tests.support.server import running_server, test_config
from tests.support.wait import eventually
from webapp.keys import BOT


class Switch:
    """Every page WebSocket goes through Playwright's route, so the test can
    cut it (a close code other than 1000 on both sides: the server holds the
    slot for the grace) and refuse new ones for a while."""

    def __init__(self) -> None:
        self.open: list = []
        self.refusing = False

    async def route(self, ws) -> None:
        if self.refusing:
            await ws.close(code=4001, reason="refused by the test")
            return
        server = ws.connect_to_server()
        self.open.append((ws, server))

    async def cut(self) -> None:
        for ws, server in self.open:
            await server.close(code=4000, reason="cut by the test")
            await ws.close(code=4000, reason="cut by the test")
        self.open.clear()


async def _page_with_switch(open_page, url, size):
    page = await open_page(url, size=size)
    switch = Switch()
    await page.route_web_socket(re.compile(r"/ws"), switch.route)
    sent: list[dict] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(json.loads(payload))))
    await page.reload()
    return page, switch, sent


async def test_a_cut_socket_resumes_and_the_bot_call_goes_on(open_page, size, tmp_path):
    async with running_server(test_config(tmp_path, resume_grace=15.0)) as srv:
        page, switch, sent = await _page_with_switch(open_page, srv.url, size)
        name = f"gil-{size}"
        await log_in(page, name)
        await call_bot(page)
        session = srv.app[BOT].calls[name]
        recorded = session.media.recorder.status()["duration"]

        switch.refusing = True
        await switch.cut()
        await expect(page.locator("#connection-status")).to_have_text("Connection to the server lost. Reconnecting…")
        await expect(page.locator("#call-message")).to_have_text("Reconnecting to the server… the call goes on meanwhile.")
        await screenshot(page, f"55-resuming-{size}")
        switch.refusing = False

        await expect(page.locator("#connection-status")).to_be_hidden(timeout=SLOW)
        await expect(page.locator("#call-message")).to_be_hidden()
        await expect(page.locator("#call-state")).to_have_attribute("data-state", "connected")
        resumes = [m for m in sent if m.get("type") == "login" and "resume" in m]
        assert len(resumes) == 1 and resumes[0]["username"] == name, resumes
        # The same call, still recording.
        assert srv.app[BOT].calls[name] is session and not session.ended.is_set()
        await eventually(lambda: session.media.recorder.status()["duration"] > recorded + 1.0, SLOW / 1000)

        await page.click("#hangup-button")
        await expect(page.locator("#call-state")).to_have_attribute("data-state", "ended")
        await eventually(lambda: session.ended.is_set(), SLOW / 1000)


async def test_too_late_says_once_that_the_call_ended(open_page, size, tmp_path):
    async with running_server(test_config(tmp_path, resume_grace=1.0)) as srv:
        page, switch, _ = await _page_with_switch(open_page, srv.url, size)
        name = f"hal-{size}"
        await log_in(page, name)
        await call_bot(page)
        session = srv.app[BOT].calls[name]

        switch.refusing = True
        await switch.cut()
        # The grace runs out: the bot's call ends as if the caller had left.
        await eventually(lambda: session.ended.is_set(), SLOW / 1000)
        switch.refusing = False

        await expect(page.locator("#connection-status")).to_be_hidden(timeout=SLOW)
        await expect(page.locator("#me-name")).to_have_text(name)
        message = page.locator("#call-message")
        await expect(message).to_have_text("The call ended: the connection to the server was lost.")
        await expect(message).to_have_attribute("data-kind", "info")
        await expect(page.get_by_text("The call ended")).to_have_count(1)
        await expect(page.locator("#banner")).to_be_hidden()
        await screenshot(page, f"56-resume-too-late-{size}")
        # And the next call works.
        await call_bot(page)
