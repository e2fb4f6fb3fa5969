"""An aiortc caller as its own process, for tests that put it in a network
namespace (tests/support/netns.py): logs in through the real signaling,
calls the bot, optionally sends a photo, and prints JSON lines::

    python -m tests.support.net_caller --url http://198.51.100.1:8080 --username ann \\
        [--trickle none|early|after-answer] [--end-of-candidates null|per-mid] \\
        [--bundle balanced|max-compat] [--photo BYTES] [--hold SECONDS] [--timeout SECONDS]

Events: ``login`` (with the ICE servers the server gave), ``answer``,
``connected`` (seconds from offer to connected, the caller's selected pair),
``photo`` (the bot's reply), ``result`` (``outcome``: connected or
not-connected, the bot's error codes, whether the bot closed the call). It
uses the ICE servers from the login reply, as the page does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack

from peer import compat
from tests.support.caller import PatternVideoTrack, strip_candidates
from tests.support.photos import PhotoCaller, make_jpeg
from tests.support.server import Client


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def by_section(candidates: list[dict[str, Any]]) -> list[tuple[str | None, int, list[dict[str, Any]]]]:
    sections: dict[int, tuple[str | None, int, list[dict[str, Any]]]] = {}
    for cand in candidates:
        sections.setdefault(cand["sdpMLineIndex"], (cand["sdpMid"], cand["sdpMLineIndex"], []))[2].append(cand)
    return [sections[k] for k in sorted(sections)]


async def trickle(client: Client, target: str, candidates: list[dict[str, Any]], style: str,
                  mids: list[tuple[str | None, int]]) -> None:
    """Send the candidates, then end of candidates: one ``null`` (Chromium), or
    ``""`` after each m-section's candidates and a final ``null`` (Firefox)."""
    async def send(candidate: dict[str, Any] | None) -> None:
        await client.send({"type": "candidate", "otherUsername": target, "candidate": candidate})

    if style == "per-mid":
        grouped = {index: cands for _, index, cands in by_section(candidates)}
        for mid, index in mids:
            for cand in grouped.get(index, []):
                await send(cand)
            await send({"candidate": "", "sdpMid": mid, "sdpMLineIndex": index})
    else:
        for cand in candidates:
            await send(cand)
    await send(None)


def offered_mids(sdp: str) -> list[tuple[str | None, int]]:
    out: list[tuple[str | None, int]] = []
    for line in sdp.split("\r\n"):
        if line.startswith("m="):
            out.append((None, len(out)))
        elif line.startswith("a=mid:") and out:
            out[-1] = (line[6:], out[-1][1])
    return out


