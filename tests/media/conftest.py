"""Fixtures for media tests: receive-started events (loopback ICE comes from tests/conftest.py)."""

from __future__ import annotations

import logging

import pytest

from tests.support.media import ReceiveWatch


@pytest.fixture
def watch(monkeypatch) -> ReceiveWatch:
    yield ReceiveWatch(monkeypatch)


@pytest.fixture(autouse=True)
def _media_logs(caplog):
    # Drop and keyframe warnings are part of what tests check.
    caplog.set_level(logging.INFO, logger="media")
