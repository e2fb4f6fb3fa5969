""""Test my connection" reaches the server's echo peer, on a laptop and on a
phone: a data-channel round trip in plain words, and the test is ended on
the server afterwards.
"""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.support.browser import SLOW, assert_no_overflow, log_in, screenshot
from tests.support.wait import eventually
from webapp.keys import CONNECTION_TESTS


async def test_round_trip_to_the_server(open_page, size, server):
    page = await open_page(size=size)
    await log_in(page, f"lou-{size}")
    await page.click("#conntest-button")
    result = page.locator("#conntest-result")
    await expect(result).to_be_visible(timeout=SLOW)
    await expect(result).to_have_attribute("data-server", "ok")
    first = result.locator(".finding").first
    await expect(first).to_have_attribute("data-level", "ok")
    await expect(first).to_contain_text(re.compile(r"^.*Reached the server: a message goes there and back in \d+ ms\.$"))
    await assert_no_overflow(page, "connection test")
    await screenshot(page, f"82-connection-round-trip-{size}")
    # The page ended its test (DELETE), so the server holds none.
    await eventually(lambda: not server.app[CONNECTION_TESTS].tests, SLOW / 1000)
