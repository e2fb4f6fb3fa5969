"""The WHEP flags and their environment variables."""

from __future__ import annotations

import pytest

from webapp.flags import config_from_args


def test_viewer_limits_from_flags_and_environment(monkeypatch):
    assert (config_from_args([]).bot.max_viewers, config_from_args([]).bot.max_viewers_per_call) == (16, 4)
    config = config_from_args(["--max-viewers", "3", "--max-viewers-per-call", "1"])
    assert (config.bot.max_viewers, config.bot.max_viewers_per_call) == (3, 1)
    monkeypatch.setenv("CALLBOT_MAX_VIEWERS", "0")
    monkeypatch.setenv("CALLBOT_MAX_VIEWERS_PER_CALL", "2")
    config = config_from_args([])
    assert (config.bot.max_viewers, config.bot.max_viewers_per_call) == (0, 2)


def test_a_negative_limit_is_refused():
    with pytest.raises(ValueError, match="viewer limits"):
        config_from_args(["--max-viewers", "-1"])


def test_flags_in_argument_groups_read_their_environment_variable(monkeypatch):
    # Every flag but the first few sits in an argument group, whose
    # add_argument is not the parser's: their variables used to be ignored.
    monkeypatch.setenv("CALLBOT_MAX_CALLS", "5")
    monkeypatch.setenv("CALLBOT_STUN", "stun:a.example,stun:b.example")
    monkeypatch.setenv("CALLBOT_NO_RECORD", "1")
    monkeypatch.setenv("CALLBOT_HEARTBEAT", "7.5")
    config = config_from_args([])
    assert config.bot.max_calls == 5 and config.heartbeat == 7.5
    assert config.ice.stun_urls == ("stun:a.example", "stun:b.example") and not config.recording.enabled
    # The command line still wins.
    assert config_from_args(["--max-calls", "9"]).bot.max_calls == 9
