"""Bounded frame queues: drops are counted, video restarts on a keyframe."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading

import pytest

from media.queues import AsyncFrameQueue, ThreadFrameQueue, TrackEnded
from peer.tap import EncodedFrame


class StubTap:
    """The part of EncodedFrameTap a queue talks to."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sinks: list = []
        self.keyframe_requests = 0

    def subscribe(self, sink) -> None:
        self.sinks.append(sink)

    def unsubscribe(self, sink) -> None:
        self.sinks.remove(sink)

    def request_keyframe(self) -> bool:
        self.keyframe_requests += 1
        return True


def frame(kind: str, index: int, keyframe: bool) -> EncodedFrame:
    return EncodedFrame(
        kind=kind,
        codec="VP8" if kind == "video" else "opus",
        clock_rate=90000 if kind == "video" else 48000,
        timestamp=index * 3000,
        data=b"x",
        keyframe=keyframe,
        arrival=0.0,
        index=index,
    )


def drain(q: ThreadFrameQueue) -> list:
    items = []
    while True:
        try:
            items.append(q.get(timeout=0))
        except queue.Empty:
            return items


def test_full_queue_drops_new_audio_and_counts_and_logs(caplog):
    tap = StubTap("audio")
    q = ThreadFrameQueue(3, name="test")
    q.bind(tap)
    with caplog.at_level(logging.WARNING, logger="media.queues"):
        for i in range(5):
            q.on_frame(frame("audio", i, True))
    assert [f.index for f in drain(q)] == [0, 1, 2]
    assert q.dropped["audio"] == 2
    assert "dropped 1 frames" in caplog.text
    assert tap.keyframe_requests == 0


def test_video_drop_skips_to_next_keyframe_and_requests_one():
    tap = StubTap("video")
    q = ThreadFrameQueue(2, name="test")
    q.bind(tap)
    q.on_frame(frame("video", 0, True))
    q.on_frame(frame("video", 1, False))
    q.on_frame(frame("video", 2, False))  # full: dropped, gate closes
    assert [f.index for f in drain(q)] == [0, 1]
    q.on_frame(frame("video", 3, False))  # room now, but undecodable without 2
    q.on_frame(frame("video", 4, True))
    q.on_frame(frame("video", 5, False))
    assert [f.index for f in drain(q)] == [4, 5]
    assert q.dropped["video"] == 2
    assert tap.keyframe_requests == 1


def test_end_markers_and_control_items_are_never_dropped():
    tap = StubTap("video")
    q = ThreadFrameQueue(1, name="test")
    q.bind(tap)
    q.on_frame(frame("video", 0, True))
    q.on_end(tap)
    q.put_control("stop")
    items = drain(q)
    assert items[0].index == 0 and items[1] == TrackEnded(tap) and items[2] == "stop"


def test_get_blocks_until_an_item_or_timeout():
    q = ThreadFrameQueue(4, name="test")
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)
    got = []
    reader = threading.Thread(target=lambda: got.append(q.get(timeout=5)))
    reader.start()
    q.put_control("wake")
    reader.join(5)
    assert got == ["wake"]


def test_drain_takes_everything_and_frames_wake_the_reader_only_when_half_full():
    tap = StubTap("audio")
    q = ThreadFrameQueue(4, name="test")
    q.bind(tap)
    wakes = []
    notify = q._cond.notify
    q._cond.notify = lambda n=1: (wakes.append(n), notify(n))  # type: ignore[method-assign]
    q.on_frame(frame("audio", 0, True))
    assert wakes == []  # the reader polls; one frame is no reason to switch threads
    q.on_frame(frame("audio", 1, True))
    assert len(wakes) == 1  # half full: wake it now
    q.put_control("stop")
    assert len(wakes) == 2
    items = q.drain(timeout=0)
    assert [f.index for f in items[:2]] == [0, 1] and items[2] == "stop"
    assert q.qsize() == 0 and q.drain(timeout=0) == []


def test_closed_queue_ignores_frames_and_unsubscribes():
    tap = StubTap("audio")
    q = ThreadFrameQueue(4, name="test")
    q.bind(tap)
    q.close()
    q.on_frame(frame("audio", 0, True))
    assert drain(q) == [] and tap.sinks == []


@pytest.mark.asyncio
async def test_async_queue_gates_at_start_and_ends_with_none():
    tap = StubTap("video")
    q = AsyncFrameQueue(tap, 2, name="test")  # type: ignore[arg-type]
    q.gate_until_keyframe()
    q.on_frame(frame("video", 0, False))
    q.on_frame(frame("video", 1, True))
    q.on_frame(frame("video", 2, False))
    q.on_frame(frame("video", 3, False))  # full
    q.on_end(tap)
    got = [await asyncio.wait_for(q.get(), 1) for _ in range(3)]
    assert [f.index for f in got[:2]] == [1, 2] and got[2] is None
    # One request for the frame skipped at the start, one for the overflow.
    assert q.dropped["video"] == 2 and tap.keyframe_requests == 2
