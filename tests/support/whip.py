"""WHIP and WHEP clients for tests: plain HTTP (aiohttp), aiortc peers, and
the real publishers (FFmpeg through PyAV, GStreamer's webrtcbin) run as
subprocesses.

Nothing is mocked: an aiortc publisher POSTs its offer to the real server,
trickles its candidates with PATCH when asked to, and media flows over
loopback; FFmpeg and GStreamer speak WHIP themselves (``whip_ffmpeg.py``,
``whip_gst.py`` next to this file).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from tests.support.caller import strip_candidates

HERE = Path(__file__).resolve().parent
SDP = "application/sdp"
SDPFRAG = "application/trickle-ice-sdpfrag"
#: Debian's python3, which has python3-gi (GStreamer) installed.
SYSTEM_PYTHON = "/usr/bin/python3"


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def sdpfrag(ufrag: str, pwd: str, candidates: list[dict[str, Any]], *, end: bool = False) -> str:
    """A trickle-ice-sdpfrag (RFC 8840) for ``candidates`` (RTCIceCandidateInit dicts)."""
    lines = [f"a=ice-ufrag:{ufrag}", f"a=ice-pwd:{pwd}"]
    by_mid: dict[str, list[str]] = {}
    for c in candidates:
        by_mid.setdefault(c["sdpMid"], []).append(c["candidate"])
    for mid, cands in by_mid.items():
        lines += ["m=audio 9 UDP/TLS/RTP/SAVPF 0", f"a=mid:{mid}"]
        lines += [f"a={c}" for c in cands]
    if end:
        if not by_mid:
            lines += ["m=audio 9 UDP/TLS/RTP/SAVPF 0", "a=mid:0"]
        lines.append("a=end-of-candidates")
    return "\r\n".join(lines) + "\r\n"


def ice_credentials(sdp: str) -> tuple[str, str]:
    ufrag = next(line.split(":", 1)[1] for line in sdp.splitlines() if line.startswith("a=ice-ufrag:"))
    pwd = next(line.split(":", 1)[1] for line in sdp.splitlines() if line.startswith("a=ice-pwd:"))
    return ufrag, pwd


@dataclass
class Created:
    """A 201 answer to a WHIP or WHEP POST."""

    location: str  # absolute URL of the session resource
    etag: str
    answer: str
    headers: Any


class WhipError(Exception):
    def __init__(self, status: int, body: str, headers: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers

    @property
    def code(self) -> str | None:
        try:
            return json.loads(self.body).get("error")
        except ValueError:
            return None


async def post_offer(http: aiohttp.ClientSession, url: str, offer: str, *, token: str | None = None,
                     headers: dict[str, str] | None = None) -> Created:
    async with http.post(url, data=offer.encode(), headers={"Content-Type": SDP, **bearer(token), **(headers or {})}) as r:
        body = await r.text()
        if r.status != 201:
            raise WhipError(r.status, body, r.headers)
        return Created(urljoin(url, r.headers["Location"]), r.headers["ETag"], body, r.headers)


class AiortcPeer:
    """An aiortc peer that publishes (WHIP) or views (WHEP) over HTTP."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.connected = asyncio.Event()
        self.failed = asyncio.Event()
        self.created: Created | None = None
        self.received: dict[str, MediaStreamTrack] = {}
        self.pc.on("connectionstatechange", self._on_state)
        self.pc.on("track", lambda t: self.received.__setitem__(t.kind, t))

    def _on_state(self) -> None:
        if self.pc.connectionState == "connected":
            self.connected.set()
        elif self.pc.connectionState in ("failed", "closed"):
            self.failed.set()

    async def offer(self, url: str, *, token: str | None = None, trickle: bool = False, timeout: float = 15) -> Created:
        """POST the offer; with ``trickle`` its candidates go in PATCHes after."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp = self.pc.localDescription.sdp
        candidates: list[dict[str, Any]] = []
        if trickle:
            sdp, candidates = strip_candidates(sdp)
        created = self.created = await post_offer(self.http, url, sdp, token=token)
        if trickle:
            ufrag, pwd = ice_credentials(sdp)
            await self.patch(sdpfrag(ufrag, pwd, candidates), token=token)
            await self.patch(sdpfrag(ufrag, pwd, [], end=True), token=token)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=created.answer, type="answer"))
        await asyncio.wait_for(self.connected.wait(), timeout)
        return created

    async def patch(self, body: str, *, token: str | None = None, if_match: str | None = None) -> int:
        assert self.created is not None
        headers = {"Content-Type": SDPFRAG, **bearer(token)}
        if if_match is not None:
            headers["If-Match"] = if_match
        async with self.http.patch(self.created.location, data=body.encode(), headers=headers) as r:
            if r.status != 204:
                raise WhipError(r.status, await r.text(), r.headers)
            return r.status

    async def delete(self, *, token: str | None = None) -> int:
        assert self.created is not None
        async with self.http.delete(self.created.location, headers=bearer(token)) as r:
            await r.read()
            return r.status

    async def close(self) -> None:
        await self.pc.close()


async def publisher(http: aiohttp.ClientSession, tracks: list[MediaStreamTrack]) -> AiortcPeer:
    """An aiortc WHIP publisher sending ``tracks`` (sendonly, as WHIP clients do)."""
    peer = AiortcPeer(http)
    for track in tracks:
        peer.pc.addTransceiver(track, direction="sendonly")
    return peer


def viewer(http: aiohttp.ClientSession, kinds: tuple[str, ...] = ("video", "audio")) -> AiortcPeer:
    """An aiortc WHEP viewer: receive-only transceivers."""
    peer = AiortcPeer(http)
    for kind in kinds:
        peer.pc.addTransceiver(kind, direction="recvonly")
    return peer


async def decoded_frames(track: MediaStreamTrack, count: int, timeout: float = 15) -> list[Any]:
    """The next ``count`` decoded frames of a received track."""
    frames: list[Any] = []

    async def read() -> None:
        while len(frames) < count:
            try:
                frames.append(await track.recv())
            except MediaStreamError:
                return

    await asyncio.wait_for(read(), timeout)
    return frames


# -- real publishers, as subprocesses -------------------------------------------------------


@dataclass
class PublisherRun:
    returncode: int
    output: str
    lines: list[str] = field(default_factory=list)

    def value(self, key: str) -> str | None:
        """The last ``KEY value`` line the publisher printed."""
        for line in reversed(self.lines):
            if line.startswith(key + " "):
                return line[len(key) + 1:]
        return None


async def run_publisher(cmd: list[str], timeout: float) -> PublisherRun:
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode(errors="replace") if out else ""
    return PublisherRun(proc.returncode if proc.returncode is not None else -9, text, text.splitlines())


def ffmpeg_command(url: str, *, seconds: float, token: str | None = None, size: str = "320x240",
                   extra: list[str] | None = None) -> list[str]:
    """FFmpeg's WHIP muxer (inside the PyAV wheel) publishing H.264 + Opus."""
    cmd = [sys.executable, str(HERE / "whip_ffmpeg.py"), url, "--seconds", str(seconds), "--size", size]
    if token:
        cmd += ["--token", token]
    return cmd + (extra or [])


