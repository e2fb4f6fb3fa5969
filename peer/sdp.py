"""SDP and candidate handling, pure functions.

Remote candidates are untrusted: each one makes the bot send STUN Binding
requests to an address the caller chose (RFC 8445 section 6.1.2.6), up to
seven times per pair. :func:`candidate_refusal` says which addresses the bot
never sends checks to (the policy is in the README, "Candidates the bot
refuses"), and :func:`filter_offer_candidates` applies it, with the cap on
the number, to the candidates inside an offer.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass

from aiortc import RTCIceCandidate
from aiortc.sdp import candidate_from_sdp

from signaling.protocol import IceCandidate

_VIDEO_CODECS = ("VP8", "VP9", "H264", "AV1")
_CANDIDATE_TYPES = ("host", "srflx", "prflx", "relay")


class CandidateError(ValueError):
    """A trickled candidate that does not parse."""


def _check_fields(candidate: RTCIceCandidate) -> None:
    # RFC 8839 section 5.1: component-id 1..256, priority 1..2^31-1,
    # a port, one of the four candidate types.
    if candidate.protocol.lower() not in ("udp", "tcp"):
        raise CandidateError(f"unsupported candidate protocol {candidate.protocol!r}")
    if not 1 <= candidate.component <= 256:
        raise CandidateError(f"component {candidate.component} out of range")
    if not 0 <= candidate.port <= 65535:
        raise CandidateError(f"port {candidate.port} out of range")
    if not 0 <= candidate.priority < 2**32:
        raise CandidateError(f"priority {candidate.priority} out of range")
    if candidate.type not in _CANDIDATE_TYPES:
        raise CandidateError(f"unknown candidate type {candidate.type!r}")
    if not candidate.ip or len(candidate.ip) > 255:
        raise CandidateError("no address")


def parse_candidate(init: IceCandidate) -> RTCIceCandidate | None:
    """An RTCIceCandidateInit as aiortc wants it; None means end of candidates.

    Browsers send ``candidate:842163049 1 udp ...``; aiortc's parser wants the
    text after the ``candidate:`` prefix. An empty string is the W3C
    end-of-candidates marker; ``candidate:`` with nothing after it is not,
    it is a candidate that does not parse (:class:`CandidateError`).
    """
    text = init.candidate.strip()
    if not text:
        return None
    if text.startswith("candidate:"):
        text = text[len("candidate:"):]
    if len(text.split()) < 8:
        # aiortc's parser asserts this (an AssertionError, not a ValueError).
        raise CandidateError("unparseable candidate: fewer than 8 fields")
    try:
        candidate = candidate_from_sdp(text)
    except (ValueError, IndexError, KeyError, AssertionError) as exc:
        # aiortc's parser asserts on a short candidate ("candidate:nonsense").
        raise CandidateError(f"unparseable candidate: {exc or type(exc).__name__}") from None
    _check_fields(candidate)
    candidate.sdpMid = init.sdp_mid
    candidate.sdpMLineIndex = init.sdp_mline_index
    if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
        candidate.sdpMLineIndex = 0
    return candidate


# -- which remote addresses the bot sends checks to ---------------------------------------

#: Private address space: RFC 1918, RFC 6598 (carrier-grade NAT), RFC 4193
#: (unique local IPv6), and the deprecated IPv6 site-local (RFC 3879).
PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7", "fec0::/10",
))
#: Never a unicast host anyone can be asked to talk to: "this network"
#: (RFC 791), reserved (RFC 1112), and the limited broadcast address.
_NOWHERE = tuple(ipaddress.ip_network(n) for n in ("0.0.0.0/8", "240.0.0.0/4"))


@dataclass(frozen=True)
class CandidatePolicy:
    """Which remote candidates the bot accepts (everything else is dropped)."""

    #: Private ranges and mDNS ``.local`` names (which resolve on the bot's own link).
    allow_private: bool = False
    #: Loopback: only when the bot itself gathers on loopback (tests, one host).
    allow_loopback: bool = False


def candidate_refusal(host: str, policy: CandidatePolicy) -> str | None:
    """Why the bot must not send connectivity checks to ``host``, or None."""
    host = host.strip().lower()
    if host.endswith(".local"):
        # Resolving it makes the bot ask its own link by multicast (RFC 6762),
        # and the answer is a local address.
        return None if policy.allow_private else "mdns-name"
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return "not-an-address"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_link_local:
        return "link-local"
    if address.is_loopback:
        return None if policy.allow_loopback else "loopback"
    if isinstance(address, ipaddress.IPv4Address) and (
        address == ipaddress.IPv4Address("255.255.255.255") or any(address in n for n in _NOWHERE)
    ):
        return "reserved"
    if any(address in n for n in PRIVATE_NETWORKS if n.version == address.version):
        return None if policy.allow_private else "private"
    return None


def filter_offer_candidates(sdp: str, policy: CandidatePolicy, limit: int) -> tuple[str, int, list[str]]:
    """The offer without the candidates the bot refuses and those past ``limit``.

    Returns the SDP, the number of candidates kept, and why each dropped one
    was dropped. Lines that do not parse are left for aiortc's parser (which
    then refuses the whole offer).

    An m-section that loses every candidate also loses its
    ``a=end-of-candidates``: told that no candidate will come, aioice drops
    the component before gathering ("Components {1} have no candidate
    pairs") and the call can never connect, while without the marker the
    caller's own checks still reach the bot and make a peer-reflexive pair
    (RFC 8445 section 7.3.1.3), as they would have with the private ones.
    """
    eol = "\r\n" if "\r\n" in sdp else "\n"
    sections: list[list[str]] = [[]]
    for line in sdp.split(eol):
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    kept = 0
    dropped: list[str] = []
    out: list[str] = []
    for section in sections:
        section_kept = section_dropped = 0
        lines: list[str] = []
        for line in section:
            if line.startswith("a=candidate:"):
                fields = line[len("a=candidate:"):].split()
                host = fields[4] if len(fields) >= 8 else None
                if host is not None:
                    reason = candidate_refusal(host, policy)
                    if reason is None and kept >= limit:
                        reason = "too-many"
                    if reason is not None:
                        dropped.append(f"{host}: {reason}")
                        section_dropped += 1
                        continue
                    kept += 1
                section_kept += 1
            lines.append(line)
        if section_dropped and not section_kept:
            lines = [line for line in lines if line != "a=end-of-candidates"]
        out += lines
    return eol.join(out), kept, dropped


# -- the announced address (a server behind 1:1 NAT) ----------------------------------------

def _foundation(address: str) -> str:
    return hashlib.md5(f"announced|{address}".encode()).hexdigest()[:16]


def announce_addresses(sdp: str, addresses: tuple[str, ...]) -> str:
    """The answer with a host candidate ``ADDR:port`` beside each host candidate
    ``private:port`` of the same IP family, for every ADDR.

    For a server behind 1:1 NAT that forwards ADDR:port to private:port on the
    same port (a cloud VM's public IP, ``docker run -p`` with equal ports).
    The far end's checks to the announced candidate arrive on the host
    candidate's own socket, which answers them (RFC 8445 section 7.3) and
    learns the far end as peer-reflexive if needed; the replies leave
    through the NAT with ADDR as their source. The private candidates stay
    (a LAN peer still connects directly) and rank just above the announced
    ones (local preference 65534 against 65535, RFC 8445 section 5.1.2.1).
    """
    if not addresses:
        return sdp
    announced = [(a, ipaddress.ip_address(a).version) for a in addresses]
    eol = "\r\n" if "\r\n" in sdp else "\n"
    out: list[str] = []
    done: set[tuple[int, str, str, str]] = set()  # (m-section, component, port, address)
    section = 0
    for line in sdp.split(eol):
        out.append(line)
        if line.startswith("m="):
            section += 1
            continue
        if not line.startswith("a=candidate:"):
            continue
        fields = line[len("a=candidate:"):].split()
        if len(fields) < 8 or fields[6] != "typ" or fields[7] != "host":
            continue
        component, transport, host, port = fields[1], fields[2], fields[4], fields[5]
        try:
            version = ipaddress.ip_address(host).version
        except ValueError:
            continue
        for address, family in announced:
            key = (section, component, port, address)
            if family != version or address == host or key in done:
                continue
            done.add(key)
            priority = (126 << 24) + (65534 << 8) + (256 - int(component))
            out.append(f"a=candidate:{_foundation(address)} {component} {transport} {priority} "
                       f"{address} {port} typ host")
    return eol.join(out)


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


def drop_unoffered_bundle(answer: str, offer: str) -> str:
    """The answer without ``a=group:BUNDLE`` when the offer had none.

    aiortc always puts a BUNDLE group in its answer, but an answerer must
    not bundle what was not offered bundled (RFC 8843 section 7.3.1): the
    offerer would bundle its transports while ours stay apart, and the
    call would never connect on the others.
    """
    if any(line.startswith("a=group:BUNDLE") for line in offer.splitlines()):
        return answer
    eol = "\r\n" if "\r\n" in answer else "\n"
    return eol.join(line for line in answer.split(eol) if not line.startswith("a=group:BUNDLE"))
