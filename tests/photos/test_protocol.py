"""PhotoAssembler and the wire messages, with no event loop and no I/O."""

from __future__ import annotations

import hashlib
import json

import pytest

from media.errors import InvalidState
from photos.errors import ERROR_CODES, PhotoError
from photos.protocol import (
    _TABLE,
    ByteBudget,
    InvalidMessage,
    MessageRejected,
    PhotoAssembler,
    PhotoBegin,
    PhotoChunk,
    PhotoComplete,
    PhotoEnd,
    PhotoFailed,
    PhotoLimits,
    PhotoQuota,
    State,
    error_reply,
    parse_message,
    saved_reply,
)

from tests.support.photos import begin_message, chunked, end_message

DATA = bytes(range(256)) * 40  # 10240 bytes; content is not checked here
SMALL = PhotoLimits(max_bytes=20_000, max_chunk_bytes=4096, max_photos=5, max_unsaved=2)


def feed(assembler: PhotoAssembler, *messages) -> list:
    events = []
    for m in messages:
        events += assembler.receive(m)
    return events


def photo(photo_id, data: bytes = DATA, chunk: int = 4096, **over) -> list:
    return [begin_message(photo_id, data, **over), *chunked(data, chunk), end_message(photo_id)]


def assert_still_works(a: PhotoAssembler, photo_id="after") -> None:
    """After whatever came before, a clean photo still goes through."""
    events = feed(a, *photo(photo_id))
    assert len(events) == 1 and isinstance(events[0], PhotoComplete), events
    assert events[0].id == photo_id
    assert bytes(events[0].data) == DATA
    assert a.state is State.IDLE
    events[0].slot.commit()


def codes(events) -> list[tuple]:
    return [(type(e).__name__, e.id, e.error.code if hasattr(e, "error") else None) for e in events]


# -- the good path ------------------------------------------------------------


@pytest.mark.parametrize("photo_id", [1, 0, "a", "x" * 128, 2**53 - 1, -5])
def test_a_photo_in_chunks_completes(photo_id) -> None:
    a = PhotoAssembler(SMALL)
    events = feed(a, *photo(photo_id))
    [done] = events
    assert isinstance(done, PhotoComplete)
    assert (done.id, done.name, done.mime, done.size) == (photo_id, "photo.jpg", "image/jpeg", len(DATA))
    assert bytes(done.data) == DATA
    assert done.sha256 == hashlib.sha256(DATA).hexdigest()
    assert a.state is State.IDLE
    assert a.quota.reserved == 1 and not done.slot.settled


def test_one_chunk_and_empty_chunks() -> None:
    a = PhotoAssembler(SMALL)
    events = feed(a, begin_message(1, DATA[:100]), b"", DATA[:100], b"", end_message(1))
    assert codes(events) == [("PhotoComplete", 1, None)]


def test_photos_back_to_back_keep_their_order() -> None:
    a = PhotoAssembler(PhotoLimits(max_unsaved=3))
    events = feed(a, *photo(1), *photo("two", DATA[:5000]), *photo(3, DATA[:7]))
    assert [(e.id, e.size) for e in events] == [(1, len(DATA)), ("two", 5000), (3, 7)]


def test_extra_fields_are_ignored() -> None:
    a = PhotoAssembler(SMALL)
    events = feed(a, begin_message(1, DATA, future="x"), *chunked(DATA, 4096), end_message(1))
    assert codes(events) == [("PhotoComplete", 1, None)]


def test_the_buffer_holds_what_arrived_not_what_was_declared() -> None:
    """Issue 14 #1: a photo-begin declaring 20 MB used to allocate 20 MB."""
    budget = ByteBudget(1 << 20)
    a = PhotoAssembler(PhotoLimits(), quota=PhotoQuota(None, budget=budget))
    feed(a, begin_message(1, DATA, size=20 * 1024 * 1024))
    assert len(a._transfer.buffer) == 0 and budget.used == 0
    feed(a, DATA[:4096])
    assert len(a._transfer.buffer) == 4096 and budget.used == 4096


