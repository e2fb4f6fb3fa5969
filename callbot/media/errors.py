"""Errors raised by the media layer.

Every error here derives from one root, so the bot can catch the media layer's
failures without catching its own bugs::

    MediaError
    ├── UnsupportedAiortcError     the private hook in tap.py does not fit the
    │                              installed aiortc (raised at import or attach)
    ├── InvalidOptionError         a RecordingOptions field is out of range
    │                              (also a ValueError, for argparse callers)
    └── RecorderStateError         an operation that the recorder's current
                                   state does not allow (names the state)
"""

from __future__ import annotations


class MediaError(Exception):
    """Root of every error the media layer raises on purpose."""


class UnsupportedAiortcError(MediaError):
    """The installed aiortc does not match what :mod:`callbot.media.tap` hooks into."""


class InvalidOptionError(MediaError, ValueError):
    """A recording option is out of range."""


class RecorderStateError(MediaError):
    """The recorder is in a state that does not allow the operation."""

    def __init__(self, operation: str, state: str) -> None:
        super().__init__(f"cannot {operation}: recorder is {state}")
        self.operation = operation
        self.state = state
