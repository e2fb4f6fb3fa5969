"""The pure side of candidate handling (peer/sdp.py): which addresses the bot
refuses to check, what a malformed candidate is, the announced address and
the BUNDLE group of an answer."""

from __future__ import annotations

import pytest

from peer.sdp import (
    CandidateError,
    CandidatePolicy,
    announce_addresses,
    candidate_refusal,
    drop_unoffered_bundle,
    parse_candidate,
)
from signaling.protocol import IceCandidate

REFUSED_BY_DEFAULT = {
    "10.0.0.1": "private", "192.168.1.7": "private", "172.16.0.1": "private", "100.64.1.1": "private",
    "fd00::5": "private", "169.254.3.4": "link-local", "fe80::1": "link-local", "224.0.0.251": "multicast",
    "ff02::1": "multicast", "0.0.0.0": "unspecified", "::": "unspecified", "255.255.255.255": "reserved",
    "0.1.2.3": "reserved", "240.0.0.1": "reserved", "printer.local": "mdns-name", "example.com": "not-an-address",
    "127.0.0.1": "loopback", "::1": "loopback", "::ffff:10.1.2.3": "private",
}
PUBLIC = ["203.0.113.5", "198.51.100.7", "8.8.8.8", "2001:db8::1"]


@pytest.mark.parametrize("host,reason", sorted(REFUSED_BY_DEFAULT.items()))
def test_refused_addresses(host, reason):
    assert candidate_refusal(host, CandidatePolicy()) == reason


@pytest.mark.parametrize("host", PUBLIC)
def test_public_addresses_are_accepted(host):
    assert candidate_refusal(host, CandidatePolicy()) is None


def test_private_and_loopback_only_when_allowed():
    allow = CandidatePolicy(allow_private=True, allow_loopback=True)
    for host in ("10.0.0.1", "fd00::5", "printer.local", "127.0.0.1", "::1"):
        assert candidate_refusal(host, allow) is None
    # Never, whatever the flags.
    for host in ("169.254.3.4", "224.0.0.251", "0.0.0.0", "255.255.255.255"):
        assert candidate_refusal(host, allow) is not None


@pytest.mark.parametrize("text", [
    "candidate:", "candidate: ", "candidate:1 1 udp", "candidate:a b c d e f g h",
    "candidate:1 1 udp 1 1.2.3.4 99999 typ host", "candidate:1 1 udp 1 1.2.3.4 5 typ bogus",
    "candidate:1 0 udp 1 1.2.3.4 5 typ host", "candidate:1 1 sctp 1 1.2.3.4 5 typ host",
])
def test_malformed_candidates_raise_candidate_error(text):
    with pytest.raises(CandidateError):
        parse_candidate(IceCandidate(text, "0", 0, None))


def test_announced_address_is_added_beside_each_host_candidate():
    sdp = ("v=0\r\nm=audio 40001 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 10.0.0.2\r\na=mid:0\r\n"
           "a=candidate:f1 1 udp 2130706431 10.0.0.2 40001 typ host\r\n"
           "a=candidate:f2 1 udp 2130706431 172.17.0.1 40002 typ host\r\n"
           "a=candidate:f3 1 udp 1694498815 198.51.100.9 40001 typ srflx raddr 10.0.0.2 rport 40001\r\n"
           "a=end-of-candidates\r\n")
    out = announce_addresses(sdp, ("198.51.100.1", "2001:db8::9"))
    lines = out.split("\r\n")
    added = [line for line in lines if " 198.51.100.1 " in line]
    # One per host candidate (same port), host type, ranked just below the private one.
    assert [line.split()[5] for line in added] == ["40001", "40002"]
    assert all(line.endswith("typ host") and int(line.split()[3]) < 2130706431 for line in added)
    assert lines.index(added[0]) == lines.index("a=candidate:f1 1 udp 2130706431 10.0.0.2 40001 typ host") + 1
    assert "2001:db8::9" not in out  # no IPv6 host candidate to pair it with
    assert lines[-2] == "a=end-of-candidates"
    assert announce_addresses(sdp, ()) == sdp


def test_an_answer_bundles_only_what_was_offered_bundled():
    answer = "v=0\r\na=group:BUNDLE 0 1\r\nm=audio 9 x 0\r\n"
    assert "a=group:BUNDLE" not in drop_unoffered_bundle(answer, "v=0\r\nm=audio 9 x 0\r\n")
    assert drop_unoffered_bundle(answer, "v=0\r\na=group:BUNDLE 0 1\r\n") == answer


def test_a_section_that_loses_every_candidate_loses_its_end_of_candidates():
    from peer.sdp import filter_offer_candidates

    sdp = ("v=0\r\nm=audio 9 x 0\r\na=mid:0\r\n"
           "a=candidate:1 1 udp 2122260223 10.1.2.3 5000 typ host\r\na=end-of-candidates\r\n"
           "m=video 9 x 0\r\na=mid:1\r\n"
           "a=candidate:2 1 udp 2122260223 10.1.2.3 5002 typ host\r\n"
           "a=candidate:3 1 udp 1686052607 203.0.113.9 5002 typ srflx raddr 10.1.2.3 rport 5002\r\n"
           "a=end-of-candidates\r\n")
    out, kept, dropped = filter_offer_candidates(sdp, CandidatePolicy(), limit=64)
    assert kept == 1 and dropped == ["10.1.2.3: private", "10.1.2.3: private"]
    audio, video = out.split("m=video")
    # Told "no more candidates" with none, aioice would drop the component
    # before gathering; without the marker the caller's checks still count.
    assert "a=end-of-candidates" not in audio and "a=candidate" not in audio
    assert "a=end-of-candidates" in video and "203.0.113.9" in video and "10.1.2.3 5002 typ host" not in video
    # The bound counts across sections.
    _, kept, dropped = filter_offer_candidates(sdp.replace("10.1.2.3", "198.51.100.8"), CandidatePolicy(), limit=2)
    assert kept == 2 and dropped == ["203.0.113.9: too-many"]
