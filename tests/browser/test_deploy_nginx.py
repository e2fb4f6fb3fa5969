"""Issue 14 #14: the documented deployment, run for real. Debian's nginx
terminating TLS (a certificate made here) with docs/nginx-callbot.conf, in
front of two nodes sharing a real redis-server; Chromium logs in through it
and calls the bot. Behind nginx the old code answered the browser's
WebSocket with 403 (it saw http, the browser's Origin said https)."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import expect

from tests.support.browser import BASE_ARGS, CHROMIUM, GRANT_MEDIA, SLOW, log_in
from tests.support.cluster import Node
from tests.support.nginx import NginxProcess, free_port, make_certificate, site_config
from tests.support.redis_process import RedisProcess
from webapp.auth import mint_token

pytestmark = [pytest.mark.redis, pytest.mark.slow]

NAME = "call.example.org"
SECRET = "deploy-test-secret-0123456789-abcdef"


async def test_two_nodes_behind_nginx_with_tls(playwright_instance, tmp_path):
    redis = RedisProcess(tmp_path / "redis")
    redis.start()
    nodes: list[Node] = []
    nginx = None
    browser = None
    try:
        # The flags docs/deploy-nginx.md gives every node.
        flags = ("--auth-secret", SECRET, "--trusted-proxy", "127.0.0.1", "--allowed-host", NAME,
                 "--talkback", "echo")
        nodes = [await Node.start(f"node-{i}", redis.url, tmp_path / f"node-{i}", extra=flags) for i in (1, 2)]
        cert, key = make_certificate(tmp_path / "tls", NAME)
        port = free_port()
        site = site_config(port, [n.port for n in nodes], cert, key, tmp_path / "nginx")
        nginx = NginxProcess(tmp_path / "nginx", site, port)
        nginx.start()

        browser = await playwright_instance.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=BASE_ARGS + [GRANT_MEDIA, f"--host-resolver-rules=MAP {NAME} 127.0.0.1"],
        )
        pages, tokens = {}, []
        for user in ("alice", "bob"):
            tokens.append(mint_token(SECRET, user))
            context = await browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 820})
            page = await context.new_page()
            page.set_default_timeout(SLOW)
            await page.goto(f"https://{NAME}:{port}/?token={tokens[-1]}")
            await log_in(page, user)
            pages[user] = page
        # Presence crosses nodes (whichever node nginx picked for each).
        await expect(pages["alice"].locator('#people li[data-username="bob"]')).to_have_count(1, timeout=SLOW)
        alice = pages["alice"]
        await alice.click('#people li[data-username="bot"] button')
        await expect(alice.locator("#call-state")).to_have_attribute("data-state", "connected", timeout=SLOW)
        await alice.click("#hangup-button")
        await expect(alice.locator("#call-state")).to_have_attribute("data-state", "ended", timeout=SLOW)

        # nginx's access log has the requests (a WebSocket's when it ends),
        # without their tokens; the nodes saw the browser's scheme, not
        # nginx's plain http, so its https Origin was let in.
        await browser.close()
        browser = None
        access = (tmp_path / "nginx" / "access.log").read_text()
        assert '"GET /ws?[query redacted]" 101' in access
        assert not any(token.split(".")[2] in access for token in tokens)
        logs = "".join(n.log.read_text() for n in nodes)
        assert "refused WebSocket from origin" not in logs
        assert "/ws?token=[redacted]" in logs
        assert not any(token.split(".")[2] in logs for token in tokens)  # no signature in any log
    finally:
        if browser is not None:
            await browser.close()
        if nginx is not None:
            nginx.stop()
        await asyncio.gather(*(n.stop() for n in nodes))
        redis.kill()
