"""Random message sequences: the assembler never raises, every photo ends once."""

from __future__ import annotations

import hashlib
import json

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from photos.errors import ERROR_CODES, PhotoError
from photos.protocol import (
    MIME_TYPES,
    MessageRejected,
    PhotoAssembler,
    PhotoComplete,
    PhotoFailed,
    PhotoLimits,
    error_reply,
    parse_message,
    saved_reply,
    validate_id,
)

LIMITS = PhotoLimits(
    max_bytes=2000, max_chunk_bytes=512, min_chunk_bytes=64, max_photos=2, max_unsaved=2,
    max_text_chars=300, max_id_chars=8,
)

IDS = st.sampled_from([1, 2, 0, -1, "a", "b", "1"])
JSON_JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**60), 2**60), st.floats(allow_nan=False),
    st.text(max_size=12), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
import pytest

pytestmark = pytest.mark.slow  # real calls, processes or real-time media
HEX64 = st.text("0123456789abcdef", min_size=64, max_size=64)


@st.composite
def json_noise(draw) -> str:
    """Objects shaped like ours with any field missing or wrong."""
    obj = draw(st.fixed_dictionaries({}, optional={
        "type": st.sampled_from(["photo-begin", "photo-end", "photo-saved"]) | JSON_JUNK,
        "id": IDS | JSON_JUNK,
        "name": st.text(max_size=20) | JSON_JUNK,
        "mime": st.sampled_from([*MIME_TYPES, "image/gif"]) | JSON_JUNK,
        "size": st.integers(-1, 2500) | JSON_JUNK,
        "sha256": HEX64 | JSON_JUNK,
    }))
    return json.dumps(obj)


@st.composite
def photo_script(draw) -> list[str | bytes]:
    """A photo as a client sends it, sometimes spoiled in one way."""
    photo_id = draw(IDS)
    n = draw(st.integers(1, 2200))
    data = bytes([draw(st.integers(0, 255))]) * n  # content does not matter; the hash does
    step = draw(st.integers(1, 600))
    spoil = draw(st.sampled_from(
        ["none", "none", "none", "none", "none", "hash", "size+", "size-", "no-end", "other-end", "cut", "mime"]
    ))
    size = len(data) + {"size+": 7, "size-": -1}.get(spoil, 0)
    begin = {
        "type": "photo-begin", "id": photo_id, "name": draw(st.text(max_size=20)),
        "mime": "image/x" if spoil == "mime" else draw(st.sampled_from(list(MIME_TYPES))),
        "size": max(size, 1), "sha256": "0" * 64 if spoil == "hash" else hashlib.sha256(data).hexdigest(),
    }
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    if spoil == "cut":
        chunks = chunks[:-1]
    end = [] if spoil == "no-end" else [json.dumps({"type": "photo-end", "id": "zz" if spoil == "other-end" else photo_id})]
    return [json.dumps(begin), *chunks, *end]


SINGLE = st.one_of(
    json_noise(),
    st.text(max_size=40),
    st.binary(max_size=700),
    st.just('{"type":"photo-begin"' + " " * 400 + "}"),  # over max_text_chars
    IDS.map(lambda i: json.dumps({"type": "photo-end", "id": i})),
)
# Whole photos three times as often as single stray messages.
SEQUENCES = st.lists(st.one_of(photo_script(), photo_script(), photo_script(), SINGLE.map(lambda m: [m])), max_size=25).map(
    lambda parts: [m for part in parts for m in part]
)


def hypothesis_event(e) -> None:
    """Label examples by what they reached, for --hypothesis-show-statistics."""
    event(type(e).__name__ if isinstance(e, PhotoComplete) else e.error.code)


def _reject(name: str) -> None:
    raise ValueError(name)


def expected_outcome_id(raw) -> tuple[bool, object]:
    """(is this a photo-begin attempt, the id its outcome must carry)."""
    if not isinstance(raw, str) or len(raw) > LIMITS.max_text_chars:
        return False, None
    try:
        obj = json.loads(raw, parse_constant=_reject)
    except (ValueError, RecursionError):
        return False, None
    if not isinstance(obj, dict) or obj.get("type") != "photo-begin":
        return False, None
    try:
        return True, validate_id(obj.get("id"), LIMITS)
    except PhotoError:
        return True, None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=SEQUENCES, data=st.data())
def test_random_sequences(messages, data) -> None:
    a = PhotoAssembler(LIMITS)
    outcomes: list = []
    expected_ids: list = []
    committed = 0
    unsettled: list[PhotoComplete] = []

    def settle_some() -> None:
        # The shell saves photos (or finds they do not decode) in its own time.
        nonlocal committed
        while unsettled and data.draw(st.integers(0, 7), label="settle one?") == 0:
            photo = unsettled.pop(0)
            if data.draw(st.booleans(), label="commit"):
                photo.slot.commit()
                committed += 1
            else:
                photo.slot.release()

    for raw in messages:
        settle_some()
        is_begin, photo_id = expected_outcome_id(raw)
        if is_begin:
            expected_ids.append(photo_id)
        for ev in a.receive(raw):  # never raises
            if isinstance(ev, PhotoComplete):
                assert hashlib.sha256(ev.data).hexdigest() == ev.sha256
                assert len(ev.data) <= LIMITS.max_bytes
                json.dumps(saved_reply(ev.id, ev.size, ev.sha256))
                unsettled.append(ev)
            else:
                assert isinstance(ev, (PhotoFailed, MessageRejected))
                assert ev.error.code in ERROR_CODES
                reply = error_reply(ev.id, ev.error)
                assert json.loads(json.dumps(reply)) == reply
            if isinstance(ev, (PhotoComplete, PhotoFailed)):
                outcomes.append(ev)
            hypothesis_event(ev)
        assert a.quota.saved + a.quota.reserved <= LIMITS.max_photos
        # At most the photo in flight plus those waiting to be saved.
        assert a.quota.reserved <= 1 + len(unsettled) <= 1 + LIMITS.max_unsaved
    outcomes += a.close()
    for photo in unsettled:
        photo.slot.commit()
        committed += 1
    # Every photo-begin, good or bad, got exactly one outcome, in order.
    assert [e.id for e in outcomes] == expected_ids
    assert (a.quota.reserved, a.quota.saved) == (0, committed)


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.text(max_size=400), st.binary(max_size=64), json_noise()))
def test_parse_never_raises(raw) -> None:
    parse_message(raw, LIMITS)
