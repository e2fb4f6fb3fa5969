"""The signaling rules without sockets or an event loop."""

from __future__ import annotations

import json

import pytest

from signaling.protocol import ProtocolError, parse_client_message
from signaling.rules import (
    Claim,
    InvalidState,
    PresenceBatcher,
    Release,
    Reply,
    Route,
    SendPresence,
    SignalingSession,
    State,
)

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def logged_in(name: str = "alice") -> SignalingSession:
    s = SignalingSession(reserved=frozenset({"bot"}))
    assert s.receive_text(json.dumps({"type": "login", "username": name})) == [Claim(name)]
    assert s.claimed(["bot", name]) == [Reply({"type": "login", "success": True, "username": name, "users": ["bot", name]})]
    return s


def error_code(actions) -> str:
    (action,) = actions
    assert isinstance(action, Reply)
    return action.message.get("code") or action.message.get("error")


@pytest.mark.parametrize(
    "frame, code",
    [
        ("{not json", "bad-json"),
        ("[1, 2]", "not-an-object"),
        ('"text"', "not-an-object"),
        ("{}", "unknown-type"),
        ('{"type": "dance"}', "unknown-type"),
        ('{"type": 7}', "unknown-type"),
        ('{"type": "offer"}', "invalid-field"),
        ('{"type": "offer", "otherUsername": 5, "offer": {"type": "offer", "sdp": "x"}}', "invalid-field"),
        ('{"type": "offer", "otherUsername": "bob", "offer": "sdp"}', "invalid-field"),
        ('{"type": "offer", "otherUsername": "bob", "offer": {"type": "answer", "sdp": "x"}}', "invalid-field"),
        ('{"type": "offer", "otherUsername": "bob", "offer": {"type": "offer", "sdp": ""}}', "invalid-field"),
        ('{"type": "answer", "otherUsername": "bob", "answer": {"type": "answer"}}', "invalid-field"),
        ('{"type": "candidate", "otherUsername": "bob"}', "invalid-field"),
        ('{"type": "candidate", "otherUsername": "bob", "candidate": 3}', "invalid-field"),
        ('{"type": "candidate", "otherUsername": "bob", "candidate": {"candidate": "c", "sdpMLineIndex": true}}', "invalid-field"),
        ('{"type": "close", "otherUsername": "../etc"}', "invalid-field"),
        ("[" * 100_000 + "]" * 100_000, "bad-json"),
    ],
)
def test_bad_frames_get_typed_errors_and_state_is_unchanged(frame, code):
    s = logged_in()
    before = (s.state, s.username, set(s.partners))
    assert error_code(s.receive_text(frame)) == code
    assert (s.state, s.username, s.partners) == before
    # still works afterwards
    assert s.receive_text('{"type": "presence"}') == [SendPresence()]


@pytest.mark.parametrize("name", ["", "a" * 65, "has space", "émile", "../x", "-lead", None, 5, ["a"]])
def test_invalid_usernames_are_refused_in_login_shape(name):
    s = SignalingSession()
    (reply,) = s.receive_text(json.dumps({"type": "login", "username": name}))
    assert reply.message["type"] == "login" and reply.message["success"] is False
    assert reply.message["error"] in ("invalid-username", "invalid-field")
    assert s.state is State.CONNECTED


def test_username_safe_set_accepts_documented_characters():
    assert parse_client_message('{"type":"login","username":"Al.ice_9-x@host"}').username == "Al.ice_9-x@host"
    assert parse_client_message(json.dumps({"type": "login", "username": "a" * 64})).username == "a" * 64


def test_bot_name_is_always_taken():
    s = SignalingSession(reserved=frozenset({"bot"}))
    assert error_code(s.receive_text('{"type":"login","username":"bot"}')) == "username-taken"
    assert s.state is State.CONNECTED


def test_second_login_is_refused():
    s = logged_in()
    assert error_code(s.receive_text('{"type":"login","username":"other"}')) == "already-logged-in"
    assert s.username == "alice"


def test_login_while_claiming_is_refused():
    s = SignalingSession()
    s.receive_text('{"type":"login","username":"a"}')
    assert error_code(s.receive_text('{"type":"login","username":"b"}')) == "already-logged-in"


