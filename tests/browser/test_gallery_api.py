"""callbot/web/gallery.py over HTTP, with a call directory made by hand."""

from __future__ import annotations

import json

import aiohttp

from media.storage import new_call_id

from tests.support.server import running_server, test_config


def _make_call(calls_dir, **meta):
    call_id = new_call_id()
    d = calls_dir / call_id
    (d / "frames").mkdir(parents=True)
    (d / "frames" / "frame-0001.jpg").write_bytes(b"\xff\xd8frame")
    (d / "photo-0001.jpg").write_bytes(b"\xff\xd8photo")
    (d / "recording.webm").write_bytes(bytes(range(256)) * 40)
    (d / ".tmp-x.jpg").write_bytes(b"half")
    base = {"call_id": call_id, "caller": "pat", "bot": "bot", "status": "complete",
            "started_at": "2026-01-01T00:00:00.000Z", "duration": 12.5,
            "photos": [{"file": "photo-0001.jpg", "name": "snap.jpg", "size": 7}], "recording": {}}
    (d / "meta.json").write_text(json.dumps({**base, **meta}))
    return call_id


async def test_calls_list_files_and_range_requests(tmp_path):
    config = test_config(tmp_path)
    calls = config.calls_dir
    call_id = _make_call(calls)
    _make_call(calls, kind="peer-to-peer")  # photo copies: not a bot call
    async with running_server(config) as srv, aiohttp.ClientSession() as http:
        async with http.get(f"{srv.url}/api/calls") as r:
            body = await r.json()
        assert [c["call_id"] for c in body["calls"]] == [call_id]
        call = body["calls"][0]
        assert call["caller"] == "pat" and call["duration"] == 12.5
        assert [p["name"] for p in call["photos"]] == ["snap.jpg"]
        assert [f["file"] for f in call["frames"]] == ["frames/frame-0001.jpg"]
        assert call["thumbnail"] == call["frames"][0]["url"]
        rec = call["recording"]
        assert rec["mime"] == "video/webm" and rec["size"] == 256 * 40

        async with http.get(srv.url + rec["url"], headers={"Range": "bytes=10-19"}) as r:
            assert r.status == 206
            assert await r.read() == bytes(range(10, 20))
            assert r.headers["Content-Type"] == "video/webm"

        for bad in (".tmp-x.jpg", "meta.json", "..%2F..%2Fetc%2Fpasswd", "missing.jpg"):
            async with http.get(f"{srv.url}/api/calls/{call_id}/files/{bad}") as r:
                assert r.status == 404, bad
        async with http.get(f"{srv.url}/api/calls/not-a-call/files/x.jpg") as r:
            assert r.status == 404
