"""Real WHIP publishers that nobody here wrote: FFmpeg's WHIP muxer (inside the
PyAV wheel) and GStreamer's webrtcbin (Debian's packages), each publishing
for a few seconds and ending with a recording checked with PyAV.

Each runs as a subprocess: PyAV's muxer blocks its thread for the whole
session, and GStreamer runs under Debian's python3 with python3-gi.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from peer import compat
from tests.support.media import inspect_recording
from tests.support.server import running_server, test_config
from tests.support.wait import eventually
from tests.support.whip import decoded_frames, ffmpeg_command, gst_command, run_publisher, viewer
from webapp.auth import mint_token
from webapp.config import SecurityConfig
from webapp.keys import BOT

pytestmark = pytest.mark.slow

SECONDS = 3.0
SECRET = "publisher-secret-0123456789-0123456789"


def the_call(tmp_path) -> tuple[dict, object]:
    (call_dir,) = (tmp_path / "data" / "calls").iterdir()
    manifest = json.loads((call_dir / "meta.json").read_text())
    return manifest, call_dir


def check_recording(call_dir, manifest: dict, *, codecs: dict[str, str], longest: float, min_video: int) -> None:
    section = manifest["recording"]
    assert section["state"] == "complete", section
    report = inspect_recording(call_dir / section["file"], decode=False)
    assert report.codecs == codecs
    # At least SECONDS of media, less what comes before the first keyframe;
    # at most what the publisher made (GStreamer's sources run while it
    # connects and what they queued then is sent in a burst, so its media
    # spans more than SECONDS). The machine is shared: bounds are generous.
    assert report.duration is not None and SECONDS - 1.5 <= report.duration <= longest + 0.5, report
    assert report.first_video_keyframe
    assert report.video_packets >= min_video and report.audio_packets >= 50, report
    # Every frame the server took into the recording is in the file.
    recorded = {t["kind"]: t["frames"] for t in section["tracks"]}
    assert (report.video_packets, report.audio_packets) == (recorded["video"], recorded["audio"]), section
    assert any(f["kind"] == "frame" for f in section["files"])


async def test_ffmpeg_publishes_h264_and_opus(tmp_path):
    # With token auth on: FFmpeg's "authorization" option sends the bearer token.
    config = test_config(tmp_path, security=SecurityConfig(auth_secret=SECRET))
    async with running_server(config) as server:
        run = await run_publisher(
            ffmpeg_command(f"{server.url}/whip", seconds=SECONDS, token=mint_token(SECRET, "encoder-1")),
            timeout=SECONDS + 30,
        )
    assert run.returncode == 0, run.output
    assert run.value("PUBLISHED") is not None
    manifest, call_dir = the_call(tmp_path)
    assert manifest["source"] == "whip" and manifest["caller"] == "encoder-1"
    assert manifest["status"] == "complete" and manifest["end_reason"] == "caller-closed"
    publisher = manifest["publisher"]
    assert publisher["software"] == "FFmpeg FFmpegPublishSession" and publisher["user_agent"].startswith("Lavf/")
    # FFmpeg signs with P-224 (secp224r1); how it got through depends on the
    # installed cryptography (peer.compat's version check).
    assert publisher["dtls"]["peer_key"] == "secp224r1"
    if compat.install_dtls_interop() == "groups":
        assert publisher["dtls"]["version"] == "DTLSv1.2" and not publisher["dtls_1_0_fallback"]
    else:
        assert publisher["dtls"]["version"] == "DTLSv1" and publisher["dtls_1_0_fallback"]
    # FFmpeg sends every frame it encodes (PyAV's mux blocks rather than drop).
    check_recording(call_dir, manifest, codecs={"video": "h264", "audio": "opus"}, longest=SECONDS,
                    min_video=int(0.9 * SECONDS * 30))


async def test_gstreamer_webrtcbin_publishes_vp8_and_opus_with_trickle(tmp_path):
    async with running_server(test_config(tmp_path)) as server:
        run = await run_publisher(gst_command(f"{server.url}/whip", seconds=SECONDS), timeout=SECONDS + 30)
    assert run.returncode == 0, run.output
    patches = [line for line in run.lines if line.startswith("PATCH ")]
    # Its candidates, then end of candidates, each in a PATCH answered 204.
    assert any("candidates=0" not in p for p in patches) and any("end=True" in p for p in patches), run.output
    assert all("status=204" in p for p in patches), run.output
    manifest, call_dir = the_call(tmp_path)
    assert manifest["source"] == "whip" and manifest["status"] == "complete"
    dtls = manifest["publisher"]["dtls"]
    # GStreamer is the DTLS server, with an RSA certificate: the ECDHE-RSA suites.
    assert dtls["version"] == "DTLSv1.2" and dtls["cipher"].startswith("ECDHE-RSA-") and dtls["role"] == "client"
    elapsed = float(run.value("ELAPSED_MS") or 0) / 1000
    # GStreamer's live encoder drops frames when the (shared) CPU is short:
    # 14 of 90 were seen on a machine at load 10.
    check_recording(call_dir, manifest, codecs={"video": "vp8", "audio": "opus"}, longest=elapsed, min_video=8)


async def test_a_viewer_watches_ffmpeg_live(tmp_path, http):
    # H.264 forwarded as FFmpeg sent it: parameter sets ride with its keyframes.
    async with running_server(test_config(tmp_path)) as server:
        publishing = asyncio.ensure_future(
            run_publisher(ffmpeg_command(f"{server.url}/whip", seconds=8), timeout=40))
        resource = await eventually(lambda: next(iter(server.app[BOT].whip.values()), None), timeout=20)
        await eventually(lambda: resource.session.media.taps.get("video") is not None
                         and resource.session.media.taps["video"].codec == "H264", timeout=20)
        watcher = viewer(http, kinds=("video",))
        await watcher.offer(f"{server.url}/whep/{resource.call_id}")
        frames = await decoded_frames(watcher.received["video"], 10)
        assert {(f.width, f.height) for f in frames} == {(320, 240)}
        assert await watcher.delete() == 200
        await watcher.close()
        run = await publishing
    assert run.returncode == 0, run.output
