"""A process that records a loopback call until it is signalled; for crash tests.

    python -m tests.support.record_call_child CALLS_ROOT CODEC SECONDS READY_AT

Prints ``RECORDING <call dir> <duration>`` once the recording holds READY_AT
seconds, then again every ~0.1 s with the current duration, so the test
knows how much media had reached the recorder when it sent its signal. On
SIGTERM it hangs up, stops the recorder ("sigterm"), writes the manifest
(meta.json, as the bot would) and exits 0.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from media.options import RecordingOptions
from media.recorder import CallRecorder
from peer.tap import EncodedFrameTap
from media.storage import atomic_write_json, create_call_directory
from tests.support.media import ReceiveWatch, open_call, use_loopback_ice


class _Patch:
    """ReceiveWatch's monkeypatch, for a process that never undoes it."""

    def setattr(self, target, name, value) -> None:
        setattr(target, name, value)


async def main(calls_root: Path, codec: str, seconds: float, ready_at: float) -> None:
    use_loopback_ice()
    watch = ReceiveWatch(_Patch())
    call_dir = create_call_directory(calls_root)
    recorder = CallRecorder(call_dir, RecordingOptions())
    terminated = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminated.set)

    def on_track(track, receiver):
        recorder.add_source(EncodedFrameTap.attach(receiver, track, decode=False))

    call = await open_call(watch, seconds=seconds, video_codec=codec, on_track=on_track)
    atomic_write_json(call_dir.manifest_path, {"recording": recorder.status()})
    while not terminated.is_set():
        duration = recorder.status()["duration"]
        if duration >= ready_at:
            print(f"RECORDING {call_dir.path} {duration}", flush=True)
        try:
            await asyncio.wait_for(terminated.wait(), 0.1)
        except asyncio.TimeoutError:
            pass
    await call.close()
    section = await recorder.stop("sigterm")
    atomic_write_json(call_dir.manifest_path, {"recording": section})
    print(f"STOPPED {section['duration']}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])))
