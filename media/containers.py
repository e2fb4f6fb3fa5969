"""Files the recorder writes: passthrough Matroska/WebM and transcoded MP4.

Everything here runs in the recorder's worker thread, never on the event loop.

Crash safety comes from the container layout, not from finishing the file:
Matroska is written with an unknown-size segment and a cluster every
``flush_interval`` seconds, and MP4 as fragments of the same length, with
``flush_packets`` so each cluster or fragment reaches the file as soon as it
is complete. A process killed at any moment leaves a file that plays up to
the last complete cluster; a clean close adds the cues/index and duration.
"""

from __future__ import annotations

import fractions
import io
import logging
import struct
from pathlib import Path
from typing import Any

import av

from media.frames import EncodedFrame

logger = logging.getLogger(__name__)

MS = fractions.Fraction(1, 1000)

# The encoders whose codec contexts serve as stream templates. aiortc itself
# needs each of them (its VP8, H.264 and Opus encoders), so they exist
# wherever aiortc runs.
_TEMPLATE_ENCODERS = {"VP8": "libvpx", "H264": "libx264", "opus": "libopus"}
PASSTHROUGH_CODECS = frozenset(_TEMPLATE_ENCODERS)


def opus_head(channels: int = 2, pre_skip: int = 0, rate: int = 48000) -> bytes:
    """The Opus identification header Matroska stores as CodecPrivate (RFC 7845 section 5.1).

    WebRTC Opus is always negotiated as 2 channels at 48 kHz (RFC 7587
    section 7). Pre-skip is 0: the stream was joined live, there is no encoder
    start-up to trim, and trimming would shift audio against video.
    """
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, rate, 0, 0)


def _muxer_options(container: str, flush_interval: float) -> dict[str, str]:
    # flush_packets: write to the file after every packet instead of
    # filling a 32 kB buffer (without it a killed process can leave only a
    # header). max_interleave_delta: when one track pauses, ffmpeg would
    # otherwise hold the other's packets for up to 10 s.
    options = {
        "flush_packets": "1",
        "max_interleave_delta": str(int(flush_interval * 1_000_000)),
    }
    if container in ("webm", "matroska"):
        options["cluster_time_limit"] = str(int(flush_interval * 1000))
    else:
        # delay_moov: the moov (with the edit lists that place each track's
        # start, e.g. AAC priming or audio starting before video) is written
        # with the first fragment instead of before any packet; without it
        # every track is forced to start at 0 and the first frame stretched.
        options["movflags"] = "frag_keyframe+empty_moov+delay_moov+default_base_moof"
        options["frag_duration"] = str(int(flush_interval * 1_000_000))
    return options


class PassthroughMuxer:
    """Encoded frames into Matroska (WebM when the codecs allow), unchanged."""

    def __init__(self, directory: Path, firsts: dict[str, EncodedFrame], flush_interval: float) -> None:
        codecs = {kind: f.codec for kind, f in firsts.items()}
        unsupported = {k: c for k, c in codecs.items() if c not in PASSTHROUGH_CODECS}
        if unsupported:
            raise ValueError(f"cannot record {unsupported} without transcoding")
        # WebM is Matroska restricted to VP8/VP9/AV1 and Vorbis/Opus; H.264
        # needs plain Matroska (RFC 9559).
        self.container = "webm" if set(codecs.values()) <= {"VP8", "opus"} else "matroska"
        self.name = "recording.webm" if self.container == "webm" else "recording.mkv"
        self.path = directory / self.name
        self.codecs = codecs
        self._out = av.open(
            str(self.path), "w", format=self.container,
            options=_muxer_options(self.container, flush_interval),
        )
        # Streams are made from encoder contexts of a scratch container, which
        # are never opened: add_mux_stream() cannot carry CodecPrivate
        # (OpusHead, or H.264 SPS/PPS), and an opened encoder would cost CPU.
        scratch = av.open(io.BytesIO(), "w", format="matroska")
        self._streams: dict[str, Any] = {}
        try:
            for kind in sorted(firsts):  # audio before video: stable track order
                first = firsts[kind]
                template = scratch.add_stream(_TEMPLATE_ENCODERS[first.codec])
                stream = self._out.add_stream_from_template(template, opaque=True)
                ctx = stream.codec_context
                if kind == "video":
                    ctx.width, ctx.height = first.width or 0, first.height or 0
                    ctx.pix_fmt = "yuv420p"
                    if first.codec == "H264":
                        # Annex-B SPS+PPS; the Matroska muxer turns it into
                        # avcC and the frames into length-prefixed NAL units.
                        ctx.extradata = first.parameter_sets
                else:
                    ctx.sample_rate = 48000
                    ctx.layout = "stereo"
                    ctx.extradata = opus_head()
                stream.time_base = MS
                self._streams[kind] = stream
        finally:
            scratch.close()
        self.packets = 0

    def write(self, frame: EncodedFrame, ms: int, duration_ms: int | None = None) -> None:
        stream = self._streams[frame.kind]
        packet = av.Packet(frame.data)
        packet.stream = stream
        packet.time_base = MS
        packet.pts = packet.dts = ms
        if duration_ms:
            packet.duration = duration_ms
        # Marks Matroska SimpleBlocks as keyframes, which is what cues and
        # seeking use; every audio frame is one.
        packet.is_keyframe = frame.keyframe
        self._out.mux(packet)
        self.packets += 1

    def close(self) -> None:
        self._out.close()