def test_bytes_over_the_server_budget_fail_the_photo_busy_and_are_given_back() -> None:
    budget = ByteBudget(len(DATA) + 1000)
    a = PhotoAssembler(SMALL, quota=PhotoQuota(None, budget=budget))
    b = PhotoAssembler(SMALL, quota=PhotoQuota(None, budget=budget))
    assert feed(a, begin_message(1, DATA), DATA[:4096], DATA[4096:8192]) == []
    assert codes(feed(b, begin_message(2, DATA), DATA[:4096])) == [("PhotoFailed", 2, "busy")]
    assert budget.used == 8192  # b's bytes were given back with its slot
    (done,) = feed(a, DATA[8192:], end_message(1))
    assert isinstance(done, PhotoComplete) and budget.used == len(DATA)
    done.slot.commit()  # saved: the bytes are no longer held
    assert budget.used == 0
    assert feed(b, begin_message(3, DATA), DATA[:4096]) == []
    b.close()
    assert budget.used == 0 and budget.peak == len(DATA)


def test_photos_in_flight_per_call_are_bounded_over_all_its_channels() -> None:
    quota = PhotoQuota(None, max_in_flight=2, budget=ByteBudget(1 << 30))
    channels = [PhotoAssembler(SMALL, quota=quota) for _ in range(3)]
    assert feed(channels[0], begin_message(1, DATA)) == []
    assert feed(channels[1], begin_message(2, DATA)) == []
    assert codes(feed(channels[2], begin_message(3, DATA))) == [("PhotoFailed", 3, "busy")]
    channels[0].close()
    assert feed(channels[2], begin_message(4, DATA)) == []


# -- every error code, and the assembler keeps working after it ---------------


def _begin(**over) -> str:
    return begin_message(1, DATA, **over)


BAD_MESSAGES = {
    "not json": "{nope",
    "json array": "[1, 2]",
    "json string": '"photo-begin"',
    "NaN": '{"type": "photo-begin", "id": NaN}',
    "no type": '{"id": 1}',
    "unknown type": '{"type": "photo-middle", "id": 1}',
    "type not a string": '{"type": 7}',
    "too long": json.dumps({"type": "photo-end", "id": 1, "pad": "x" * 5000}),
    "deep nesting": "[" * 4000 + "]" * 4000,
    "huge int id": '{"type": "photo-end", "id": ' + "9" * 5000 + "}",
    "end without id": '{"type": "photo-end"}',
    "end with float id": '{"type": "photo-end", "id": 1.0}',
}


