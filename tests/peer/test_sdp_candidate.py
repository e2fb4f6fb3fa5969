"""peer.sdp.parse_candidate on what clients may send."""

from __future__ import annotations

import pytest

from peer.sdp import CandidateError, parse_candidate
from signaling.protocol import IceCandidate


@pytest.mark.parametrize("text", ["candidate:nonsense", "candidate:1 1 udp", "1 1 udp 2130706431 127.0.0.1"])
def test_a_short_candidate_is_a_candidate_error(text):
    # aiortc's parser asserts on these; an AssertionError used to escape and
    # end the task applying the call's candidates (and a WHIP PATCH with 500).
    with pytest.raises(CandidateError):
        parse_candidate(IceCandidate(text, "0", None))


def test_a_good_one_keeps_its_mid():
    candidate = parse_candidate(IceCandidate("candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host", "v0", None))
    assert (candidate.ip, candidate.port, candidate.sdpMid) == ("127.0.0.1", 5000, "v0")
