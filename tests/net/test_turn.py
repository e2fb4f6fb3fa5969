"""Calls through a real relay (issue 11, test 2): no path at all between the
caller and the bot (both behind NATs that drop anything unsolicited, no
STUN), both reach a coturn (Debian's, ``use-auth-secret`` with the secret
given to ``--turn-secret``) in a third namespace. Over UDP; then with every
UDP packet from the bot dropped by its router, where the bot's TCP TURN URL
(``--bot-turn-url ...?transport=tcp``, next to the UDP one) carries the call.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.support.coturn import SECRET, Coturn, turn_url
from tests.support.netcall import run_caller, start_server
from tests.support.netns import RTC_PORTS, TURN_PUBLIC, Topology
from tests.support.wait import eventually
from webapp.auth import mint_token

pytestmark = [pytest.mark.slow, pytest.mark.net, pytest.mark.timeout(240)]

AUTH = "auth-secret-for-net-tests-0123456789"
BASE = ("--auth-secret", AUTH, "--turn-secret", SECRET, "--rtc-ports", f"{RTC_PORTS[0]}-{RTC_PORTS[1]}",
        "--turn-url", turn_url("udp"))


def _bot_udp_ports(topo: Topology) -> set[int]:
    out = topo.run("bot", "ss", "-Huan").stdout
    return {int(line.split()[3].rsplit(":", 1)[1]) for line in out.splitlines() if line.strip()}


def _bot_tcp_peers(topo: Topology) -> set[str]:
    out = topo.run("bot", "ss", "-Htn", "state", "established").stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


async def _call(topo, server, *args: str):
    return await run_caller(topo, "--token", mint_token(AUTH, "ann"), "--photo", "100000", *args)


def _connected(server):
    calls = [m for m in server.calls() if m.get("connected_at")]
    return calls[-1] if calls else None


async def test_relay_over_udp(netns_ready, tmp_path):
    async with Topology(bot_nat="masquerade", caller_nat=True, turn=True) as topo:
        coturn = await Coturn.start(topo, tmp_path / "coturn")
        try:
            server = await start_server(topo, tmp_path, *BASE, "--connect-timeout", "15")
            caller = asyncio.get_running_loop().create_task(_call(topo, server, "--hold", "2", "--timeout", "20"))
            await eventually(lambda: _connected(server), 30)
            # The bot's socket towards the relay is in --rtc-ports too.
            ports = _bot_udp_ports(topo)
            assert ports and all(RTC_PORTS[0] <= p <= RTC_PORTS[1] for p in ports), ports
            run = await caller
            (meta,) = await eventually(server.finished_calls, 20)
        finally:
            await coturn.stop()
    assert run.connected, run.describe() + server.log_text()
    # Clients got short-lived credentials for the relay from the login reply.
    (servers,) = run.event("login")["iceServers"]
    assert servers["urls"] == [turn_url("udp")] and servers["username"].endswith(":ann")
    pair = meta["quality"]["connect"]
    assert "relay" in (pair["local"], pair["remote"]), pair
    assert pair["protocol"] == "udp"
    assert run.event("photo")["reply"]["type"] == "photo-saved"
    assert meta["recording"]["duration"] > 1


async def test_relay_over_tcp_when_the_bots_udp_is_blocked(netns_ready, tmp_path):
    async with Topology(bot_nat="masquerade", caller_nat=True, turn=True) as topo:
        topo.block_udp_from_bot()
        coturn = await Coturn.start(topo, tmp_path / "coturn")
        try:
            server = await start_server(topo, tmp_path, *BASE, "--connect-timeout", "15",
                                        "--bot-turn-url", turn_url("udp"), "--bot-turn-url", turn_url("tcp"))
            caller = asyncio.get_running_loop().create_task(_call(topo, server, "--hold", "2", "--timeout", "20"))
            await eventually(lambda: _connected(server), 30)
            assert f"{TURN_PUBLIC}:3478" in _bot_tcp_peers(topo)
            run = await caller
            (meta,) = await eventually(server.finished_calls, 20)
        finally:
            await coturn.stop()
    assert run.connected, run.describe() + server.log_text()
    # Clients still get only --turn-url; the bot's own URLs are its business.
    assert run.event("login")["iceServers"][0]["urls"] == [turn_url("udp")]
    pair = meta["quality"]["connect"]
    assert (pair["local"], pair["protocol"]) == ("relay", "tcp"), pair
    assert run.event("photo")["reply"]["type"] == "photo-saved"


async def test_with_udp_blocked_a_udp_only_bot_cannot_connect(netns_ready, tmp_path):
    # What the TCP URL is for: the same network, the bot with its UDP URL only.
    async with Topology(bot_nat="masquerade", caller_nat=True, turn=True) as topo:
        topo.block_udp_from_bot()
        coturn = await Coturn.start(topo, tmp_path / "coturn")
        try:
            server = await start_server(topo, tmp_path, *BASE, "--connect-timeout", "8")
            run = await _call(topo, server, "--timeout", "12", "--close-wait", "10")
            (meta,) = await eventually(server.finished_calls, 20)
        finally:
            await coturn.stop()
    assert not run.connected
    assert not [c for c in run.event("answer")["candidates"] if " typ relay" in c]  # no relay for the bot
    assert meta["end_reason"] in ("connect-timeout", "ice-failed") and meta["connected_at"] is None
