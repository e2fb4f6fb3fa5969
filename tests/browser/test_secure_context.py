"""Opening the page from another device. Over plain http from an address
that is not loopback the browser gives the page no camera: the page says so
at once, in plain words, with the https address to use. With --self-signed
the server speaks https with a certificate it made (and keeps), and calls
work from such an address.

The "other device" is the browser reaching the server at LAN_ADDRESS, which
the test puts on lo of its own network namespace.
"""

from __future__ import annotations

import ssl

from playwright.async_api import expect

from tests.support.browser import assert_no_overflow, call_bot, log_in, screenshot
from tests.support.process import ServerProcess

def _port(server: ServerProcess) -> int:
    return int(server.url.rsplit(":", 1)[1])


async def test_plain_http_from_another_address_says_why_there_is_no_camera(open_page, size, tmp_path, lan_address):
    server = await ServerProcess.start(tmp_path / "data", "--host", lan_address)
    try:
        page = await open_page(f"http://{lan_address}:{_port(server)}/", size=size)
        assert await page.evaluate("() => window.isSecureContext") is False
        notice = page.locator("#secure-notice")
        await expect(notice).to_be_visible()
        await expect(notice).to_contain_text("only over https")
        await expect(notice.locator("a")).to_have_attribute("href", f"https://{lan_address}:{_port(server)}/")
        await expect(notice).to_contain_text("--self-signed")
        await assert_no_overflow(page, "insecure page")
        await screenshot(page, f"70-insecure-context-{size}")

        # Signing in works; a call says the same thing instead of failing oddly.
        await log_in(page, f"amy-{size}")
        await page.click('#people li[data-username="bot"] button')
        await expect(page.locator("#call-state")).to_have_attribute("data-state", "failed")
        await expect(page.locator("#call-message")).to_contain_text("only over https")
        await expect(page.locator("#call-message")).to_have_attribute("data-kind", "error")
    finally:
        await server.stop()


async def test_self_signed_https_lets_another_address_call(open_page, size, tmp_path, lan_address):
    data = tmp_path / "data"
    server = await ServerProcess.start(data, "--self-signed", "--host", lan_address)
    try:
        assert server.url == f"https://{lan_address}:{_port(server)}"
        # The browser is told to accept the certificate, as a person clicking
        # through its warning does.
        page = await open_page(server.url + "/", size=size, ignore_https_errors=True)
        assert await page.evaluate("() => window.isSecureContext") is True
        await expect(page.locator("#secure-notice")).to_be_hidden()
        await log_in(page, f"bea-{size}")  # over wss
        await call_bot(page)
        await screenshot(page, f"71-self-signed-call-{size}")
        await page.click("#hangup-button")
        await expect(page.locator("#call-state")).to_have_attribute("data-state", "ended")
        served = ssl.get_server_certificate((lan_address, _port(server)))
    finally:
        await server.stop()

    # Kept in the data directory, the key private; it names the address the
    # server listens on. A restart serves the same certificate, so a browser
    # that accepted it once still does.
    from cryptography import x509

    kept = (data / "tls" / "self-signed.crt").read_bytes()
    assert ssl.PEM_cert_to_DER_cert(served) == ssl.PEM_cert_to_DER_cert(kept.decode())
    assert (data / "tls" / "self-signed.key").stat().st_mode & 0o077 == 0
    names = x509.load_pem_x509_certificate(kept).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert lan_address in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    if size == "desktop":
        again = await ServerProcess.start(data, "--self-signed", "--host", lan_address)
        try:
            assert ssl.get_server_certificate((lan_address, _port(again))) == served
        finally:
            await again.stop()
