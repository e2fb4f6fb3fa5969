"""trickle-ice-sdpfrag parsing (RFC 8840), pure."""

from __future__ import annotations

import pytest

from peer.sdpfrag import MAX_CANDIDATES, FragCandidate, SdpFragError, parse_sdpfrag

# What GStreamer's webrtcbin client trickles (tests/support/whip_gst.py), verbatim shape.
GSTREAMER = (
    "a=ice-ufrag:Ab3/x+\r\na=ice-pwd:pwd1234567890abcdefghij\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:video0\r\n"
    "a=candidate:1 1 UDP 2015364095 127.0.0.1 42035 typ host\r\n"
    "a=candidate:2 1 TCP 1015022591 127.0.0.1 9 typ host tcptype active\r\n"
)


def test_candidates_with_their_mid_and_the_credentials():
    frag = parse_sdpfrag(GSTREAMER)
    assert frag.ice_ufrag == "Ab3/x+" and frag.ice_pwd == "pwd1234567890abcdefghij"
    assert frag.candidates == (
        FragCandidate("candidate:1 1 UDP 2015364095 127.0.0.1 42035 typ host", "video0", None),
        FragCandidate("candidate:2 1 TCP 1015022591 127.0.0.1 9 typ host tcptype active", "video0", None),
    )
    assert not frag.end_of_candidates


def test_end_of_candidates_alone():
    frag = parse_sdpfrag("a=ice-ufrag:u\na=ice-pwd:p\nm=video 9 UDP/TLS/RTP/SAVPF 96\na=mid:0\na=end-of-candidates\n")
    assert frag.end_of_candidates and frag.candidates == ()


def test_without_a_mid_the_fragment_position_names_the_m_line():
    frag = parse_sdpfrag(
        "a=ice-ufrag:u\r\na=ice-pwd:p\r\nm=audio 9 RTP/AVP 0\r\na=candidate:1 1 udp 1 127.0.0.1 1000 typ host\r\n"
        "m=video 9 RTP/AVP 96\r\na=candidate:2 1 udp 1 127.0.0.1 1001 typ host\r\n"
    )
    assert [(c.sdp_mid, c.sdp_mline_index) for c in frag.candidates] == [(None, 0), (None, 1)]


def test_unknown_attributes_are_ignored():
    # RFC 8840: attributes a receiver does not know are skipped.
    frag = parse_sdpfrag("a=ice-options:trickle\r\na=group:BUNDLE 0\r\nc=IN IP4 0.0.0.0\r\n" + GSTREAMER)
    assert len(frag.candidates) == 2


@pytest.mark.parametrize("body,reason", [
    ("hello world\r\n", "not an SDP line"),
    ("a=ice-ufrag:one\r\na=ice-ufrag:two\r\n", "two different ice-ufrag"),
    ("a=ice-ufrag:bad;chars\r\n", "invalid ice-ufrag"),
    ("a=candidate:" + "x" * 2000 + "\r\n", "longer than"),
    ("a=mid:0\r\n" * 300, "more than 256 lines"),
    ("".join(f"a=candidate:{i} 1 udp 1 127.0.0.1 {1000 + i} typ host\r\n" for i in range(MAX_CANDIDATES + 1)),
     "more than 64 candidates"),
])
def test_what_is_refused(body, reason):
    with pytest.raises(SdpFragError, match=reason):
        parse_sdpfrag(body)
