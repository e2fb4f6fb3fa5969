"""A recording survives its process: SIGKILL leaves a playable file, SIGTERM a complete one."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from media.storage import sha256_file
from tests.support.media import inspect_recording

pytestmark = pytest.mark.slow  # real calls, processes or real-time media

ROOT = Path(__file__).resolve().parents[2]


async def start_child(tmp_path: Path, codec: str, ready_at: float):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.support.record_call_child",
        str(tmp_path / "calls"), codec, "30", str(ready_at),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
    )
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    word, call_dir, duration = line.decode().split()
    assert word == "RECORDING"
    return proc, Path(call_dir), float(duration)


@pytest.mark.parametrize("codec,name", [("video/VP8", "recording.webm"), ("video/H264", "recording.mkv")])
async def test_sigkill_mid_call_leaves_a_file_that_plays_to_within_a_second(tmp_path, codec, name):
    proc, call_dir, duration = await start_child(tmp_path, codec, ready_at=3.0)
    os.kill(proc.pid, signal.SIGKILL)
    assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL

    report = inspect_recording(call_dir / name)
    assert report.codecs["audio"] == "opus" and report.codecs["video"] in ("vp8", "h264")
    assert report.first_video_keyframe
    # At least this much media had reached the recorder when it was killed.
    assert report.video_end >= duration - 1.0, (report.video_end, duration)
    assert report.audio_end >= duration - 1.0, (report.audio_end, duration)
    # Every frame in the file decodes, in order.
    assert len(report.indices) == report.video_packets
    assert report.indices == sorted(set(report.indices))
    # The manifest the killed process left says it was not finished.
    manifest = json.loads((call_dir / "meta.json").read_text())
    assert manifest["recording"]["state"] == "recording"
    assert not manifest["recording"]["complete"]


async def test_sigterm_mid_call_leaves_a_complete_file_and_says_so(tmp_path):
    proc, call_dir, _ = await start_child(tmp_path, "video/VP8", ready_at=2.0)
    proc.send_signal(signal.SIGTERM)
    # Lines printed before the signal was handled, then the final one.
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        if line.startswith("STOPPED"):
            break
        assert line.startswith("RECORDING")
    assert await asyncio.wait_for(proc.wait(), 30) == 0

    section = json.loads((call_dir / "meta.json").read_text())["recording"]
    assert section["state"] == "complete" and section["complete"]
    assert section["stop_reason"] == "sigterm"
    [entry] = [f for f in section["files"] if f["kind"] == "recording"]
    path = call_dir / entry["name"]
    assert sha256_file(path) == entry["sha256"]
    report = inspect_recording(path)
    # Complete: the trailer (duration, cues) was written.
    assert report.duration is not None
    assert abs(report.duration - section["duration"]) < 0.1
    assert len(report.indices) == report.video_packets >= 0.99 * section["tracks"][1]["frames"]
    assert report.indices == sorted(set(report.indices))
