"""Keyframe and size detection on frames from real encoders (no event loop)."""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest

from media.bitstream import frame_info, h264_nal_units, h264_sps_size

pytestmark = pytest.mark.slow  # real calls, processes or real-time media


def encode(codec: str, width: int, height: int, count: int, **options) -> list[bytes]:
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = fractions.Fraction(1, 30)
    ctx.gop_size = 10
    ctx.options = options
    out: list[bytes] = []
    for i in range(count):
        img = np.full((height, width, 3), (i * 20) % 256, np.uint8)
        frame = av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p")
        frame.pts = i
        out += [bytes(p) for p in ctx.encode(frame)]
    out += [bytes(p) for p in ctx.encode(None)]
    return out


@pytest.mark.parametrize("size", [(640, 480), (1280, 720), (322, 178)])
def test_vp8_keyframes_and_size(size):
    frames = encode("libvpx", *size, 12)
    infos = [frame_info("VP8", f) for f in frames]
    assert infos[0].keyframe and (infos[0].width, infos[0].height) == size
    assert infos[10].keyframe  # gop_size
    assert not any(i.keyframe for i in infos[1:10])
    assert all(i.width is None for i in infos[1:10])


@pytest.mark.parametrize(
    "size,profile", [((640, 480), "baseline"), ((642, 362), "baseline"), ((1280, 720), "high")]
)
def test_h264_keyframes_size_and_parameter_sets(size, profile):
    frames = encode("libx264", *size, 12, tune="zerolatency", profile=profile, **{"x264-params": "scenecut=0"})
    infos = [frame_info("H264", f) for f in frames]
    assert infos[0].keyframe and (infos[0].width, infos[0].height) == size
    assert infos[0].parameter_sets.startswith(b"\x00\x00\x00\x01\x67")
    assert not any(i.keyframe for i in infos[1:10])
    assert infos[10].keyframe


def test_h264_nal_split_handles_three_and_four_byte_start_codes():
    data = b"\x00\x00\x00\x01\x67\xaa\x00\x00\x01\x68\xbb\x00\x00\x00\x01\x65\xcc\xdd"
    assert h264_nal_units(data) == [b"\x67\xaa", b"\x68\xbb", b"\x65\xcc\xdd"]
    assert h264_nal_units(b"") == []


def test_truncated_input_is_not_a_keyframe():
    assert not frame_info("VP8", b"\x00\x01").keyframe
    # Key frame tag without the start code: corrupt, so not a place to start.
    assert not frame_info("VP8", b"\x10\x02\x00\x00\x00\x00\x00\x00\x00\x00").keyframe
    with pytest.raises(ValueError):
        h264_sps_size(b"\x67\x42")
    with pytest.raises(ValueError):
        frame_info("VP9", b"")
