"""Candidates trickled right behind the offer reach the bot's call, in order,
and Firefox's per-m-section end-of-candidates does not end them early.

The topologies make the bot's own checks towards the caller's trickled
candidates the only way to connect: the bot's router forwards no UDP, so
the caller's checks towards the bot's candidates never arrive, and the bot
can only learn where the caller is from the candidates it was sent.

To see these fail on the code before the fix (the parent of 1367d45)::

    git worktree add /tmp/old 1b827a6
    CALLBOT_TEST_SERVER_ROOT=/tmp/old scripts/test tests/net/test_trickle.py
"""

from __future__ import annotations

import pytest

from tests.support.coturn import Coturn
from tests.support.netcall import run_caller, start_server
from tests.support.netns import BOT_PUBLIC, CALLER_PUBLIC, CROUTER_PUBLIC, TURN_PUBLIC, Topology
from tests.support.wait import eventually

pytestmark = [pytest.mark.slow, pytest.mark.net, pytest.mark.timeout(180)]


def _bot_pair(server) -> dict:
    meta = server.finished_calls()[-1]
    return (meta.get("quality") or {}).get("connect") or {}


async def _finished(server) -> list:
    return await eventually(server.finished_calls, 20)


async def test_early_trickled_candidates_connect_through_the_bots_checks(netns_ready, tmp_path):
    # The caller is public; the bot sits behind a NAT that lets in only what
    # answers its own packets.
    async with Topology(bot_nat="masquerade") as topo:
        server = await start_server(topo, tmp_path, "--connect-timeout", "12")
        run = await run_caller(topo, "--trickle", "early", "--timeout", "15", "--close-wait", "5")
        assert run.connected, run.describe() + server.log_text()
        await _finished(server)
    pair = _bot_pair(server)
    # The bot paired with the trickled host candidate itself, not with an
    # address it learned from an incoming check (that would be prflx).
    assert (pair.get("remote"), pair.get("remote_address", "").split(":")[0]) == ("host", CALLER_PUBLIC), pair
    caller_pair = run.event("connected")["pair"]
    assert caller_pair["remote"] == "prflx" and caller_pair["remote_address"].startswith(BOT_PUBLIC), caller_pair


async def test_early_trickle_through_two_nats_connects(netns_ready, tmp_path):
    # Both behind NATs that drop unsolicited packets (coturn as the STUN
    # server): the caller's checks open its own NAT towards the bot, and
    # only the bot's checks towards the caller's trickled srflx candidate
    # get through.
    async with Topology(bot_nat="masquerade", caller_nat=True, turn=True) as topo:
        coturn = await Coturn.start(topo, tmp_path / "coturn")
        try:
            server = await start_server(topo, tmp_path, "--connect-timeout", "12",
                                        "--stun", f"stun:{TURN_PUBLIC}:3478")
            run = await run_caller(topo, "--trickle", "early", "--timeout", "15", "--close-wait", "5")
            assert run.connected, run.describe() + server.log_text()
            await _finished(server)
        finally:
            await coturn.stop()
    assert run.event("login")["iceServers"] == [{"urls": [f"stun:{TURN_PUBLIC}:3478"]}]
    pair = _bot_pair(server)
    assert (pair.get("remote"), pair.get("remote_address", "").split(":")[0]) == ("srflx", CROUTER_PUBLIC), pair


@pytest.mark.parametrize("bundle", ["max-compat", "balanced"])
async def test_end_of_candidates_per_m_section(netns_ready, tmp_path, bundle):
    # Firefox's form: each m-section's candidates, then {"candidate": "",
    # "sdpMid": mid}, then a final null. Without BUNDLE (max-compat) every
    # section has its own transport; ending candidates for all of them at
    # the first "" would leave the others with none.
    async with Topology(bot_nat="masquerade") as topo:
        server = await start_server(topo, tmp_path, "--connect-timeout", "12")
        run = await run_caller(topo, "--trickle", "after-answer", "--end-of-candidates", "per-mid",
                               "--bundle", bundle, "--hold", "2", "--timeout", "15", "--close-wait", "5")
        assert run.connected, run.describe() + server.log_text()
        meta = (await _finished(server))[-1]
    assert "bad-candidate" not in run.result["errors"]
    # The bot's side connected too (every transport, without BUNDLE), and
    # the call lasted until the caller hung up.
    assert meta["connected_at"] is not None and meta["end_reason"] == "caller-closed", meta
    assert _bot_pair(server).get("remote") == "host"
