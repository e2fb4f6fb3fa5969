"""Opening the page from another device. Over plain http from an address
that is not localhost the browser gives the page no camera: the page says so
at once, in plain words, with the https address to use. With --self-signed
the server speaks https with a certificate it made (and keeps), and calls
work from such an address.

Chromium resolves lan.test to 127.0.0.1 (tests/support/browser.py), which is
enough to make it "another address" for the browser's secure-context rules.
"""

from __future__ import annotations

import ssl

from playwright.async_api import expect

from tests.support.browser import BROWSER_LOOP, LAN_HOST, assert_no_overflow, call_bot, log_in, screenshot
from tests.support.process import ServerProcess
from tests.support.server import running_server, test_config

pytestmark = BROWSER_LOOP


async def test_plain_http_from_another_address_says_why_there_is_no_camera(open_page, size, tmp_path):
    async with running_server(test_config(tmp_path)) as srv:
        page = await open_page(f"http://{LAN_HOST}:{srv.port}/", size=size)
        assert await page.evaluate("() => window.isSecureContext") is False
        notice = page.locator("#secure-notice")
        await expect(notice).to_be_visible()
        await expect(notice).to_contain_text("only over https")
        await expect(notice).to_contain_text(f"https://{LAN_HOST}:{srv.port}/")
        await expect(notice).to_contain_text("--self-signed")
        await assert_no_overflow(page, "insecure page")
        await screenshot(page, f"70-insecure-context-{size}")

        # Signing in works; a call says the same thing instead of failing oddly.
        await log_in(page, f"amy-{size}")
        await page.click('#people li[data-username="bot"] button')
        await expect(page.locator("#call-state")).to_have_attribute("data-state", "failed")
        await expect(page.locator("#call-message")).to_contain_text("only over https")
        await expect(page.locator("#call-message")).to_have_attribute("data-kind", "error")


async def test_self_signed_https_lets_another_address_call(open_page, size, tmp_path):
    data = tmp_path / "data"
    server = await ServerProcess.start(data, "--self-signed")
    try:
        assert server.url.startswith("https://")
        port = int(server.url.rsplit(":", 1)[1])
        # The browser is told to accept the certificate, as a person clicking
        # through its warning does.
        page = await open_page(f"https://{LAN_HOST}:{port}/", size=size, ignore_https_errors=True)
        assert await page.evaluate("() => window.isSecureContext") is True
        await expect(page.locator("#secure-notice")).to_be_hidden()
        await log_in(page, f"bea-{size}")  # over wss
        await call_bot(page)
        await screenshot(page, f"71-self-signed-call-{size}")
        await page.click("#hangup-button")
        await expect(page.locator("#call-state")).to_have_attribute("data-state", "ended")
        served = ssl.get_server_certificate(("127.0.0.1", port))
    finally:
        await server.stop()

    # Kept in the data directory, the key private; a restart serves the same
    # certificate, so a browser that accepted it once still does.
    key = data / "tls" / "self-signed.key"
    assert key.stat().st_mode & 0o077 == 0
    assert ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(served)) == (data / "tls" / "self-signed.crt").read_text()
    if size == "desktop":
        again = await ServerProcess.start(data, "--self-signed")
        try:
            assert ssl.get_server_certificate(("127.0.0.1", int(again.url.rsplit(":", 1)[1]))) == served
        finally:
            await again.stop()
