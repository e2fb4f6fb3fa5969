"""The exception tree drawn in media/errors.py is the real one."""

from __future__ import annotations

import re

import media.errors
import peer.api  # noqa: F401  (each import defines part of the tree)
import peer.call  # noqa: F401
import peer.compat  # noqa: F401
import peer.conntest  # noqa: F401
import peer.sdpfrag  # noqa: F401
import peer.whip  # noqa: F401
import photos.errors  # noqa: F401
import signaling.redis_registry  # noqa: F401
import webapp.auth  # noqa: F401
from media.errors import CallbotError

# Defined on purpose but left out of the drawing (the photo tree is drawn in full in photos/errors.py).
_DRAWN_ELSEWHERE = {"PeerError", "ServerError"}


def drawn_tree() -> dict[str, str]:
    """class name -> parent name, read from the docstring's drawing."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    base: int | None = None
    for line in media.errors.__doc__.splitlines():
        if base is None:
            if line.strip().startswith("CallbotError"):
                base = line.index("CallbotError")
                stack.append((0, "CallbotError"))
            continue
        match = re.match(r"^[\s│]*[├└]── ([A-Z]\w+)", line)
        if not match:
            continue
        depth = (line.index("──") - 1 - base) // 4 + 1
        name = match.group(1)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))
    return parents


def real_tree() -> dict[str, str]:
    parents: dict[str, str] = {}

    def walk(cls: type) -> None:
        for sub in cls.__subclasses__():
            if sub.__module__.startswith(("tests.", "_")):
                continue
            parents[sub.__name__] = cls.__name__
            if sub.__name__ not in _DRAWN_ELSEWHERE:
                walk(sub)

    walk(CallbotError)
    return parents


def test_the_drawing_matches_the_classes():
    assert drawn_tree() == real_tree()


def test_one_root_and_no_duplicate_names():
    names = [name for name in real_tree()]
    assert len(names) == len(set(names))
