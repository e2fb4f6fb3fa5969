"""Call quality as the bot sees it: the selected candidate pair, round-trip
time, packets lost, bitrate. Written to ``meta.json`` (``quality``) at
connect and at the end, and summarised in the gallery.

aiortc's ``getStats()`` has RTP counters but no candidate-pair stats (W3C
webrtc-stats ``RTCIceCandidatePairStats``); the pair, an RTT measured with a
consent-style STUN request, and the DTLS transport's byte counters come
from :mod:`peer.compat`. The RTT is measured at connect and then every
:data:`RTT_INTERVAL` seconds, never at the end (the far end may be gone by
then, and a probe would hold the hang-up for its timeout).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from peer import compat

logger = logging.getLogger(__name__)

#: Seconds between RTT measurements during a call.
RTT_INTERVAL = 10.0
#: Seconds one RTT measurement may take (then it counts as none).
RTT_TIMEOUT = 1.0


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _kbps(byte_count: int, seconds: float | None) -> float | None:
    if not seconds or seconds <= 0:
        return None
    return round(byte_count * 8 / seconds / 1000, 1)


async def rtp_counters(pc: Any) -> dict[str, int]:
    """Packets received and lost over every inbound RTP stream (RFC 3550
    section 6.4.1: lost = expected - received)."""
    received = lost = 0
    try:
        report = await pc.getStats()
    except Exception:  # a closing connection; nothing to count
        return {"packets_received": 0, "packets_lost": 0}
    for stats in report.values():
        if getattr(stats, "type", None) == "inbound-rtp":
            received += int(getattr(stats, "packetsReceived", 0) or 0)
            lost += max(0, int(getattr(stats, "packetsLost", 0) or 0))
    return {"packets_received": received, "packets_lost": lost}


class CallQuality:
    """Snapshots of one peer connection's path and counters."""

    def __init__(self, pc: Any) -> None:
        self.pc = pc
        self.rtt: float | None = None
        self.rtt_at: float | None = None
        self.connected_at: float | None = None
        self.at_connect: dict[str, Any] | None = None
        self.at_end: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"connect": self.at_connect, "end": self.at_end}

    async def measure_rtt(self) -> float | None:
        rtt = await compat.ice_rtt(self.pc, RTT_TIMEOUT)
        if rtt is not None:
            self.rtt, self.rtt_at = rtt, time.time()
            if self.at_connect is not None and self.at_connect["rtt_ms"] is None:
                self.at_connect["rtt_ms"] = _ms(rtt)
        return rtt

    def on_connected(self) -> dict[str, Any]:
        """The pair at connect; its RTT is filled in by the first :meth:`measure_rtt`."""
        self.connected_at = time.monotonic()
        self.at_connect = self._path()
        return self.at_connect

    async def run(self) -> None:
        """Measure the RTT every RTT_INTERVAL seconds until cancelled."""
        while True:
            await asyncio.sleep(RTT_INTERVAL)
            await self.measure_rtt()

    async def on_end(self) -> dict[str, Any] | None:
        """The final snapshot; call before the peer connection closes.
        None for a call that never connected."""
        if self.connected_at is None:
            return None
        seconds = time.monotonic() - self.connected_at
        counters = compat.transport_counters(self.pc)
        snapshot = self._path()
        snapshot.update(await rtp_counters(self.pc))
        snapshot.update(
            bytes_received=counters["bytesReceived"],
            bytes_sent=counters["bytesSent"],
            bitrate_in_kbps=_kbps(counters["bytesReceived"], seconds),
            bitrate_out_kbps=_kbps(counters["bytesSent"], seconds),
            seconds=round(seconds, 3),
        )
        self.at_end = snapshot
        return snapshot

    def _path(self) -> dict[str, Any]:
        pair = compat.selected_pair(self.pc) or {}
        return {
            "local": pair.get("local"),
            "remote": pair.get("remote"),
            "protocol": pair.get("protocol"),
            "local_address": pair.get("local_address"),
            "remote_address": pair.get("remote_address"),
            "rtt_ms": _ms(self.rtt),
        }


def summary(quality: Any) -> dict[str, Any] | None:
    """The few fields the gallery shows, from meta.json's ``quality``."""
    if not isinstance(quality, dict):
        return None
    end = quality.get("end") if isinstance(quality.get("end"), dict) else None
    start = quality.get("connect") if isinstance(quality.get("connect"), dict) else None
    latest = end or start
    if latest is None:
        return None
    return {
        "local": latest.get("local"),
        "remote": latest.get("remote"),
        "protocol": latest.get("protocol"),
        "rtt_ms": latest.get("rtt_ms"),
        "packets_lost": end.get("packets_lost") if end else None,
        "bitrate_in_kbps": end.get("bitrate_in_kbps") if end else None,
    }
