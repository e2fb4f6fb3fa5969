"""The bot behind a 1:1 NAT (issue 11, test 1): its router forwards only the
HTTP port and the ``--rtc-ports`` range to it; the caller sits behind its own
NAT that drops anything unsolicited, with no STUN. With ``--announce-address``
set to the router's outside address, an aiortc caller and Chromium connect,
record and send a photo; without it the call cannot connect, and the bot
gives it up after ``--connect-timeout`` and says so."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from tests.support.browser import SLOW, launch_chromium, log_in
from tests.support.netcall import run_caller, start_server
from tests.support.netns import BOT_PUBLIC, CROUTER_PUBLIC, RTC_PORTS, Topology
from tests.support.wait import eventually

pytestmark = [pytest.mark.slow, pytest.mark.net, pytest.mark.timeout(240)]

FLAGS = ("--rtc-ports", f"{RTC_PORTS[0]}-{RTC_PORTS[1]}", "--connect-timeout", "12")


def _bot_udp_ports(topo: Topology) -> set[int]:
    """Local ports of every UDP socket in the bot's namespace (the kernel's view)."""
    out = topo.run("bot", "ss", "-Huan").stdout
    return {int(line.split()[3].rsplit(":", 1)[1]) for line in out.splitlines() if line.strip()}


def _connected_call(server):
    calls = [m for m in server.calls() if m.get("connected_at")]
    return calls[-1] if calls else None


async def test_announced_address_aiortc_caller(netns_ready, tmp_path):
    async with Topology(bot_nat="forward", caller_nat=True) as topo:
        server = await start_server(topo, tmp_path, *FLAGS, "--announce-address", BOT_PUBLIC)
        caller = asyncio.get_running_loop().create_task(
            run_caller(topo, "--photo", "150000", "--hold", "3", "--timeout", "15"))
        await eventually(lambda: _connected_call(server), 20)
        # Every UDP socket the bot has open during the call is in the range
        # the router forwards (host candidates; no TURN here).
        ports = _bot_udp_ports(topo)
        assert ports and all(RTC_PORTS[0] <= p <= RTC_PORTS[1] for p in ports), ports
        run = await caller
        assert run.connected, run.describe() + server.log_text()
        (meta,) = await eventually(server.finished_calls, 20)
    # The caller reached the announced candidate; the bot learnt the
    # caller's NAT address from its checks (peer-reflexive).
    pair = run.event("connected")["pair"]
    assert (pair["remote"], pair["remote_address"].split(":")[0]) == ("host", BOT_PUBLIC), pair
    bot_pair = meta["quality"]["connect"]
    assert (bot_pair["remote"], bot_pair["remote_address"].split(":")[0]) == ("prflx", CROUTER_PUBLIC), bot_pair
    # Recorded, and the photo saved.
    assert run.event("photo")["reply"]["type"] == "photo-saved"
    assert [p["size"] for p in meta["photos"]] == [run.event("photo")["size"]]
    assert meta["recording"]["state"] == "complete" and meta["recording"]["duration"] > 1.5
    assert meta["end_reason"] == "caller-closed"


async def test_announced_address_chromium(netns_ready, tmp_path):
    from playwright.async_api import async_playwright, expect

    async with Topology(bot_nat="forward", caller_nat=True) as topo:
        server = await start_server(topo, tmp_path, *FLAGS, "--announce-address", BOT_PUBLIC)
        async with async_playwright() as pw:
            browser = await launch_chromium(pw, netns=topo.ns["caller"], directory=tmp_path / "chromium",
                                            insecure_origin=server.url)
            try:
                page = await (await browser.new_context()).new_page()
                page.set_default_timeout(SLOW)
                await page.goto(server.url)
                await log_in(page, "cleo")
                await page.click('#people li[data-username="bot"] button')
                await expect(page.locator("#call-state")).to_have_attribute("data-state", "connected", timeout=SLOW)
                await expect(page.locator("#snapshot-button")).to_be_enabled()
                await page.click("#snapshot-button")
                await expect(page.locator("#photo-status")).to_have_attribute("data-state", "saved", timeout=SLOW)
                sha256 = await page.locator("#call-photos li.photo-sent").first.get_attribute("data-sha256")
                # A couple of seconds in the recording (the live meta.json says so).
                await eventually(lambda: ((_connected_call(server) or {}).get("recording") or {}).get("duration", 0) > 1.5, 20)
                await page.click("#hangup-button")
                await expect(page.locator("#call-state")).to_have_attribute("data-state", "ended")
                (meta,) = await eventually(server.finished_calls, 20)
            finally:
                await browser.close()
    assert meta["caller"] == "cleo" and meta["end_reason"] == "caller-closed"
    assert [p["sha256"] for p in meta["photos"]] == [sha256]
    photo = server.data_dir / "calls" / meta["call_id"] / meta["photos"][0]["file"]
    assert hashlib.sha256(photo.read_bytes()).hexdigest() == sha256
    assert meta["recording"]["state"] == "complete" and meta["recording"]["duration"] > 1.5
    bot_pair = meta["quality"]["connect"]
    assert (bot_pair["local"], bot_pair["remote"]) == ("host", "prflx"), bot_pair
    assert bot_pair["remote_address"].split(":")[0] == CROUTER_PUBLIC


async def test_without_the_announced_address_the_call_cannot_connect(netns_ready, tmp_path):
    async with Topology(bot_nat="forward", caller_nat=True) as topo:
        server = await start_server(topo, tmp_path, "--rtc-ports", f"{RTC_PORTS[0]}-{RTC_PORTS[1]}",
                                    "--connect-timeout", "6")
        run = await run_caller(topo, "--timeout", "10", "--close-wait", "10")
        (meta,) = await eventually(server.finished_calls, 20)
    # The bot offered only its private address; the caller's checks towards
    # it go nowhere, and the bot's towards the caller's private address too.
    answer_hosts = {c.split()[4] for c in run.event("answer")["candidates"]}
    assert answer_hosts == {topo.bot_ip}
    assert not run.connected
    assert meta["end_reason"] == "connect-timeout" and meta["connected_at"] is None
    assert run.result["bot_closed"], run.describe()  # the bot told the caller it gave up
    assert meta["quality"] == {}  # never connected: nothing measured