async def main(args: argparse.Namespace) -> int:
    ws_url = args.url.replace("http", "ws", 1) + "/ws" + (f"?token={args.token}" if args.token else "")
    client = await Client.connect(ws_url)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    errors: list[str] = []
    closed = asyncio.Event()
    call_info: dict[str, Any] = {}

    async def read() -> None:
        while True:
            message = await client.recv(timeout=3600)
            if message.get("type") == "error":
                errors.append(message.get("code"))
            if message.get("type") == "close":
                closed.set()
            if message.get("type") == "call-info":
                call_info.update(message)
            await inbox.put(message)

    login = await client.login(args.username)
    servers = [] if args.no_ice_servers else login.get("iceServers", [])
    emit("login", iceServers=servers)
    reader = asyncio.get_running_loop().create_task(read())
    pc = RTCPeerConnection(RTCConfiguration(
        iceServers=[RTCIceServer(**s) for s in servers],
        bundlePolicy=RTCBundlePolicy(args.bundle),
    ))
    connected = asyncio.Event()
    pc.on("connectionstatechange", lambda: connected.set() if pc.connectionState == "connected" else None)
    pc.addTrack(PatternVideoTrack())
    pc.addTrack(AudioStreamTrack())
    photos_channel = pc.createDataChannel("photos")
    photos = PhotoCaller(photos_channel)
    outcome = "not-connected"
    try:
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        candidates: list[dict[str, Any]] = []
        if args.trickle != "none":
            sdp, candidates = strip_candidates(sdp)
        if args.bundle == "max-compat":
            # aiortc offers a BUNDLE group whatever its policy; without one the
            # answer keeps a transport per m-section, as with a max-compat browser.
            sdp = "\r\n".join(line for line in sdp.split("\r\n") if not line.startswith("a=group:BUNDLE"))
        mids = offered_mids(sdp)
        started = time.perf_counter()
        await client.send({"type": "offer", "otherUsername": args.target, "offer": {"type": "offer", "sdp": sdp}})
        if args.trickle == "early":
            # Right behind the offer, as browsers do (Firefox: ~1 ms later).
            await trickle(client, args.target, candidates, args.end_of_candidates, mids)

        async def answer() -> dict[str, Any]:
            while True:
                message = await inbox.get()
                if message.get("type") == "answer":
                    return message
                if message.get("type") == "error":
                    raise RuntimeError(f"refused: {message.get('code')}: {message.get('message')}")

        reply = await asyncio.wait_for(answer(), args.timeout)
        emit("answer", candidates=[l[2:] for l in reply["answer"]["sdp"].split("\r\n") if l.startswith("a=candidate:")])
        await pc.setRemoteDescription(RTCSessionDescription(**reply["answer"]))
        if args.trickle == "after-answer":
            await trickle(client, args.target, candidates, args.end_of_candidates, mids)
        await asyncio.wait_for(connected.wait(), args.timeout)
        outcome = "connected"
        emit("connected", seconds=round(time.perf_counter() - started, 4), pair=compat.selected_pair(pc))
        if args.photo:
            if photos_channel.readyState != "open":
                opened = asyncio.Event()
                photos_channel.on("open", opened.set)
                await asyncio.wait_for(opened.wait(), args.timeout)
            data = make_jpeg(args.photo)
            photos.send_photo("p1", data, name="net.jpg")
            emit("photo", reply=await photos.reply(args.timeout), size=len(data))
        if args.hold:
            await asyncio.sleep(args.hold)  # media flows meanwhile: this is the call's length
        await client.send({"type": "close", "otherUsername": args.target})
    except (asyncio.TimeoutError, RuntimeError) as exc:
        emit("failure", error=f"{type(exc).__name__}: {exc}", state=pc.connectionState,
             ice=pc.iceConnectionState)
    finally:
        # Give the bot's close (after a failed call) a moment to arrive, bounded.
        if outcome != "connected":
            try:
                await asyncio.wait_for(closed.wait(), args.close_wait)
            except asyncio.TimeoutError:
                pass
        emit("result", outcome=outcome, errors=errors, bot_closed=closed.is_set(),
             call_id=call_info.get("callId"))
        reader.cancel()
        await pc.close()
        await client.close()
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="net_caller")
    p.add_argument("--url", required=True)
    p.add_argument("--username", required=True)
    p.add_argument("--target", default="bot")
    p.add_argument("--trickle", choices=["none", "early", "after-answer"], default="none")
    p.add_argument("--end-of-candidates", choices=["null", "per-mid"], default="null")
    p.add_argument("--bundle", choices=[b.value for b in RTCBundlePolicy], default="balanced")
    p.add_argument("--no-ice-servers", action="store_true")
    p.add_argument("--token", default=None, help="a login token (servers with --auth-secret)")
    p.add_argument("--photo", type=int, default=0, help="send a JPEG of about this many bytes")
    p.add_argument("--hold", type=float, default=0.0, help="seconds to stay in the call")
    p.add_argument("--timeout", type=float, default=15.0)
    p.add_argument("--close-wait", type=float, default=0.0,
                   help="after a failed call, seconds to wait for the bot's close")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse(sys.argv[1:]))))
