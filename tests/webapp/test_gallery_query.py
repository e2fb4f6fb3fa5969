"""GET /api/calls with a page, a caller and dates: the gallery asks the server
for one page of matching calls instead of every call there is."""

from __future__ import annotations

import calendar
import json

import aiohttp
import pytest

from media.storage import new_call_id
from webapp.auth import mint_token
from webapp.config import SecurityConfig
from tests.support.server import running_server, test_config

SECRET = "gallery-secret-0123456789-0123456789"
PEOPLE = ["ann"] * 14 + ["ben"] * 10 + ["cat"] * 6  # days 1-14, 15-24, 25-30 of January 2026


def make_call(calls_dir, caller: str, day: int, **meta) -> str:
    call_id = new_call_id(calendar.timegm((2026, 1, day, 12, 0, 0)))
    d = calls_dir / call_id
    d.mkdir(parents=True)
    (d / "recording.webm").write_bytes(b"\x1a\x45\xdf\xa3" * 16)
    base = {"call_id": call_id, "caller": caller, "bot": "bot", "status": "complete",
            "started_at": f"2026-01-{day:02d}T12:00:00.000Z", "duration": float(day)}
    (d / "meta.json").write_text(json.dumps({**base, **meta}))
    return call_id


@pytest.fixture
def january(tmp_path):
    config = test_config(tmp_path)
    ids = [make_call(config.calls_dir, person, day) for day, person in enumerate(PEOPLE, start=1)]
    make_call(config.calls_dir, "dan", 31, kind="peer-to-peer")  # photo copies: never listed
    return config, ids[::-1]  # newest first


async def get(http: aiohttp.ClientSession, url: str, **params: str) -> tuple[int, dict]:
    async with http.get(url + "/api/calls", params=params) as r:
        return r.status, await r.json()


async def test_pages_filters_and_the_old_whole_list(january):
    config, newest_first = january
    async with running_server(config) as srv, aiohttp.ClientSession() as http:
        # No parameters: every call, as before (the contract of old clients).
        status, body = await get(http, srv.url)
        assert status == 200
        assert [c["call_id"] for c in body["calls"]] == newest_first
        assert body["total"] == 30 and body["callers"] == ["ann", "ben", "cat"]

        status, body = await get(http, srv.url, limit="12")
        assert [c["call_id"] for c in body["calls"]] == newest_first[:12]
        assert body["total"] == 30 and body["callers"] == ["ann", "ben", "cat"]
        _, body = await get(http, srv.url, limit="12", offset="24")
        assert [c["call_id"] for c in body["calls"]] == newest_first[24:]
        _, body = await get(http, srv.url, limit="12", offset="30")
        assert body["calls"] == [] and body["total"] == 30

        _, body = await get(http, srv.url, limit="12", caller="ben")
        assert body["total"] == 10 and {c["caller"] for c in body["calls"]} == {"ben"}
        assert body["callers"] == ["ann", "ben", "cat"]  # the filter's choices stay whole

        # Dates are instants, inclusive; any offset is understood.
        _, body = await get(http, srv.url, caller="ben", **{"from": "2026-01-20T00:00:00Z",
                                                            "to": "2026-01-22T23:59:59.999Z"})
        assert [c["started_at"][:10] for c in body["calls"]] == ["2026-01-22", "2026-01-21", "2026-01-20"]
        _, body = await get(http, srv.url, **{"from": "2026-01-30T13:00:00+01:00"})
        assert [c["started_at"][:10] for c in body["calls"]] == ["2026-01-30"]
        _, body = await get(http, srv.url, **{"to": "2026-01-01T11:59:59Z"})
        assert body["calls"] == [] and body["total"] == 0


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "201"}, {"limit": "ten"}, {"limit": "1e3"}, {"limit": "٣"},
    {"offset": "-1"}, {"offset": "9" * 40},
    {"from": "yesterday"}, {"from": "2026-01-20T00:00:00"}, {"to": "2026-13-01T00:00:00Z"},
    {"from": "2026-01-20T00:00:00Z" + " " * 100},
    {"caller": "x" * 129},
])
async def test_bad_parameters_get_a_typed_400_and_the_server_keeps_working(january, params):
    config, newest_first = january
    async with running_server(config) as srv, aiohttp.ClientSession() as http:
        status, body = await get(http, srv.url, **params)
        assert status == 400 and body["error"] == "bad-query" and body["message"], body
        status, body = await get(http, srv.url, limit="1")
        assert status == 200 and [c["call_id"] for c in body["calls"]] == newest_first[:1]


async def test_with_token_auth_the_callers_are_only_those_you_may_read(tmp_path):
    config = test_config(tmp_path, security=SecurityConfig(auth_secret=SECRET))
    for day, person in enumerate(["ann", "ben", "ann", "cat"], start=1):
        make_call(config.calls_dir, person, day)
    async with running_server(config) as srv, aiohttp.ClientSession() as http:
        ann = {"Authorization": f"Bearer {mint_token(SECRET, 'ann')}"}
        async with http.get(srv.url + "/api/calls", params={"limit": "1"}, headers=ann) as r:
            body = await r.json()
        # Nobody learns who else called the bot, nor how often.
        assert body["callers"] == ["ann"] and body["total"] == 2
        assert [c["caller"] for c in body["calls"]] == ["ann"]
        async with http.get(srv.url + "/api/calls", params={"caller": "ben"}, headers=ann) as r:
            body = await r.json()
        assert body["calls"] == [] and body["total"] == 0
        admin = {"Authorization": f"Bearer {mint_token(SECRET, 'root', admin=True)}"}
        async with http.get(srv.url + "/api/calls", headers=admin) as r:
            assert (await r.json())["callers"] == ["ann", "ben", "cat"]


async def test_a_deleted_call_leaves_the_list_and_a_live_one_is_read_fresh(january):
    config, newest_first = january
    live = make_call(config.calls_dir, "eve", 31, status="in-progress")
    async with running_server(config) as srv, aiohttp.ClientSession() as http:
        _, body = await get(http, srv.url, limit="2")
        assert [c["call_id"] for c in body["calls"]] == [live, newest_first[0]]
        # The call ends and its manifest says so: the next list shows it.
        meta = json.loads((config.calls_dir / live / "meta.json").read_text())
        (config.calls_dir / live / "meta.json").write_text(json.dumps({**meta, "status": "complete", "caller": "eve"}))
        _, body = await get(http, srv.url, caller="eve")
        assert [c["status"] for c in body["calls"]] == ["complete"]

        async with http.delete(f"{srv.url}/api/calls/{newest_first[0]}") as r:
            assert r.status == 200
        _, body = await get(http, srv.url, limit="2")
        assert [c["call_id"] for c in body["calls"]] == [live, newest_first[1]] and body["total"] == 30


def test_the_call_index_stays_bounded_and_still_answers(tmp_path):
    from webapp.gallery import CallIndex

    calls = tmp_path / "calls"
    ids = [make_call(calls, f"user{day}", day) for day in range(1, 6)]
    index = CallIndex(limit=2)
    for _ in range(2):
        assert [index.entry(calls / i).caller for i in ids] == [f"user{day}" for day in range(1, 6)]
        assert len(index._entries) == 2
