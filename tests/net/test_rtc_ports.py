"""``--rtc-ports``: every ICE socket of a bot call in the range; a call that finds
no free port is refused with ``ports-exhausted`` and the others go on. And
the flags of the ICE group, with their environment variables."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import aioice.ice
import pytest

from peer import compat
from peer.compat import UnsupportedAiortcError
from peer.ice import client_ice_servers, rtc_configuration
from tests.support.caller import Caller, CallRefused
from tests.support.server import Client, running_server, test_config
from tests.support.wait import eventually
from webapp.flags import config_from_args
from webapp.keys import BOT

pytestmark = pytest.mark.timeout(120)

PORTS = (41000, 41009)


def _with_ports(tmp_path, ports):
    config = test_config(tmp_path)
    return replace(config, ice=replace(config.ice, rtc_ports=ports))


def _bot_ports(server, caller: str) -> set[int]:
    pc = server.app[BOT].calls[caller].pc
    gatherers = {t.receiver.transport.transport.iceGatherer for t in pc.getTransceivers()}
    return {c.port for g in gatherers for c in g.getLocalCandidates()}


def _answer_ports(sdp: str) -> set[int]:
    return {int(line.split()[5]) for line in sdp.split("\r\n") if line.startswith("a=candidate:")}


async def test_every_ice_socket_of_a_call_is_in_the_range(tmp_path):
    async with running_server(_with_ports(tmp_path, PORTS)) as server:
        clients = []
        for name in ("ann", "ben", "cid"):
            client = await Client.connect(server.ws_url)
            await client.login(name)
            caller = Caller(client)
            await caller.call()
            assert _answer_ports(caller.answer_sdp) <= set(range(PORTS[0], PORTS[1] + 1))
            assert _bot_ports(server, name) <= set(range(PORTS[0], PORTS[1] + 1))
            clients.append((client, caller))
        # Three calls, three different ports.
        assert len({p for name in ("ann", "ben", "cid") for p in _bot_ports(server, name)}) == 3
        for client, caller in clients:
            await caller.hangup()
            await client.close()


async def test_exhausted_range_refuses_the_new_call_and_the_others_go_on(tmp_path):
    port = PORTS[0]
    async with running_server(_with_ports(tmp_path, (port, port))) as server:
        ann = await Client.connect(server.ws_url)
        await ann.login("ann")
        first = Caller(ann)
        await first.call()
        assert _bot_ports(server, "ann") == {port}

        ben = await Client.connect(server.ws_url)
        await ben.login("ben")
        second = Caller(ben)
        with pytest.raises(CallRefused) as refused:
            await second.call()
        assert refused.value.code == "ports-exhausted"
        await second.pc.close()
        # The first call is untouched: still connected, and it ends normally.
        call = server.app[BOT].calls["ann"]
        assert call.pc.connectionState == "connected" and not call.ending
        await first.hangup()
        await asyncio.wait_for(call.ended.wait(), 10)

        # Its port is free again: the next call gets it.
        third = Caller(ben)
        await third.call()
        assert _bot_ports(server, "ben") == {port}
        await third.hangup()
        await eventually(lambda: not server.app[BOT].calls)
        metas = [json.loads(p.read_text()) for p in sorted(server.app[BOT].config.calls_dir.glob("*/meta.json"))]
        assert sorted(m["end_reason"] for m in metas) == ["caller-closed", "caller-closed", "ports-exhausted"]
        refused_meta = next(m for m in metas if m["end_reason"] == "ports-exhausted")
        assert refused_meta["caller"] == "ben" and refused_meta["connected_at"] is None
        assert any("--rtc-ports" in e for e in refused_meta["errors"])
        await ann.close()
        await ben.close()


async def test_the_range_binds_only_inside_its_block():
    loop = asyncio.get_running_loop()
    with compat.rtc_port_range(PORTS):
        inside = aioice.ice.asyncio.get_running_loop()
    outside = aioice.ice.asyncio.get_running_loop()
    assert inside is not loop and outside is loop


def test_the_version_check_names_a_changed_socket_call(monkeypatch):
    async def get_component_candidates(self, component, addresses, timeout=5):
        return []  # binds somewhere else now

    monkeypatch.setattr(aioice.ice.Connection, "get_component_candidates", get_component_candidates)
    with pytest.raises(UnsupportedAiortcError, match="get_component_candidates"):
        compat.check_versions()


# -- flags ---------------------------------------------------------------------------------

def test_rtc_ports_flag_and_environment(monkeypatch):
    assert config_from_args(["--rtc-ports", "40000-40199"]).ice.rtc_ports == (40000, 40199)
    monkeypatch.setenv("CALLBOT_RTC_PORTS", "41000-41001")
    assert config_from_args([]).ice.rtc_ports == (41000, 41001)
    for bad in ("5", "9-5", "0-10", "1-70000", "a-b"):
        with pytest.raises(SystemExit):
            config_from_args(["--rtc-ports", bad])


def test_every_flag_in_a_group_reads_its_environment_variable(monkeypatch):
    # Before: only top-level flags did (--host, --port, ...); --max-calls,
    # --ice-address and the rest silently ignored CALLBOT_*.
    monkeypatch.setenv("CALLBOT_MAX_CALLS", "3")
    monkeypatch.setenv("CALLBOT_ICE_ADDRESS", "127.0.0.1,::1")
    monkeypatch.setenv("CALLBOT_ANNOUNCE_ADDRESS", "198.51.100.1,2001:db8::1")
    monkeypatch.setenv("CALLBOT_ALLOW_PRIVATE_CANDIDATES", "1")
    monkeypatch.setenv("CALLBOT_TURN_SECRET", "s")
    monkeypatch.setenv("CALLBOT_AUTH_SECRET", "a" * 32)
    monkeypatch.setenv("CALLBOT_TURN_URL", "turn:public.example:3478")
    monkeypatch.setenv("CALLBOT_BOT_TURN_URL", "turn:10.0.0.5:3478?transport=udp,turn:10.0.0.5:3478?transport=tcp")
    config = config_from_args([])
    assert config.bot.max_calls == 3
    assert config.ice.addresses == ("127.0.0.1", "::1")
    assert config.ice.announce_addresses == ("198.51.100.1", "2001:db8::1")
    assert config.ice.allow_private_candidates is True
    assert config.turn.urls == ("turn:public.example:3478",)
    assert config.turn.for_bot == ("turn:10.0.0.5:3478?transport=udp", "turn:10.0.0.5:3478?transport=tcp")
    with pytest.raises(SystemExit):  # a usage error naming the address
        config_from_args(["--announce-address", "not-an-ip"])


def test_clients_and_the_bot_get_their_own_turn_urls():
    auth = ["--auth-secret", "a" * 32]
    config = config_from_args([*auth, "--turn-secret", "s", "--turn-url", "turn:public.example:3478",
                               "--bot-turn-url", "turn:10.0.0.5:3478?transport=tcp"])
    (client,) = client_ice_servers(config.ice, config.turn, "ann")
    assert client["urls"] == ["turn:public.example:3478"]
    assert client["username"].endswith(":ann")
    bot = rtc_configuration(config.ice, config.turn).iceServers
    assert [s.urls for s in bot] == ["turn:10.0.0.5:3478?transport=tcp"]
    assert bot[0].username.endswith(":bot")
    # Without --bot-turn-url, --turn-url serves both, as before.
    both = config_from_args([*auth, "--turn-secret", "s", "--turn-url", "turn:public.example:3478"])
    assert [s.urls for s in rtc_configuration(both.ice, both.turn).iceServers] == ["turn:public.example:3478"]
    assert compat.turn_servers(bot)[0]["turn_transport"] == "tcp"
