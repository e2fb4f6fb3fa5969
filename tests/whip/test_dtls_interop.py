"""peer.compat's DTLS interop: FFmpeg's P-224 certificate and GStreamer's RSA
one. What aiortc's contexts offer is read from their real ClientHello; the
slow tests show each real publisher failing without the hook."""

from __future__ import annotations

import json

import pytest

from peer import compat
from tests.support.dtls import (
    DTLS_1_0,
    DTLS_1_2,
    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    aiortc_client_hello,
)
from tests.support.server import running_server, test_config
from tests.support.whip import ffmpeg_command, gst_command, run_publisher

FFMPEG_PASSIVE = "v=0\r\no=FFmpeg 1 2 IN IP4 127.0.0.1\r\ns=FFmpegPublishSession\r\nt=0 0\r\na=setup:passive\r\n"
FFMPEG_ACTIVE = FFMPEG_PASSIVE.replace("a=setup:passive", "a=setup:active")
BROWSER = "v=0\r\no=- 4611 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=setup:actpass\r\n"


@pytest.fixture
def interop():
    mode = compat.install_dtls_interop()
    yield mode
    compat.install_dtls_interop()


def test_the_version_check_picks_the_fix(interop):
    groups = compat.offered_groups()
    if compat.cryptography_major() < compat.FIRST_CRYPTOGRAPHY_WITHOUT_P224:
        # OpenSSL 3.5: P-224 offered, last, and DTLS 1.2 for FFmpeg too.
        assert interop == "groups" and groups[-1] == 0x0015
    else:
        # OpenSSL 4: no P-224 in TLS at all; FFmpeg's sessions use DTLS 1.0.
        assert interop == "dtls10" and 0x0015 not in groups


def test_everyone_but_ffmpeg_keeps_dtls_1_2_and_gets_the_rsa_suites(interop):
    for offer in (BROWSER, FFMPEG_PASSIVE if interop == "groups" else BROWSER):
        with compat.legacy_dtls_for(offer) as legacy:
            hello = aiortc_client_hello()
        assert not legacy and hello.version == DTLS_1_2
        assert hello.cipher_suites[0] == TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256  # aiortc's own first
        assert TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 in hello.cipher_suites


def test_the_dtls_1_0_fallback_is_scoped_to_ffmpeg_sessions(interop):
    offers = [FFMPEG_ACTIVE] + ([FFMPEG_PASSIVE] if interop == "dtls10" else [])
    for offer in offers:
        with compat.legacy_dtls_for(offer) as legacy:
            inside = aiortc_client_hello()
        assert legacy and inside.version == DTLS_1_0
        assert TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 not in inside.cipher_suites
    # Outside the scope (another session, at the same time): DTLS 1.2.
    assert aiortc_client_hello().version == DTLS_1_2


def test_without_the_hook_aiortc_offers_what_it_always_did(interop):
    from aiortc.rtcdtlstransport import RTCCertificate, RTCDtlsTransport

    compat.uninstall_dtls_interop()
    assert RTCDtlsTransport.start is compat._original_dtls_start
    assert RTCCertificate._create_ssl_context is compat._original_create_ssl_context
    hello = aiortc_client_hello()
    assert TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 not in hello.cipher_suites
    with compat.legacy_dtls_for(FFMPEG_ACTIVE) as legacy:
        assert not legacy and aiortc_client_hello().version == DTLS_1_2


def _calls(tmp_path) -> list[dict]:
    root = tmp_path / "data" / "calls"
    return [json.loads((d / "meta.json").read_text()) for d in sorted(root.iterdir())] if root.exists() else []


@pytest.mark.slow
async def test_ffmpeg_needs_the_fix(tmp_path, interop):
    async with running_server(test_config(tmp_path)) as server:
        compat.uninstall_dtls_interop()
        try:
            run = await run_publisher(
                ffmpeg_command(f"{server.url}/whip", seconds=2, extra=["--handshake-timeout-ms", "3000"]), timeout=30)
        finally:
            compat.install_dtls_interop()
    (manifest,) = _calls(tmp_path)
    if interop == "groups":
        # cryptography < 47: P-224 is in OpenSSL's groups for the whole
        # process, so the passive case works without the context hook.
        assert run.returncode == 0, run.output
    else:
        # aiortc's alert kills the handshake: FFmpeg gives up, nothing recorded.
        assert run.returncode == 2 and "DTLS session failed" in run.output, run.output
        assert manifest["connected_at"] is None and manifest["recording"]["state"] != "complete"


@pytest.mark.slow
async def test_ffmpeg_as_dtls_client_takes_the_fallback(tmp_path, interop):
    # whip_flags=dtls_active: FFmpeg is the DTLS client and aiortc the server,
    # where OpenSSL needs the peer to offer P-224: DTLS 1.0 on every version.
    async with running_server(test_config(tmp_path)) as server:
        run = await run_publisher(
            ffmpeg_command(f"{server.url}/whip", seconds=2, extra=["--whip-flags", "dtls_active"]), timeout=30)
    assert run.returncode == 0, run.output
    (manifest,) = _calls(tmp_path)
    dtls = manifest["publisher"]["dtls"]
    assert dtls["version"] == "DTLSv1" and dtls["role"] == "server" and dtls["peer_key"] == "secp224r1"
    assert manifest["recording"]["state"] == "complete"


@pytest.mark.slow
async def test_gstreamer_needs_the_rsa_suites(tmp_path, interop):
    async with running_server(test_config(tmp_path)) as server:
        compat.uninstall_dtls_interop()
        try:
            run = await run_publisher(gst_command(f"{server.url}/whip", seconds=2), timeout=40)
        finally:
            compat.install_dtls_interop()
    # GStreamer's DTLS server finds no suite for its RSA certificate.
    states = [line.split()[-1] for line in run.lines if line.startswith("CONNECTION ")]
    assert run.returncode == 2 and states[-1] == "failed" and "connected" not in states, run.output
    (manifest,) = _calls(tmp_path)
    assert manifest["connected_at"] is None