def gst_command(url: str, *, seconds: float, token: str | None = None, size: str = "320x240") -> list[str]:
    """GStreamer's webrtcbin publishing VP8 + Opus, trickling with PATCH (Debian's python3-gi)."""
    cmd = [SYSTEM_PYTHON, str(HERE / "whip_gst.py"), url, "--seconds", str(seconds), "--size", size]
    if token:
        cmd += ["--token", token]
    return cmd


class EncodedLog:
    """A tap sink that keeps whether each encoded frame was a keyframe and
    lets a test await the first one."""

    def __init__(self) -> None:
        self.keyframes: list[bool] = []
        self.first = asyncio.Event()

    def on_frame(self, frame) -> None:
        self.keyframes.append(frame.keyframe)
        self.first.set()

    def on_end(self, tap) -> None:
        pass


def log_encoded_video(peer: AiortcPeer) -> EncodedLog:
    """Log the encoded video ``peer`` receives, never decoding it: aiortc's
    decoder gets nothing, so it cannot ask for a keyframe itself (it sends a
    PLI when it fails to decode)."""
    from peer.tap import EncodedFrameTap

    log = EncodedLog()

    def on_track(track: MediaStreamTrack) -> None:
        if track.kind == "video":
            receiver = next(t.receiver for t in peer.pc.getTransceivers() if t.receiver.track is track)
            EncodedFrameTap.attach(receiver, track, decode=False).subscribe(log)

    peer.pc.on("track", on_track)
    return log
