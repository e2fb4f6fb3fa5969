"""peer.compat: the one version check in front of every private aiortc/aioice hook."""

from __future__ import annotations

import aioice
import aiortc
import pytest
from aiortc.rtcrtpreceiver import RTCRtpReceiver

from peer import compat
from peer.compat import UnsupportedAiortcError


def test_the_pinned_versions_pass():
    assert aiortc.__version__ == compat.TESTED["aiortc"]
    assert aioice.__version__ == compat.TESTED["aioice"]
    compat.check_versions()


def test_another_aiortc_version_is_refused_by_name(monkeypatch):
    monkeypatch.delenv(compat.ALLOW_UNTESTED_ENV, raising=False)
    monkeypatch.setattr(aiortc, "__version__", "1.99.0")
    with pytest.raises(UnsupportedAiortcError, match="aiortc 1.99.0"):
        compat.check_versions()


def test_another_aioice_version_is_refused_by_name(monkeypatch):
    monkeypatch.delenv(compat.ALLOW_UNTESTED_ENV, raising=False)
    monkeypatch.setattr(aioice, "__version__", "0.99.0")
    with pytest.raises(UnsupportedAiortcError, match="aioice 0.99.0"):
        compat.check_versions()


def test_with_the_override_the_check_names_each_missing_private_part(monkeypatch):
    monkeypatch.setenv(compat.ALLOW_UNTESTED_ENV, "1")
    monkeypatch.setattr(aiortc, "__version__", "1.99.0")
    monkeypatch.delattr(RTCRtpReceiver, "_send_rtcp_pli")

    async def handle(self, packet, arrival_time_ms):  # no decoder queue any more
        return None

    monkeypatch.setattr(RTCRtpReceiver, "_handle_rtp_packet", handle)
    monkeypatch.delattr(aioice.ice, "get_host_addresses")
    with pytest.raises(UnsupportedAiortcError) as info:
        compat.check_versions()
    message = str(info.value)
    assert "_RTCRtpReceiver__decoder_queue" in message
    assert "_send_rtcp_pli" in message
    assert "get_host_addresses" in message


def test_every_private_hook_lives_in_compat():
    """No module but peer/compat.py names aiortc's or aioice's private parts."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    private = ("_RTCRtpReceiver__", "_send_rtcp_pli", "_send_keyframe", "get_host_addresses",
               "InboundStream", "._prefetch", "__jitter_buffer",
               # ICE: port range, every TURN URL, the selected pair
               "get_component_candidates", "gather_candidates", "relayed_candidate", "connection_kwargs",
               "_nominated", "__inner_protocol", "_get_stats", "._connection.", "RTCIceGatherer")
    offenders = []
    for package in ("peer", "media", "photos", "signaling", "webapp"):
        for path in (root / package).rglob("*.py"):
            if path.name == "compat.py" and path.parent.name == "peer":
                continue
            text = path.read_text()
            offenders += [f"{path.relative_to(root)}: {name}" for name in private if name in text]
    assert offenders == []
