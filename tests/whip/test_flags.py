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


def test_a_negative_limit_is_refused(capsys):
    with pytest.raises(SystemExit):  # a usage error, as for every flag
        config_from_args(["--max-viewers", "-1"])
    assert "viewer limits" in capsys.readouterr().err