def test_taken_name_lets_the_client_try_again():
    s = SignalingSession()
    s.receive_text('{"type":"login","username":"a"}')
    assert error_code(s.claim_failed()) == "username-taken"
    assert s.state is State.CONNECTED and s.username is None
    assert s.receive_text('{"type":"login","username":"b"}') == [Claim("b")]


@pytest.mark.parametrize("kind", ["presence", "offer", "answer", "candidate", "close"])
def test_messages_before_login_are_refused(kind):
    s = SignalingSession()
    frame = {
        "presence": {"type": "presence"},
        "offer": {"type": "offer", "otherUsername": "b", "offer": {"type": "offer", "sdp": SDP}},
        "answer": {"type": "answer", "otherUsername": "b", "answer": {"type": "answer", "sdp": SDP}},
        "candidate": {"type": "candidate", "otherUsername": "b", "candidate": None},
        "close": {"type": "close", "otherUsername": "b"},
    }[kind]
    assert error_code(s.receive_text(json.dumps(frame))) == "not-logged-in"


def test_message_to_self_is_refused():
    s = logged_in("alice")
    assert error_code(s.receive_text('{"type":"close","otherUsername":"alice"}')) == "self-message"


def test_routing_rebuilds_payloads_and_drops_unknown_fields():
    s = logged_in("alice")
    frame = {
        "type": "candidate", "otherUsername": "bob", "extra": "x",
        "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0",
                      "sdpMLineIndex": 0, "junk": [1]},
    }
    assert s.receive_text(json.dumps(frame)) == [Route("bob", {
        "type": "candidate", "username": "alice",
        "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0},
    })]
    assert s.receive_text('{"type":"candidate","otherUsername":"bob","candidate":null}') == [
        Route("bob", {"type": "candidate", "candidate": None, "username": "alice"})
    ]


def test_partners_get_close_when_the_connection_goes():
    s = logged_in("alice")
    s.receive_text(json.dumps({"type": "offer", "otherUsername": "bob", "offer": {"type": "offer", "sdp": SDP}}))
    s.incoming({"type": "offer", "offer": {"type": "offer", "sdp": SDP}, "username": "carol"})
    s.incoming({"type": "offer", "offer": {"type": "offer", "sdp": SDP}, "username": "dave"})
    s.incoming({"type": "close", "username": "dave"})  # dave hung up: not a partner any more
    assert s.disconnected() == [
        Route("bob", {"type": "close", "username": "alice"}),
        Route("carol", {"type": "close", "username": "alice"}),
        Release("alice"),
    ]
    assert s.state is State.CLOSED
    assert s.disconnected() == []
    with pytest.raises(InvalidState):
        s.receive_text("{}")


def test_offline_target_is_reported_and_forgotten():
    s = logged_in("alice")
    s.receive_text(json.dumps({"type": "offer", "otherUsername": "bob", "offer": {"type": "offer", "sdp": SDP}}))
    assert error_code(s.route_failed("bob")) == "user-offline"
    assert s.disconnected() == [Release("alice")]


def test_claimed_in_wrong_state_raises_naming_the_state():
    s = SignalingSession()
    with pytest.raises(InvalidState, match="claimed in state connected"):
        s.claimed([])


def test_parse_error_carries_message_type():
    with pytest.raises(ProtocolError) as info:
        parse_client_message('{"type":"offer","otherUsername":"b"}')
    assert info.value.code == "invalid-field" and info.value.message_type == "offer"


def test_presence_batcher_coalesces():
    b = PresenceBatcher()
    assert not b
    b.joined("a"); b.joined("b"); b.left("b"); b.left("c"); b.joined("c")
    assert b
    assert b.drain() == (["a"], [])
    assert not b
    b.left("a")
    assert b.drain() == ([], ["a"])


def test_deep_nesting_is_refused_the_same_way_whatever_the_stack():
    from signaling.protocol import MAX_NESTING, nesting_depth

    assert nesting_depth('{"a": "[[[[", "b": [[1]]}') == 3
    assert nesting_depth('["\\\\", ["\\"["]]') == 2
    ok = "[" * MAX_NESTING + "]" * MAX_NESTING
    with pytest.raises(ProtocolError) as info:
        parse_client_message(ok)
    assert info.value.code == "not-an-object"
    for n in (MAX_NESTING + 1, 500, 20_000):
        with pytest.raises(ProtocolError) as info:
            parse_client_message("[" * n + "]" * n)
        assert info.value.code == "bad-json"
