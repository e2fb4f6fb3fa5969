"""An aiortc caller for tests: logs in through the real signaling and calls."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack, VideoStreamTrack
from av import VideoFrame

from tests.support.server import Client

VIDEO_CLOCK = 90000


class PatternVideoTrack(VideoStreamTrack):
    """Solid colour frames with the frame number encoded in the top rows, so a
    receiver can check what it got. Colour cycles every ``period`` frames."""

    COLOURS = [(255, 0, 0), (0, 200, 0), (0, 0, 255)]  # RGB

    def __init__(self, width: int = 320, height: int = 240, fps: int = 30, colour: tuple[int, int, int] | None = None) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.colour = colour
        self.count = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        colour = self.colour or self.COLOURS[(self.count // self.fps) % len(self.COLOURS)]
        image = np.empty((self.height, self.width, 3), dtype=np.uint8)
        image[:, :] = colour
        frame = VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        self.count += 1
        return frame


def strip_candidates(sdp: str) -> tuple[str, list[dict[str, Any]]]:
    """Remove a=candidate lines from an SDP, returning them as trickle inits."""
    lines = sdp.split("\r\n")
    out: list[str] = []
    candidates: list[dict[str, Any]] = []
    mline = -1
    mid = None
    for line in lines:
        if line.startswith("m="):
            mline += 1
            mid = None
        if line.startswith("a=mid:"):
            mid = line[6:]
        if line.startswith("a=candidate:"):
            candidates.append({"candidate": line[2:], "sdpMid": mid, "sdpMLineIndex": mline})
            continue
        if line.startswith("a=end-of-candidates"):
            continue
        out.append(line)
    return "\r\n".join(out), candidates


class CallRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class Caller:
    def __init__(self, client: Client, *, tracks: list[MediaStreamTrack] | None = None) -> None:
        self.client = client
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.connected = asyncio.Event()
        self.failed = asyncio.Event()
        self.received: dict[str, MediaStreamTrack] = {}
        self.answer_sdp: str | None = None
        for track in tracks if tracks is not None else [PatternVideoTrack(), AudioStreamTrack()]:
            self.pc.addTrack(track)
        self.pc.on("connectionstatechange", self._on_state)
        self.pc.on("track", lambda t: self.received.__setitem__(t.kind, t))

    def _on_state(self) -> None:
        if self.pc.connectionState == "connected":
            self.connected.set()
        elif self.pc.connectionState in ("failed", "closed"):
            self.failed.set()

    async def call(self, target: str = "bot", *, trickle: bool = False, timeout: float = 10) -> float:
        """Offer, answer, connect. Returns seconds from offer sent to connected."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp = self.pc.localDescription.sdp
        candidates: list[dict[str, Any]] = []
        if trickle:
            sdp, candidates = strip_candidates(sdp)
        started = time.perf_counter()
        await self.client.send({"type": "offer", "otherUsername": target, "offer": {"type": "offer", "sdp": sdp}})
        for cand in candidates:
            await self.client.send({"type": "candidate", "otherUsername": target, "candidate": cand})
        if trickle:
            await self.client.send({"type": "candidate", "otherUsername": target, "candidate": None})
        answer = await self._answer_or_error(target, timeout)
        self.answer_sdp = answer["answer"]["sdp"]
        await self.pc.setRemoteDescription(RTCSessionDescription(**answer["answer"]))
        await asyncio.wait_for(self.connected.wait(), timeout)
        return time.perf_counter() - started

    async def _answer_or_error(self, target: str, timeout: float) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            while True:
                m = await self.client.recv(timeout)
                if m.get("type") == "answer" and m.get("username") == target:
                    return m
                if m.get("type") == "error" and m.get("username") in (target, None):
                    raise CallRefused(m["code"], m.get("message", ""))
        return await asyncio.wait_for(wait(), timeout)

    async def hangup(self, target: str = "bot") -> None:
        await self.client.send({"type": "close", "otherUsername": target})
        await self.pc.close()
