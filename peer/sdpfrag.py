"""``application/trickle-ice-sdpfrag`` bodies (RFC 8840 section 9, as WHIP
uses them: RFC 9725 section 4.3.1), parsed once, at the edge.

A fragment carries the ICE credentials of the session it belongs to, the
media sections (``m=`` and ``a=mid``) its candidates are for, the
candidates, and ``a=end-of-candidates``. Everything else is ignored, as
RFC 8840 asks of attributes a receiver does not know. Nothing in it is
trusted: its size, its line count and its number of candidates are bounded,
and a candidate is only ever parsed again by :func:`peer.sdp.parse_candidate`.
"""

from __future__ import annotations

from dataclasses import dataclass

from media.errors import CallbotError

#: A fragment is a few candidates; browsers gather well under 50 in all.
MAX_CANDIDATES = 64
MAX_LINES = 256
MAX_LINE_LENGTH = 1024


class SdpFragError(CallbotError, ValueError):
    """A trickle-ice-sdpfrag body that does not parse (answered with 400)."""


@dataclass(frozen=True)
class FragCandidate:
    """One ``a=candidate`` line, as an RTCIceCandidateInit would carry it."""

    candidate: str  # "candidate:..." (the attribute, without "a=")
    sdp_mid: str | None
    sdp_mline_index: int | None


@dataclass(frozen=True)
class SdpFrag:
    ice_ufrag: str | None
    ice_pwd: str | None
    candidates: tuple[FragCandidate, ...]
    end_of_candidates: bool


def parse_sdpfrag(text: str) -> SdpFrag:
    """The fragment in ``text``, or :class:`SdpFragError`."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n")]
    lines = [line for line in lines if line]
    if len(lines) > MAX_LINES:
        raise SdpFragError(f"more than {MAX_LINES} lines")
    ufrag: str | None = None
    pwd: str | None = None
    candidates: list[FragCandidate] = []
    end = False
    mline = -1  # index of the current m= line in the fragment; -1: session level
    mid: str | None = None

    def credential(current: str | None, value: str, name: str) -> str:
        # RFC 8839 section 5.4: ice-char is ALPHA / DIGIT / "+" / "/".
        if not value or len(value) > 256 or not all(c.isascii() and (c.isalnum() or c in "+/") for c in value):
            raise SdpFragError(f"invalid {name}")
        if current is not None and current != value:
            raise SdpFragError(f"two different {name} values")
        return value

    for line in lines:
        if len(line) > MAX_LINE_LENGTH:
            raise SdpFragError(f"a line longer than {MAX_LINE_LENGTH} characters")
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise SdpFragError(f"not an SDP line: {line[:40]!r}")
        kind, value = line[0], line[2:]
        if kind == "m":
            mline += 1
            mid = None
        elif kind != "a":
            continue  # c=, o=, ... carry nothing for trickle
        elif value.startswith("ice-ufrag:"):
            ufrag = credential(ufrag, value[len("ice-ufrag:"):], "ice-ufrag")
        elif value.startswith("ice-pwd:"):
            pwd = credential(pwd, value[len("ice-pwd:"):], "ice-pwd")
        elif value.startswith("mid:"):
            mid = value[len("mid:"):] or None
        elif value.startswith("candidate:"):
            if len(candidates) >= MAX_CANDIDATES:
                raise SdpFragError(f"more than {MAX_CANDIDATES} candidates")
            # Without a mid the candidate belongs to the fragment's m-line of
            # the same position (RFC 8840 section 9: the fragment repeats the
            # session's m-lines it has candidates for).
            candidates.append(FragCandidate(value, mid, None if mid is not None else max(mline, 0)))
        elif value == "end-of-candidates":
            end = True
    return SdpFrag(ufrag, pwd, tuple(candidates), end)