@pytest.mark.parametrize("raw", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
def test_bad_message_is_rejected_and_harmless(raw) -> None:
    a = PhotoAssembler(SMALL)
    events = feed(a, raw)
    [event] = events
    assert isinstance(event, MessageRejected)
    assert event.error.code == "bad-message"
    assert a.state is State.IDLE
    assert_still_works(a)


BAD_BEGINS = {
    "id missing": dict(id=None),
    "id bool": dict(id=True),
    "id float": dict(id=1.5),
    "id empty": dict(id=""),
    "id too long": dict(id="x" * 129),
    "id control char": dict(id="a\nb"),
    "id lone surrogate": dict(id="\ud800"),
    "id past 2**53": dict(id=2**53),
    "id list": dict(id=[1]),
    "name missing": dict(name=None),
    "name number": dict(name=5),
    "mime number": dict(mime=3),
    "size missing": dict(size=None),
    "size bool": dict(size=True),
    "size float": dict(size=10240.0),
    "size string": dict(size="10240"),
    "size zero": dict(size=0),
    "size negative": dict(size=-1),
    "sha256 uppercase": dict(sha256="A" * 64),
    "sha256 short": dict(sha256="a" * 63),
    "sha256 not hex": dict(sha256="g" * 64),
    "sha256 number": dict(sha256=1),
}


@pytest.mark.parametrize("over", BAD_BEGINS.values(), ids=BAD_BEGINS.keys())
def test_bad_begin_fails_that_photo_once(over) -> None:
    a = PhotoAssembler(SMALL)
    # The client goes on to send the chunks and the end: they are dropped.
    events = feed(a, _begin(**over), *chunked(DATA, 4096), end_message(over.get("id", 1)))
    [event] = events
    assert isinstance(event, PhotoFailed)
    assert event.error.code == "bad-message"
    assert a.quota.reserved == 0
    assert_still_works(a)


def test_bad_begin_reports_the_id_only_if_valid() -> None:
    a = PhotoAssembler(SMALL)
    [event] = feed(a, _begin(size="big"))
    assert event.id == 1
    [event] = feed(PhotoAssembler(SMALL), _begin(id=1.5))
    assert event.id is None


def _error_cases():
    big = b"\0" * 5000
    return {
        "unknown-mime": [_begin(mime="image/gif"), *chunked(DATA, 4096), end_message(1)],
        "unknown-mime (case)": [_begin(mime="IMAGE/JPEG"), DATA, end_message(1)],
        "too-large": [begin_message(1, b"\0" * 20_001), b"\0" * 4096, end_message(1)],
        "chunk-too-large": [begin_message(1, big), big, end_message(1)],
        # 10240 bytes may come in ceil(10240 / 1024) + 4 = 14 chunks, not 15.
        "too-many-chunks": [_begin(), *[b""] * 5, *chunked(DATA, 1024), end_message(1)],
        "too-many-chunks (tiny)": [begin_message(1, DATA[:100]), *chunked(DATA[:100], 1), end_message(1)],
        "size-mismatch (short)": [_begin(), DATA[:4096], end_message(1)],
        "size-mismatch (overflow)": [
            begin_message(1, DATA[:4000]), DATA[:4096], DATA[:10], end_message(1)
        ],
        "hash-mismatch": [_begin(sha256="0" * 64), *chunked(DATA, 4096), end_message(1)],
        "unexpected-chunk": [DATA[:100], DATA[:100], DATA[:100]],
        "unexpected-chunk then end": [DATA[:100], end_message(9)],
        "unexpected-end": [end_message(1)],
    }


@pytest.mark.parametrize("name", list(_error_cases()))
def test_each_error_is_answered_once_and_the_assembler_recovers(name) -> None:
    code = name.split(" ")[0]
    a = PhotoAssembler(SMALL)
    events = feed(a, *_error_cases()[name])
    assert [e.error.code for e in events] == [code], codes(events)
    assert a.quota.reserved == 0
    assert_still_works(a)


def test_small_chunks_are_fine_within_the_count() -> None:
    a = PhotoAssembler(SMALL)
    events = feed(a, _begin(), *[b""] * 4, *chunked(DATA, 1024), end_message(1))
    assert codes(events) == [("PhotoComplete", 1, None)]
    b = PhotoAssembler(PhotoLimits(min_chunk_bytes=None))
    assert codes(feed(b, *photo(1, DATA[:300], chunk=1))) == [("PhotoComplete", 1, None)]


def test_overflow_is_refused_at_the_chunk_that_overflows() -> None:
    a = PhotoAssembler(SMALL)
    feed(a, begin_message(1, DATA[:5000]), DATA[:4096])
    assert a.state is State.RECEIVING
    [event] = a.receive(DATA[:4096])
    assert (type(event), event.error.code) == (PhotoFailed, "size-mismatch")
    assert a.state is State.DISCARDING and a._transfer is None


def test_id_mismatch_leaves_the_current_photo_alone() -> None:
    a = PhotoAssembler(SMALL)
    events = feed(a, _begin(), DATA[:4096], end_message(2), *chunked(DATA[4096:], 4096), end_message(1))
    assert codes(events) == [("MessageRejected", 2, "id-mismatch"), ("PhotoComplete", 1, None)]


def test_bad_end_while_discarding_a_known_id_is_answered() -> None:
    a = PhotoAssembler(SMALL)
    events = feed(a, _begin(mime="image/gif"), '{"type": "photo-end", "id": 1.5}', end_message(1))
    assert codes(events) == [("PhotoFailed", 1, "unknown-mime"), ("MessageRejected", None, "bad-message")]
    assert a.state is State.IDLE


def test_id_mismatch_while_discarding() -> None:
    a = PhotoAssembler(SMALL)
    events = feed(a, _begin(mime="image/gif"), end_message("other"), end_message(1))
    assert codes(events) == [("PhotoFailed", 1, "unknown-mime"), ("MessageRejected", "other", "id-mismatch")]
    assert a.state is State.IDLE


def test_string_and_int_ids_are_different() -> None:
    a = PhotoAssembler(SMALL)
    events = feed(a, _begin(), *chunked(DATA, 4096), end_message("1"), end_message(1))
    assert codes(events) == [("MessageRejected", "1", "id-mismatch"), ("PhotoComplete", 1, None)]


def test_new_begin_interrupts_the_photo_in_progress() -> None:
    a = PhotoAssembler(SMALL)
    events = feed(a, _begin(), DATA[:4096], *photo(2))
    assert codes(events) == [("PhotoFailed", 1, "interrupted"), ("PhotoComplete", 2, None)]
    assert a.quota.reserved == 1  # only photo 2's slot


def test_invalid_begin_also_interrupts() -> None:
    a = PhotoAssembler(SMALL)
    events = feed(
        a, _begin(), DATA[:4096], begin_message(2, DATA, size=0), *chunked(DATA, 4096), end_message(2)
    )
    assert codes(events) == [("PhotoFailed", 1, "interrupted"), ("PhotoFailed", 2, "bad-message")]
    assert a.state is State.IDLE
    assert_still_works(a)


def test_junk_text_during_a_photo_does_not_break_it() -> None:
    a = PhotoAssembler(SMALL)
    events = feed(
        a, _begin(), DATA[:4096], "junk", '{"type":"hello"}', *chunked(DATA[4096:], 4096), end_message(1)
    )
    assert codes(events) == [
        ("MessageRejected", None, "bad-message"),
        ("MessageRejected", None, "bad-message"),
        ("PhotoComplete", 1, None),
    ]


def test_too_many_photos_counts_saved_and_in_flight_not_failed() -> None:
    a = PhotoAssembler(PhotoLimits(max_photos=2, max_unsaved=5))
    [first] = feed(a, *photo(1))
    first.slot.commit()
    feed(a, *photo(2, sha256="0" * 64))  # failed: gives its slot back
    [second] = feed(a, *photo(3))
    events = feed(a, *photo(4))
    assert codes(events) == [("PhotoFailed", 4, "too-many-photos")]
    second.slot.release()  # e.g. it did not decode
    [again] = feed(a, *photo(5))
    assert isinstance(again, PhotoComplete)


def test_quota_is_shared_between_assemblers() -> None:
    quota = PhotoQuota(1)
    a, b = PhotoAssembler(quota=quota), PhotoAssembler(quota=quota)
    feed(a, _begin())
    assert codes(feed(b, *photo(2))) == [("PhotoFailed", 2, "too-many-photos")]
    assert codes(feed(a, *chunked(DATA), end_message(1))) == [("PhotoComplete", 1, None)]


def test_busy_while_too_many_photos_wait_to_be_saved() -> None:
    a = PhotoAssembler(SMALL)  # max_unsaved=2
    [one] = feed(a, *photo(1))
    [two] = feed(a, *photo(2))
    assert codes(feed(a, *photo(3))) == [("PhotoFailed", 3, "busy")]
    one.slot.commit()
    [three] = feed(a, *photo(3))
    assert isinstance(three, PhotoComplete)
    two.slot.release()
    three.slot.commit()


def test_close_fails_the_photo_in_flight_and_ends_input() -> None:
    a = PhotoAssembler(SMALL)
    feed(a, _begin(), DATA[:10])
    assert codes(a.close()) == [("PhotoFailed", 1, "interrupted")]
    assert a.quota.reserved == 0
    assert a.state is State.CLOSED
    with pytest.raises(InvalidState, match="receive in state closed"):
        a.receive(DATA)
    assert a.state is State.CLOSED
    assert a.close() == []


@pytest.mark.parametrize("state", [State.IDLE, State.DISCARDING])
def test_close_when_no_photo_is_in_flight_says_nothing(state) -> None:
    a = PhotoAssembler(SMALL)
    if state is State.DISCARDING:
        feed(a, DATA[:1])
    assert a.state is state
    assert a.close() == []


def test_transition_table_is_total() -> None:
    kinds = {"PhotoBegin", "invalid-begin", "invalid-end", "InvalidMessage", "PhotoChunk", "PhotoEnd"}
    open_states = set(State) - {State.CLOSED}
    assert set(_TABLE) == {(s, k) for s in open_states for k in kinds}


def test_unlimited_size_grows_the_buffer_instead() -> None:
    a = PhotoAssembler(PhotoLimits(max_bytes=None))
    # A declared petabyte is not allocated up front.
    feed(a, begin_message(1, DATA, size=10**15))
    assert len(a._transfer.buffer) == 0
    feed(a, DATA)
    assert len(a._transfer.buffer) == len(DATA)


# -- messages and replies -----------------------------------------------------


def test_parse_gives_frozen_typed_messages() -> None:
    limits = PhotoLimits()
    begin = parse_message(begin_message("p", DATA, name="a/../b.jpg"), limits)
    assert isinstance(begin, PhotoBegin) and begin.name == "a/../b.jpg"
    with pytest.raises(AttributeError):
        begin.size = 1  # type: ignore[misc]
    assert parse_message(end_message(3), limits) == PhotoEnd(3)
    assert parse_message(b"xy", limits) == PhotoChunk(b"xy")
    assert parse_message(bytearray(b"xy"), limits) == PhotoChunk(b"xy")
    bad = parse_message(123, limits)  # type: ignore[arg-type]
    assert isinstance(bad, InvalidMessage) and bad.error.code == "bad-message"


def test_replies_have_the_wire_shape() -> None:
    assert saved_reply(1, 5, "ab") == {"type": "photo-saved", "id": 1, "size": 5, "sha256": "ab"}
    error = ERROR_CODES["hash-mismatch"]("nope")
    assert error_reply("x", error) == {
        "type": "photo-error", "id": "x", "error": "hash-mismatch", "message": "nope",
    }


def test_error_codes_are_stable() -> None:
    assert sorted(ERROR_CODES) == sorted([
        "bad-message", "unknown-mime", "too-large", "chunk-too-large", "too-many-chunks", "size-mismatch",
        "hash-mismatch", "not-an-image", "mime-mismatch", "unexpected-chunk",
        "unexpected-end", "id-mismatch", "interrupted", "too-many-photos", "busy",
        "storage-failed",
        "photo-refused",  # added with the bot API: a bot's check_photo said no
        "disk-full",  # issue 14: the --min-free-bytes floor applies to photos too
        "timeout",  # issue 14: an upload body that does not arrive in time
    ])
    for code, cls in ERROR_CODES.items():
        assert issubclass(cls, PhotoError) and 400 <= cls.http_status < 600, code


def test_limits_validate_themselves() -> None:
    with pytest.raises(ValueError):
        PhotoLimits(max_bytes=0)
    with pytest.raises(ValueError):
        PhotoLimits(max_photos=True)
    with pytest.raises(ValueError):
        PhotoLimits(max_text_chars=None)  # type: ignore[arg-type]
    assert PhotoLimits(max_bytes=None, max_photos=None).max_bytes is None
