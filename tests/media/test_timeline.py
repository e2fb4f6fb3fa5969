"""The file timeline, without any media (sans-I/O)."""

from __future__ import annotations

import pytest

from media.timeline import TrackClock


def feed(clock: TrackClock, frames: list[tuple[int, float]]) -> None:
    for timestamp, arrival in frames:
        clock.observe(timestamp, arrival)


def test_tracks_align_on_least_delayed_frames_and_release_delay():
    # Video at 30 fps whose first frame came 200 ms late (encoder start-up);
    # audio 20 ms frames released 4 frames late by the jitter buffer.
    video = TrackClock(90000, release_delay_frames=1)
    audio = TrackClock(48000, release_delay_frames=4)
    feed(video, [(0, 100.2 + 1 / 30)] + [(3000 * i, 100.0 + (i + 1) / 30) for i in range(1, 30)])
    feed(audio, [(960 * i, 100.0 + (i + 4) * 0.02) for i in range(50)])
    epoch = min(video.start_time(0), audio.start_time(0))
    assert epoch == pytest.approx(100.0)
    video.anchor(epoch)
    audio.anchor(epoch)
    assert video.to_ms(0, 100.3) == 0
    assert audio.to_ms(0, 100.08) == 0
    assert video.to_ms(3000, 100.1) == 33
    assert audio.to_ms(960, 100.1) == 20


def test_times_strictly_increase_and_fixups_are_counted():
    clock = TrackClock(90000)
    clock.observe(0, 10.0)
    clock.anchor(10.0)
    assert [clock.to_ms(ts, 10.0) for ts in (0, 30, 60, 3000)] == [0, 1, 2, 33]
    assert clock.fixups == 2


def test_frames_before_the_start_are_skipped():
    clock = TrackClock(48000)
    clock.observe(0, 9.9)
    clock.anchor(10.0)  # another track started 100 ms later
    assert clock.to_ms(0, 9.9) is None
    assert clock.to_ms(4800, 10.0) == 0


def test_rtp_clock_jump_resyncs_on_arrival_time():
    clock = TrackClock(90000, resync_after=5.0)
    clock.observe(0, 0.0)
    clock.anchor(0.0)
    assert clock.to_ms(90000, 1.0) == 1000
    # The sender restarted: RTP time leaps 2**32 ticks ahead (aiortc unwraps
    # a backwards step as a wrap-around).
    assert clock.to_ms((1 << 32) + 10, 1.033) == 1033
    assert clock.to_ms((1 << 32) + 3010, 1.066) == 1066
    assert clock.resyncs == 1


def test_anchor_needs_a_frame():
    with pytest.raises(ValueError):
        TrackClock(90000).anchor(0.0)
