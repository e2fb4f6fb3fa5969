"""Fixtures for media tests: loopback ICE and receive-started events."""

from __future__ import annotations

import logging

import pytest

from callbot.peer.ice import restore_host_addresses
from tests.media.mediatest_support import ReceiveWatch, use_loopback_ice


@pytest.fixture
def watch(monkeypatch) -> ReceiveWatch:
    use_loopback_ice()
    yield ReceiveWatch(monkeypatch)
    restore_host_addresses()


@pytest.fixture(autouse=True)
def _media_logs(caplog):
    # Drop and keyframe warnings are part of what tests check.
    caplog.set_level(logging.INFO, logger="callbot.media")
