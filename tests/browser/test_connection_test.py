""""Test my connection", on a laptop and on a phone: which candidate types
the browser gathers and whether the configured STUN and TURN servers
answer, said in plain words with what to fix."""

from __future__ import annotations

from playwright.async_api import expect

from peer.config import IceConfig
from tests.support.browser import SLOW, assert_no_overflow, log_in, screenshot
from tests.support.server import running_server, test_config


#: Nothing answers on the discard port of loopback.
DEAD_STUN = "stun:127.0.0.1:9"
DEAD_TURN = "turn:127.0.0.1:9?transport=udp"


async def _run_test(page):
    await page.click("#conntest-button")
    result = page.locator("#conntest-result")
    await expect(result).to_be_visible(timeout=SLOW)
    await expect(page.locator("#conntest-button")).to_have_text("Test again")
    return result


async def test_connection_test_reports_candidates_and_ice_servers(open_page, size, tmp_path):
    # No STUN or TURN configured: fine on one network, and it says so.
    page = await open_page(size=size)
    await log_in(page, f"cal-{size}")
    result = await _run_test(page)
    await expect(result).to_have_attribute("data-gathered", "host")
    await expect(result.locator('[data-level="ok"]')).to_contain_text(["found its local network address"])
    await expect(result).to_contain_text("No STUN server is configured")
    await expect(result).to_contain_text("No TURN relay is configured")
    await expect(result).to_contain_text("local address (")
    await assert_no_overflow(page, "connection test")
    await screenshot(page, f"80-connection-test-{size}")

    # STUN and TURN configured but silent: each named as the problem.
    ice = IceConfig(addresses=("127.0.0.1",), stun_urls=(DEAD_STUN,), turn_urls=(DEAD_TURN,),
                    turn_username="u", turn_credential="p")
    async with running_server(test_config(tmp_path, ice=ice)) as srv:
        page = await open_page(srv.url, size=size)
        await log_in(page, f"dan-{size}")
        result = await _run_test(page)
        await expect(result).to_have_attribute("data-gathered", "host")
        bad = result.locator('[data-level="bad"]')
        await expect(bad).to_have_count(2)
        await expect(bad.first).to_contain_text(f"The STUN server did not answer ({DEAD_STUN})")
        await expect(bad.last).to_contain_text(f"The TURN relay did not answer ({DEAD_TURN})")
        await screenshot(page, f"81-connection-test-dead-servers-{size}")
