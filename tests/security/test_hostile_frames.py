"""Thousands of generated hostile frames against a live server: it never
crashes, every malformed frame gets an error (or a close, for binary and
oversized frames), and a well-behaved client completes calls throughout."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webapp.config import SecurityConfig
from signaling.protocol import ProtocolError, parse_client_message
from tests.support.server import Client, running_server, test_config
from tests.support.caller import Caller

TYPES = ["login", "presence", "offer", "answer", "candidate", "close", "error", "", "LOGIN"]
odd_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["bot", "good", "a" * 65, "\u202e\u0000\ud7ff", "../../etc/passwd", "💥" * 10, "null"]
)
json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | odd_text
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4), max_leaves=12)
shaped = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES) | json_value},
    optional={
        "username": json_value, "otherUsername": json_value, "offer": json_value,
        "answer": json_value, "candidate": json_value,
    },
)
frames = st.one_of(
    shaped.map(json.dumps),
    json_value.map(json.dumps),
    odd_text,                                            # not JSON at all
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),  # deep nesting
    st.integers(1, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.text(max_size=20).map(lambda s: json.dumps({"type": "login", "username": s * 500})),
    st.binary(min_size=1, max_size=64),                 # binary: closed with 1003
    st.integers(65_537, 70_000).map(lambda n: "x" * n),  # over the size limit: 1009
)

pytestmark = pytest.mark.slow  # real calls, processes or real-time media


class LiveServer:
    """A server and a well-behaved caller running in a loop on another thread."""

    def __init__(self, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop = asyncio.Event()
        self.calls_done = 0
        self.call_errors: list[BaseException] = []
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(tmp),), daemon=True)
        self.thread.start()
        assert self.ready.wait(30)

    async def _main(self, tmp: Path) -> None:
        config = test_config(tmp, security=SecurityConfig(rate_limit=10_000, rate_burst=10_000))
        async with running_server(config) as srv:
            self.srv = srv
            self.ready.set()
            good = await Client.connect(srv.ws_url)
            await good.login("good")
            while not self.stop.is_set():
                try:
                    caller = Caller(good)
                    await caller.call(timeout=15)
                    await caller.hangup()
                    self.calls_done += 1
                except BaseException as exc:  # recorded, asserted on in the test
                    self.call_errors.append(exc)
                    break
            await good.close()

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(60)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("hostile"))
    yield server
    server.close()


def expected_error(frame: str | bytes) -> str | None:
    """What the pure parser says about a text frame (None: it is valid)."""
    try:
        parse_client_message(frame)
    except ProtocolError as exc:
        return exc.code
    return None


async def send_batch(url: str, batch: list[str | bytes]) -> list[tuple[Any, Any]]:
    """Send frames from a logged-in client; after each, a message to an
    offline user whose name is numbered marks where the frame's own answer
    ends (its user-offline error names it). Returns (frame, outcome) pairs."""
    outcomes = []
    async with aiohttp.ClientSession() as http:
        ws = None
        for n, frame in enumerate(batch):
            marker = f"marker-{n}"
            if ws is None or ws.closed:
                ws = await http.ws_connect(url)
                await ws.send_str(json.dumps({"type": "login", "username": f"fuzz{id(ws) % 10**9}"}))
                assert json.loads((await ws.receive(timeout=10)).data)["success"]
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame)
            await ws.send_str(json.dumps({"type": "close", "otherUsername": marker}))
            got = []
            while True:
                msg = await ws.receive(timeout=10)
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    got.append(("close", msg.data if msg.type is aiohttp.WSMsgType.CLOSE else ws.close_code))
                    break
                data = json.loads(msg.data)
                if data.get("code") == "user-offline" and repr(marker) in data.get("message", ""):
                    break
                if data.get("type") != "presence":  # deltas from other fuzz clients are noise
                    got.append(data)
            outcomes.append((frame, got))
        if ws is not None:
            await ws.close()
    return outcomes


# The live server's thread uses `random` (aiortc) while Hypothesis generates;
# that is not the strategies' doing, so Hypothesis's warning about it is noise.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)
@given(batch=st.lists(frames, min_size=50, max_size=50))
def test_hostile_frames_get_errors_and_the_server_carries_on(live, batch):
    for frame, got in live.run(send_batch(live.srv.ws_url, batch)):
        if isinstance(frame, bytes):
            assert got and got[-1][0] == "close" and got[-1][1] == 1003
        elif len(frame.encode()) > 64 * 1024:
            assert got and got[-1][0] == "close" and got[-1][1] == 1009
        else:
            code = expected_error(frame)
            if code is not None:
                (reply,) = got
                assert reply.get("code", reply.get("error")) == code, (frame[:200], reply)
            else:  # a valid message: a reply of its own kind, an error such as user-offline, or silence
                assert all(isinstance(r, dict) and "type" in r for r in got)
    assert not live.call_errors, live.call_errors


def test_the_good_client_kept_calling(live):
    live.run(asyncio.sleep(0))
    assert live.calls_done >= 3 and not live.call_errors, (live.calls_done, live.call_errors)
