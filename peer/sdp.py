"""SDP and candidate handling, pure functions."""

from __future__ import annotations

import re

from aiortc import RTCIceCandidate
from aiortc.sdp import candidate_from_sdp

from signaling.protocol import IceCandidate

_VIDEO_CODECS = ("VP8", "VP9", "H264", "AV1")


class CandidateError(ValueError):
    """A trickled candidate that does not parse."""


def parse_candidate(init: IceCandidate) -> RTCIceCandidate | None:
    """An RTCIceCandidateInit as aiortc wants it; None means end of candidates.

    Browsers send ``candidate:842163049 1 udp ...``; aiortc's parser wants the
    text after the ``candidate:`` prefix. An empty string is the W3C
    end-of-candidates marker.
    """
    text = init.candidate.strip()
    if not text:
        return None
    if text.startswith("candidate:"):
        text = text[len("candidate:"):]
    try:
        candidate = candidate_from_sdp(text)
    except (ValueError, IndexError, KeyError, AssertionError) as exc:
        # aiortc's parser asserts on a short candidate ("candidate:nonsense").
        raise CandidateError(f"unparseable candidate: {exc or type(exc).__name__}") from None
    if candidate.protocol.lower() not in ("udp", "tcp"):
        raise CandidateError(f"unsupported candidate protocol {candidate.protocol!r}")
    candidate.sdpMid = init.sdp_mid
    candidate.sdpMLineIndex = init.sdp_mline_index
    if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
        candidate.sdpMLineIndex = 0
    return candidate


def add_bitrate_hints(sdp: str, *, start_kbps: int, min_kbps: int, max_kbps: int) -> str:
    """Add Chromium's start/min/max bitrate hints to every video codec's fmtp.

    aiortc sends only REMB feedback, so without a hint Chromium starts near
    300 kb/s and ramps slowly; it honours ``x-google-*-bitrate`` in the fmtp of
    the answer it receives. Other browsers ignore unknown fmtp parameters.
    """
    hints = f"x-google-start-bitrate={start_kbps};x-google-min-bitrate={min_kbps};x-google-max-bitrate={max_kbps}"
    eol = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(eol)
    video_pts: set[str] = set()
    for line in lines:
        m = re.match(r"a=rtpmap:(\d+) ([A-Za-z0-9-]+)/", line)
        if m and m.group(2).upper() in _VIDEO_CODECS:
            video_pts.add(m.group(1))
    out: list[str] = []
    with_fmtp: set[str] = set()
    for line in lines:
        m = re.match(r"a=fmtp:(\d+) (.*)", line)
        if m and m.group(1) in video_pts:
            with_fmtp.add(m.group(1))
            line = f"a=fmtp:{m.group(1)} {m.group(2)};{hints}"
        out.append(line)
    # Codecs without an fmtp line get one right after their rtpmap.
    result: list[str] = []
    for line in out:
        result.append(line)
        m = re.match(r"a=rtpmap:(\d+) ", line)
        if m and m.group(1) in video_pts and m.group(1) not in with_fmtp:
            result.append(f"a=fmtp:{m.group(1)} {hints}")
    return eol.join(result)