class TranscodeMuxer:
    """Decoded and re-encoded to H.264 + AAC in fragmented MP4.

    The video encoder is opened once, at the size of the first keyframe;
    later frames of another size are scaled to it (counted in ``scaled``),
    because an MP4 track has one size and re-opening would break the file.
    Timestamps come from the recorder's timeline, already increasing.
    """

    container = "mp4"
    name = "recording.mp4"
    _DECODERS = {"VP8": "libvpx", "H264": "h264", "opus": "libopus"}

    def __init__(
        self,
        directory: Path,
        firsts: dict[str, EncodedFrame],
        flush_interval: float,
        *,
        keyframe_interval: float = 2.0,
    ) -> None:
        for first in firsts.values():
            if first.codec not in self._DECODERS:
                raise ValueError(f"cannot decode {first.codec}")
        self.path = directory / self.name
        self.codecs = {kind: "H264" if kind == "video" else "aac" for kind in firsts}
        self._out = av.open(
            str(self.path), "w", format="mp4", options=_muxer_options("mp4", flush_interval)
        )
        self._decoders: dict[str, Any] = {}
        self._streams: dict[str, Any] = {}
        self.decode_errors = 0
        self.scaled = 0
        self.packets = 0
        self._resampler: av.AudioResampler | None = None
        for kind in sorted(firsts):
            first = firsts[kind]
            decoder = av.CodecContext.create(self._DECODERS[first.codec], "r")
            if kind == "video":
                decoder.thread_count = 1  # one frame out per frame in, no delay
                stream = self._out.add_stream("libx264", rate=30)
                stream.width, stream.height = first.width, first.height
                stream.pix_fmt = "yuv420p"
                stream.time_base = fractions.Fraction(1, 90000)
                stream.codec_context.time_base = fractions.Fraction(1, 90000)
                stream.codec_context.gop_size = max(1, round(30 * (keyframe_interval or 2.0)))
                stream.codec_context.options = {
                    "preset": "veryfast",
                    # No lookahead or B-frames: every frame leaves the encoder
                    # at once, so a fragment holds what was received, and
                    # memory does not depend on encoder delay.
                    "tune": "zerolatency",
                    "crf": "23",
                }
            else:
                decoder.format = "s16"
                decoder.layout = "stereo"
                decoder.sample_rate = 48000
                stream = self._out.add_stream("aac", rate=48000)
                stream.codec_context.layout = "stereo"
                stream.codec_context.bit_rate = 128_000
                self._resampler = av.AudioResampler(
                    format=stream.codec_context.format.name if stream.codec_context.format else "fltp",
                    layout="stereo",
                    rate=48000,
                    frame_size=stream.codec_context.frame_size or 1024,
                )
            self._decoders[kind] = decoder
            self._streams[kind] = stream
        self.width = self._streams["video"].width if "video" in firsts else None
        self.height = self._streams["video"].height if "video" in firsts else None

    def write(self, frame: EncodedFrame, ms: int, duration_ms: int | None = None) -> bool:
        """Decode and encode one frame; False if it could not be decoded."""
        decoder = self._decoders[frame.kind]
        packet = av.Packet(frame.data)
        if frame.kind == "video":
            packet.pts, packet.time_base = ms * 90, fractions.Fraction(1, 90000)
        else:
            packet.pts, packet.time_base = ms * 48, fractions.Fraction(1, 48000)
        try:
            decoded = decoder.decode(packet)
        except av.FFmpegError as exc:
            self.decode_errors += 1
            if self.decode_errors == 1 or self.decode_errors % 100 == 0:
                logger.warning("transcode: cannot decode %s frame (%d so far): %s", frame.kind, self.decode_errors, exc)
            return False
        stream = self._streams[frame.kind]
        for picture in decoded:
            if frame.kind == "video":
                if (picture.width, picture.height) != (self.width, self.height):
                    self.scaled += 1
                    picture = picture.reformat(width=self.width, height=self.height, format="yuv420p")
                picture.pts, picture.time_base = packet.pts, packet.time_base
                picture.pict_type = av.video.frame.PictureType.NONE
                self._mux(stream.encode(picture))
            else:
                picture.pts, picture.time_base = packet.pts, packet.time_base
                assert self._resampler is not None
                for chunk in self._resampler.resample(picture):
                    self._mux(stream.encode(chunk))
        return True

    def _mux(self, packets: list) -> None:
        for p in packets:
            self._out.mux(p)
            self.packets += 1

    def close(self) -> None:
        try:
            for kind, stream in self._streams.items():
                if kind == "audio" and self._resampler is not None:
                    for chunk in self._resampler.resample(None):
                        self._mux(stream.encode(chunk))
                self._mux(stream.encode(None))
        finally:
            self._out.close()
