"""Real aiortc peers over loopback, and tracks whose pictures say which frame they are.

Nothing here is mocked: two RTCPeerConnections in one process exchange their
local descriptions directly, and media goes through ICE, DTLS and SRTP on
127.0.0.1. Two test-only adjustments, both explained where they are made:
ICE gathers 127.0.0.1 (aioice skips it), and senders wait until the other
side's receivers have started, so a count of sent frames is a count of frames
the receiver could have seen.
"""

from __future__ import annotations

import asyncio
import fractions
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import av
import cv2
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
)
from aiortc.mediastreams import MediaStreamError

from media.storage import sha256_file
from peer.compat import restrict_host_addresses

FPS = 30
AUDIO_RATE = 48000
AUDIO_SAMPLES = 960  # 20 ms, what browsers send

# BGR colours far apart from each other, so lossy coding cannot confuse them.
PALETTE = [
    (0, 0, 255),
    (0, 255, 0),
    (255, 0, 0),
    (0, 255, 255),
    (255, 0, 255),
    (255, 255, 0),
    (255, 255, 255),
    (0, 0, 0),
]
CODE_BITS = 12


def color_for_frame(index: int) -> tuple[int, int, int]:
    """The background colour of frame ``index``: changes once a second."""
    return PALETTE[(index // FPS) % len(PALETTE)]


def draw_pattern(index: int, width: int, height: int) -> np.ndarray:
    """A BGR picture: a solid colour, and the frame number in binary along the top."""
    img = np.empty((height, width, 3), np.uint8)
    img[:] = color_for_frame(index)
    band = height // 5
    cell = width // CODE_BITS
    for bit in range(CODE_BITS):
        value = 255 if (index >> (CODE_BITS - 1 - bit)) & 1 else 0
        # Grey code cells on a mid-grey band, away from the palette colours.
        img[:band, bit * cell : (bit + 1) * cell] = value
    return img


def read_pattern(img: np.ndarray) -> tuple[int, tuple[int, int, int]]:
    """Frame number and mean background colour (BGR) of a decoded picture."""
    height, width = img.shape[:2]
    band = height // 5
    cell = width // CODE_BITS
    index = 0
    for bit in range(CODE_BITS):
        y, x = band // 2, bit * cell + cell // 2
        patch = img[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3]
        index = (index << 1) | int(patch.mean() > 127)
    body = img[band + (height - band) // 4 : height - (height - band) // 4, width // 4 : 3 * width // 4]
    mean = tuple(int(v) for v in body.reshape(-1, 3).mean(axis=0))
    return index, mean  # type: ignore[return-value]


def nearest_palette(bgr: tuple[int, int, int]) -> int:
    return min(
        range(len(PALETTE)),
        key=lambda i: sum((a - b) ** 2 for a, b in zip(PALETTE[i], bgr)),
    )


class _PacedTrack(MediaStreamTrack):
    """Paces frames in media time once ``start`` is set; ends after ``count`` frames."""

    def __init__(self, start: asyncio.Event, count: int, period: float) -> None:
        super().__init__()
        self._start = start
        self._count = count
        self._period = period
        self._t0: float | None = None
        self.sent = 0
        self.done = asyncio.Event()

    async def _next_slot(self) -> int:
        if self.sent >= self._count:
            self.done.set()
            self.stop()
            raise MediaStreamError
        await self._start.wait()
        loop = asyncio.get_running_loop()
        if self._t0 is None:
            self._t0 = loop.time()
        # Media pacing, not waiting-for-something: the sender must produce
        # frames at the rate a camera would.
        delay = self._t0 + self.sent * self._period - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        index = self.sent
        self.sent += 1
        return index


class PatternVideoTrack(_PacedTrack):
    kind = "video"

    def __init__(
        self,
        start: asyncio.Event,
        count: int,
        size: tuple[int, int] | Callable[[int], tuple[int, int]] = (480, 360),
    ) -> None:
        super().__init__(start, count, 1 / FPS)
        self._size = size

    def size_of(self, index: int) -> tuple[int, int]:
        return self._size(index) if callable(self._size) else self._size

    async def recv(self) -> av.VideoFrame:
        index = await self._next_slot()
        width, height = self.size_of(index)
        frame = av.VideoFrame.from_ndarray(draw_pattern(index, width, height), format="bgr24")
        frame.pts = index * (90000 // FPS)
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


class ToneAudioTrack(_PacedTrack):
    kind = "audio"

    def __init__(self, start: asyncio.Event, count: int) -> None:
        super().__init__(start, count, AUDIO_SAMPLES / AUDIO_RATE)

    async def recv(self) -> av.AudioFrame:
        index = await self._next_slot()
        t = (np.arange(AUDIO_SAMPLES) + index * AUDIO_SAMPLES) / AUDIO_RATE
        tone = (8000 * np.sin(2 * math.pi * 440 * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(
            np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = AUDIO_RATE
        frame.pts = index * AUDIO_SAMPLES
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        return frame


def use_loopback_ice() -> None:
    """Make ICE gather 127.0.0.1 only, as the server's ``--ice-address 127.0.0.1``.

    aioice's get_host_addresses() skips 127.0.0.1, so on a loopback-only
    machine (the test suite runs in one) there would be no candidate at all.
    """
    restrict_host_addresses(("127.0.0.1",))


class ReceiveWatch:
    """Signals when receivers have started (aiortc has no event for it).

    aiortc starts the sender and the receiver of a connection one after the
    other in the same task, so the first RTP packets can reach a receiver
    that is not registered yet and be discarded. Test senders wait for this
    so that every frame they count was receivable.
    """

    def __init__(self, monkeypatch) -> None:
        self.started: dict[int, asyncio.Event] = {}
        original = RTCRtpReceiver.receive
        watch = self

        async def receive(receiver, parameters):
            await original(receiver, parameters)
            watch.event_for(receiver).set()

        monkeypatch.setattr(RTCRtpReceiver, "receive", receive)

    def event_for(self, receiver: RTCRtpReceiver) -> asyncio.Event:
        return self.started.setdefault(id(receiver), asyncio.Event())

    async def wait(self, pc: RTCPeerConnection, timeout: float = 10.0) -> None:
        events = [self.event_for(t.receiver) for t in pc.getTransceivers()]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), timeout)


async def connect(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    """Offer/answer exchanged in-process, with complete (gathered) descriptions."""
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


def prefer_codec(pc: RTCPeerConnection, kind: str, mime: str) -> None:
    for transceiver in pc.getTransceivers():
        if transceiver.kind == kind:
            caps = RTCRtpSender.getCapabilities(kind).codecs
            preferred = [c for c in caps if c.mimeType.lower() == mime.lower()]
            transceiver.setCodecPreferences(preferred + [c for c in caps if c not in preferred])


@dataclass
class LoopbackCall:
    """A caller that sends pattern video and a tone to a bot-like answerer."""

    caller: RTCPeerConnection
    bot: RTCPeerConnection
    video: PatternVideoTrack | None
    audio: ToneAudioTrack | None
    start: asyncio.Event
    tracks: list = field(default_factory=list)  # (track, receiver) seen by the bot

    @property
    def senders_done(self) -> list[asyncio.Event]:
        return [t.done for t in (self.video, self.audio) if t is not None]

    async def close(self) -> None:
        await self.caller.close()
        await self.bot.close()


async def open_call(
    watch: ReceiveWatch,
    *,
    seconds: float,
    video_codec: str = "video/VP8",
    video: bool = True,
    audio: bool = True,
    size: tuple[int, int] | Callable[[int], tuple[int, int]] = (480, 360),
    on_track: Callable[[MediaStreamTrack, RTCRtpReceiver], None] | None = None,
    before_answer: Callable[[RTCPeerConnection], None] | None = None,
    caller_on_track: Callable[[MediaStreamTrack, RTCRtpReceiver], None] | None = None,
) -> LoopbackCall:
    """Connect a caller to a bot; the caller's media starts when the bot can receive."""
    start = asyncio.Event()
    caller = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    bot = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    vtrack = PatternVideoTrack(start, round(seconds * FPS), size) if video else None
    atrack = ToneAudioTrack(start, round(seconds * AUDIO_RATE / AUDIO_SAMPLES)) if audio else None
    if atrack is not None:
        caller.addTrack(atrack)
    if vtrack is not None:
        caller.addTrack(vtrack)
        prefer_codec(caller, "video", video_codec)
    call = LoopbackCall(caller, bot, vtrack, atrack, start)

    if caller_on_track is not None:

        @caller.on("track")
        def _on_caller_track(track: MediaStreamTrack) -> None:
            receiver = next(t.receiver for t in caller.getTransceivers() if t.receiver.track is track)
            caller_on_track(track, receiver)

    @bot.on("track")
    def _on_track(track: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in bot.getTransceivers() if t.receiver.track is track)
        call.tracks.append((track, receiver))
        if on_track is not None:
            on_track(track, receiver)

    await caller.setLocalDescription(await caller.createOffer())
    await bot.setRemoteDescription(caller.localDescription)
    if before_answer is not None:
        # Where a bot adds its outgoing tracks: after the offer's track events.
        before_answer(bot)
    await bot.setLocalDescription(await bot.createAnswer())
    await caller.setRemoteDescription(bot.localDescription)
    await watch.wait(bot)
    if caller_on_track is not None:
        await watch.wait(caller)
    start.set()
    return call


async def wait_senders_done(call: LoopbackCall, seconds: float) -> None:
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in call.senders_done)), seconds)


class CountFrames:
    """A tap sink that lets a test await a number of frames."""

    def __init__(self) -> None:
        self.count = 0
        self._targets: list[tuple[int, asyncio.Event]] = []

    def on_frame(self, frame) -> None:
        self.count += 1
        for target, event in self._targets:
            if self.count >= target:
                event.set()

    def on_end(self, tap) -> None:
        pass

    async def wait_for(self, count: int, timeout: float) -> None:
        if self.count >= count:
            return
        event = asyncio.Event()
        self._targets.append((count, event))
        await asyncio.wait_for(event.wait(), timeout)


@dataclass
class RecordingReport:
    """What PyAV finds in a recording."""

    codecs: dict[str, str]
    duration: float | None  # container duration, None if the file was cut short
    video_packets: int
    audio_packets: int
    first_video_keyframe: bool
    video_end: float  # pts of the last video packet, seconds
    audio_end: float
    indices: list[int]  # frame numbers read from the decoded pictures
    sizes: set[tuple[int, int]]
    offsets: list[float]  # pts - frame number / FPS, per decoded frame


def inspect_recording(path, *, decode: bool = True) -> RecordingReport:
    with av.open(str(path)) as container:
        codecs = {s.type: s.codec_context.name for s in container.streams}
        duration = container.duration / 1_000_000 if container.duration else None
        counts = {"video": 0, "audio": 0}
        ends = {"video": 0.0, "audio": 0.0}
        first_key = None
        for packet in container.demux():
            if packet.size == 0 or packet.pts is None:
                continue
            kind = packet.stream.type
            counts[kind] += 1
            ends[kind] = max(ends[kind], float(packet.pts * packet.time_base))
            if kind == "video" and first_key is None:
                first_key = packet.is_keyframe
    indices: list[int] = []
    sizes: set[tuple[int, int]] = set()
    offsets: list[float] = []
    if decode and "video" in codecs:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                index, _ = read_pattern(frame.to_ndarray(format="bgr24"))
                indices.append(index)
                sizes.add((frame.width, frame.height))
                offsets.append(float(frame.pts * frame.time_base) - index / FPS)
    return RecordingReport(
        codecs=codecs,
        duration=duration,
        video_packets=counts["video"],
        audio_packets=counts["audio"],
        first_video_keyframe=bool(first_key),
        video_end=ends["video"],
        audio_end=ends["audio"],
        indices=indices,
        sizes=sizes,
        offsets=offsets,
    )


def check_pictures(call_dir, section, *, at_least: int) -> None:
    frames = [f for f in section["files"] if f["kind"] == "frame"]
    assert len(frames) >= at_least
    for entry in frames:
        path = call_dir.file(entry["name"])
        assert sha256_file(path) == entry["sha256"] and path.stat().st_size == entry["size"]
        image = cv2.imread(str(path))
        assert image is not None and image.shape[:2] == (entry["height"], entry["width"])
        index, color = read_pattern(image)
        # The picture shows the frame sent at that time, in its colour.
        assert nearest_palette(color) == (index // FPS) % 8, (entry, index, color)
        assert abs(index / FPS - entry["t"]) < 0.1, (entry, index)
    times = [f["t"] for f in frames]
    assert times == sorted(times)
