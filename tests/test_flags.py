"""Every flag has a CALLBOT_* environment variable (webapp/flags.py)."""

from __future__ import annotations

from webapp.flags import config_from_args


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
