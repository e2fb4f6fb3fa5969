"""CallRecorder with real aiortc calls over loopback; files checked with PyAV and OpenCV."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import cv2
import pytest

from media import containers
from media.errors import InvalidOptionError, InvalidState
from peer.tap import EncodedFrameTap
from media.options import RecordingOptions
from media.recorder import CallRecorder
from media.storage import create_call_directory, sha256_file
from tests.support.media import (
    check_pictures,
    FPS,
    CountFrames,
    inspect_recording,
    nearest_palette,
    open_call,
    read_pattern,
    wait_senders_done,
)

pytestmark = pytest.mark.slow  # real calls, processes or real-time media


async def record_call(watch, tmp_path: Path, options: RecordingOptions, *, seconds: float, **call_kwargs):
    """Run one call into a CallRecorder; hang up when everything sent has arrived."""
    call_dir = create_call_directory(tmp_path / "calls")
    recorder = CallRecorder(call_dir, options)
    counts: dict[str, CountFrames] = {}

    def on_track(track, receiver):
        # Decoding off: like a call when nothing reads decoded frames.
        tap = EncodedFrameTap.attach(receiver, track, decode=False)
        if recorder.add_source(tap):
            counts[track.kind] = CountFrames()
            tap.subscribe(counts[track.kind])

    call = await open_call(watch, seconds=seconds, on_track=on_track, **call_kwargs)
    try:
        await wait_senders_done(call, seconds + 15)
        # aiortc's jitter buffer keeps the last video frame and 4 audio frames
        # until more arrive, which they never will.
        if call.video is not None:
            await counts["video"].wait_for(call.video.sent - 1, 5)
        if call.audio is not None:
            await counts["audio"].wait_for(call.audio.sent - 4, 5)
        live = recorder.status()
    finally:
        await call.close()
    section = await recorder.stop("hangup")
    return call, call_dir, section, live


@pytest.mark.parametrize(
    "codec,container,name,ffmpeg_video",
    [
        ("video/VP8", "webm", "recording.webm", "vp8"),
        ("video/H264", "matroska", "recording.mkv", "h264"),
    ],
)
async def test_ten_second_call_is_recorded_passthrough(watch, tmp_path, codec, container, name, ffmpeg_video):
    call, call_dir, section, live = await record_call(
        watch, tmp_path, RecordingOptions(), seconds=10.0, video_codec=codec
    )
    assert live["state"] == "recording" and live["file"] == name
    assert section["state"] == "complete" and section["complete"]
    assert section["container"] == container and section["file"] == name
    path = call_dir.file(name)
    [entry] = [f for f in section["files"] if f["kind"] == "recording"]
    assert entry["sha256"] == sha256_file(path) and entry["size"] == path.stat().st_size

    report = inspect_recording(path)
    assert report.codecs == {"video": ffmpeg_video, "audio": "opus"}
    assert report.duration is not None and abs(report.duration - 10.0) <= 0.3
    assert report.first_video_keyframe
    sent = call.video.sent
    assert report.video_packets >= 0.99 * sent
    assert len(report.indices) >= 0.99 * sent
    # Every picture in the file is a distinct sent frame, in order, at its time.
    assert report.indices == sorted(set(report.indices))
    assert max(report.offsets) - min(report.offsets) < 0.01
    assert abs(report.offsets[0]) < 0.05
    assert report.audio_packets >= 0.99 * call.audio.sent
    # Audio and video share the start: both end where 10 s of media ends.
    assert abs(report.audio_end - report.video_end) < 0.1
    assert report.sizes == {(480, 360)}

    by_kind = {t["kind"]: t for t in section["tracks"]}
    assert by_kind["video"]["dropped"] == 0 and by_kind["audio"]["dropped"] == 0
    assert by_kind["video"]["resolution"] == [480, 360]
    assert section["dropped"] == 0
    check_pictures(call_dir, section, at_least=9)
    # One keyframe a second for the pictures, each decoded alone.
    assert section["frames"]["from_keyframe_alone"] == section["frames"]["saved"]
    assert section["frames"]["decoded"] == section["frames"]["saved"]


async def test_resolution_change_mid_call_is_recorded(watch, tmp_path):
    def size(index):
        return (320, 240) if index < 45 else (480, 360)

    call, call_dir, section, _ = await record_call(
        watch, tmp_path, RecordingOptions(), seconds=3.0, size=size, audio=False
    )
    assert section["state"] == "complete"
    [video] = section["tracks"]
    assert video["resolution"] == [480, 360]
    [change] = video["resolution_changes"]
    assert (change["width"], change["height"]) == (480, 360) and abs(change["t"] - 1.5) < 0.1
    report = inspect_recording(call_dir.file("recording.webm"))
    assert report.sizes == {(320, 240), (480, 360)}
    # All but the last frame, which aiortc's jitter buffer never releases.
    assert len(report.indices) >= call.video.sent - 1
    assert report.indices == sorted(set(report.indices))


async def test_transcode_mode_writes_h264_aac_mp4_at_first_frame_size(watch, tmp_path):
    def size(index):
        return (480, 360) if index < 45 else (320, 240)

    call, call_dir, section, _ = await record_call(
        watch, tmp_path, RecordingOptions(mode="transcode"), seconds=3.0, size=size
    )
    assert section["state"] == "complete" and section["container"] == "mp4"
    assert section["transcode"]["size"] == [480, 360] and section["transcode"]["scaled_frames"] > 0
    report = inspect_recording(call_dir.file("recording.mp4"))
    assert report.codecs == {"video": "h264", "audio": "aac"}
    assert report.duration is not None and abs(report.duration - 3.0) <= 0.3
    assert report.sizes == {(480, 360)}
    assert len(report.indices) >= call.video.sent - 1
    assert report.indices == sorted(set(report.indices))
    assert max(report.offsets) - min(report.offsets) < 0.01
    check_pictures(call_dir, section, at_least=2)


async def test_no_record_still_samples_pictures_and_zero_interval_none(watch, tmp_path):
    _, call_dir, section, _ = await record_call(
        watch, tmp_path, RecordingOptions(enabled=False), seconds=2.0, audio=False
    )
    assert section["state"] == "complete" and section["file"] is None
    assert not list(call_dir.path.glob("recording.*"))
    check_pictures(call_dir, section, at_least=2)

    _, call_dir, section, _ = await record_call(
        watch, tmp_path, RecordingOptions(frame_interval=0), seconds=1.0, audio=False
    )
    assert section["file"] == "recording.webm"
    assert [f["kind"] for f in section["files"]] == ["recording"]
    assert not list(call_dir.path.glob("frame-*"))


async def test_slow_disk_drops_are_counted_logged_and_file_stays_valid(watch, tmp_path, monkeypatch, caplog):
    # Stand-in for a disk that stalls: each write of a video frame takes
    # longer than a frame lasts, so the bounded queue overflows.
    original = containers.PassthroughMuxer.write

    def slow_write(self, frame, ms, duration_ms=None):
        if frame.kind == "video":
            time.sleep(0.06)
        return original(self, frame, ms, duration_ms)

    monkeypatch.setattr(containers.PassthroughMuxer, "write", slow_write)
    call, call_dir, section, _ = await record_call(
        watch, tmp_path, RecordingOptions(queue_frames=16, frame_interval=0), seconds=3.0, audio=False
    )
    [video] = section["tracks"]
    assert video["dropped"] > 0 and section["dropped"] == video["dropped"]
    assert video["frames"] + video["dropped"] >= call.video.sent - 1
    assert "consumer is behind, dropped" in caplog.text
    report = inspect_recording(call_dir.file("recording.webm"))
    # What is in the file decodes: after each drop it resumes on a keyframe.
    assert len(report.indices) == video["frames"] == report.video_packets
    assert report.indices == sorted(set(report.indices))
    assert video["keyframes"] >= 2


async def test_stop_is_idempotent_and_add_source_after_stop_is_refused(watch, tmp_path):
    call_dir = create_call_directory(tmp_path / "calls")
    recorder = CallRecorder(call_dir, RecordingOptions())
    tracks = []

    def on_track(track, receiver):
        tap = EncodedFrameTap.attach(receiver, track, decode=False)
        recorder.add_source(tap)
        tracks.append(tap)

    call = await open_call(watch, seconds=0.5, on_track=on_track)
    await wait_senders_done(call, 10)
    first, second = await asyncio.gather(recorder.stop("hangup"), recorder.stop("sigterm"))
    assert first is second and first["stop_reason"] == "hangup"
    assert await recorder.stop("again") is first
    with pytest.raises(InvalidState, match="stopped"):
        recorder.add_source(tracks[0])
    await call.close()


def test_options_are_validated():
    with pytest.raises(InvalidOptionError, match="mode"):
        RecordingOptions(mode="mp3")
    with pytest.raises(ValueError):
        RecordingOptions(frame_interval=-1)
    assert not RecordingOptions(frame_interval=0).sampling


async def test_recorder_with_no_tracks_stops_empty(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    recorder = CallRecorder(create_call_directory(tmp_path / "calls"), RecordingOptions())
    section = await recorder.stop("hangup")
    assert section["state"] == "empty" and section["files"] == []
