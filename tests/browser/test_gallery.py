"""The gallery, on a laptop and on a phone: a call going on shown in plain
words and kept up to date without a click, filters by person and date, pages,
downloads of recordings and photos, and the frames of a call in one row."""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import json
import re
from urllib.parse import parse_qs, urlsplit

import aiohttp
from playwright.async_api import expect

from media.storage import new_call_id
from tests.support.browser import (
    SLOW,
    assert_no_overflow,
    log_in,
    picture_jpeg,
    screenshot,
)
from tests.support.caller import Caller
from tests.support.server import Client, running_server, test_config


PEOPLE = ["ann"] * 14 + ["ben"] * 10 + ["cat"] * 6


def _make_call(calls_dir, caller: str, day: int, *, frames: int = 1) -> str:
    """A finished call directory as the bot leaves one (made by hand), from
    noon UTC on that day of January 2026."""
    call_id = new_call_id(calendar.timegm((2026, 1, day, 12, 0, 0)))
    d = calls_dir / call_id
    (d / "frames").mkdir(parents=True)
    for i in range(frames):
        (d / "frames" / f"frame-{i:06d}.jpg").write_bytes(picture_jpeg(160, 90))
    (d / "photo-0001.jpg").write_bytes(picture_jpeg(320, 180))
    (d / "recording.webm").write_bytes(bytes(range(256)) * 64)
    meta = {
        "call_id": call_id, "caller": caller, "bot": "bot", "status": "complete",
        "started_at": f"2026-01-{day:02d}T12:00:00.000Z", "duration": 60.0 + day,
        "photos": [{"file": "photo-0001.jpg", "name": f"snap-{caller}.jpg", "size": 1}],
        "recording": {"file": "recording.webm"},
    }
    (d / "meta.json").write_text(json.dumps(meta))
    return call_id


async def _open_gallery(open_page, url, size, name):
    page = await open_page(url, size=size)
    await log_in(page, name)
    await page.click("#tab-gallery")
    return page



async def _drain(client: Client) -> None:
    while True:
        await client.ws.receive()

async def test_filters_pages_and_downloads(open_page, size, tmp_path):
    config = test_config(tmp_path)
    for day, person in enumerate(PEOPLE, start=1):
        _make_call(config.calls_dir, person, day, frames=12 if day == 30 else 1)
    async with running_server(config) as srv:
        page = await open_page(srv.url, size=size)
        lists: list[dict[str, list[str]]] = []  # the query of every GET /api/calls the page makes
        page.on("request", lambda r: lists.append(parse_qs(urlsplit(r.url).query))
                if urlsplit(r.url).path == "/api/calls" else None)
        await log_in(page, f"yan-{size}")
        await page.click("#tab-gallery")
        cards = page.locator(".call-card")
        pages = page.locator("#gallery-page")
        await expect(cards).to_have_count(12)
        await expect(pages).to_have_text("Page 1 of 3 · 30 calls")
        await assert_no_overflow(page, "gallery")
        await screenshot(page, f"60-gallery-{size}")
        await page.click("#gallery-next")
        await expect(pages).to_have_text("Page 2 of 3 · 30 calls")
        await page.click("#gallery-next")
        await expect(cards).to_have_count(6)
        await expect(page.locator("#gallery-next")).to_be_disabled()

        # By person: the list of people comes from the calls.
        person = page.locator("#gallery-person")
        await expect(person.locator("option")).to_have_text(["Everyone", "ann", "ben", "cat"])
        await person.select_option("ben")
        await expect(cards).to_have_count(10)
        await expect(page.locator("#gallery-pager")).to_be_hidden()
        for text in await cards.locator(".call-card-caller").all_inner_texts():
            assert text == "ben with the bot"
        # And by date (days 15 to 24 are ben's 1st to 10th call).
        await page.fill("#gallery-from", "2026-01-20")
        await page.fill("#gallery-to", "2026-01-22")
        await expect(cards).to_have_count(3)
        await page.fill("#gallery-to", "2026-01-01")
        await expect(page.locator("#gallery-status")).to_have_text("No calls match these filters.")
        # The server does the paging and filtering: the page asks for 12 calls
        # at a time, never for the whole list (the old page fetched every call
        # with every frame, and paged and filtered them itself).
        assert lists and all(q.get("limit") == ["12"] for q in lists), lists
        assert any(q.get("offset") == ["24"] for q in lists), lists
        assert any(q.get("caller") == ["ben"] and "from" in q and "to" in q for q in lists), lists
        await assert_no_overflow(page, "gallery filtered")
        await screenshot(page, f"61-gallery-filtered-{size}")
        await page.click("#gallery-clear")
        await expect(pages).to_have_text("Page 1 of 3 · 30 calls")

        # Downloads: the recording from the card, the photo from the viewer,
        # byte for byte what is on disk.
        newest = cards.first
        call_id = await newest.get_attribute("data-call-id")
        call_dir = config.calls_dir / call_id
        async with page.expect_download() as info:
            await newest.locator("[data-action=download-recording]").click()
        download = await info.value
        assert re.fullmatch(r"cat-2026-01-30T12-00-00-000-recording\.webm", download.suggested_filename)
        assert (await download.path()).read_bytes() == (call_dir / "recording.webm").read_bytes()

        await newest.locator("[data-action=open]").click()
        viewer = page.locator("#viewer")
        await expect(viewer).to_be_visible()
        async with page.expect_download() as info:
            await viewer.locator("[data-action=download-photo]").click()
        download = await info.value
        assert download.suggested_filename.endswith("-photo-1.jpg")
        assert (await download.path()).read_bytes() == (call_dir / "photo-0001.jpg").read_bytes()

        # Twelve frames sit in one row that scrolls sideways, not a column.
        frames = viewer.locator(".strip-frame li")
        await expect(frames).to_have_count(12)
        tops = {round((await frames.nth(i).bounding_box())["y"]) for i in (0, 5, 11)}
        assert len(tops) == 1, tops
        assert await viewer.locator(".strip-frame .strip-list").evaluate("(e) => e.scrollWidth > e.clientWidth")
        await assert_no_overflow(page, "gallery viewer")
        await screenshot(page, f"62-gallery-viewer-{size}")


class LiveCaller:
    """An aiortc caller in a call with the bot, its socket kept read (aiohttp
    answers the server's pings only while someone receives)."""

    def __init__(self, client: Client, caller: Caller) -> None:
        self.client, self.caller = client, caller
        self.reading = asyncio.ensure_future(_drain(client))

    @classmethod
    async def start(cls, srv, name: str) -> "LiveCaller":
        client = await Client.connect(srv.ws_url)
        try:
            await client.login(name)
            caller = Caller(client)
            await caller.call()
        except BaseException:
            await client.close()
            raise
        return cls(client, caller)

    async def hangup(self) -> None:
        self.reading.cancel()
        # Its signaling may already be gone (the call then ends anyway).
        with contextlib.suppress(ConnectionError):
            await self.caller.hangup()
        await self.client.close()


async def test_a_call_in_progress_is_live_and_the_list_refreshes_itself(open_page, size, tmp_path):
    config = test_config(tmp_path)
    _make_call(config.calls_dir, "ann", 1)
    async with running_server(config) as srv:
        callers = [await LiveCaller.start(srv, f"live-{size}")]
        try:
            page = await _open_gallery(open_page, srv.url, size, f"zoe-{size}")
            cards = page.locator(".call-card")
            live = page.locator('.call-card[data-status="in-progress"]')
            await expect(live).to_have_count(1)
            # In plain words, not "0:00 · no recording" under a raw status.
            await expect(live.locator(".badge")).to_have_text("Live now")
            await expect(live.locator(".call-card-facts")).to_have_text(re.compile(r"^in progress( · recording)?$"))
            for raw in ("in-progress", "0:00", "no recording", "No picture"):
                await expect(live).not_to_contain_text(raw)
            # A call going on cannot be deleted, nor downloaded half-written;
            # "Watch live" is there exactly when the server offers WHEP for it.
            await expect(live.locator("[data-action=delete]")).to_have_count(0)
            await expect(live.locator("[data-action=download-recording]")).to_have_count(0)
            async with aiohttp.ClientSession() as http, http.get(f"{srv.url}/api/calls") as response:
                summary = next(c for c in (await response.json())["calls"] if c["status"] == "in-progress")
            await expect(live.locator("[data-action=watch-live]")).to_have_count(1 if summary.get("whep") else 0)

            # Another call starts: it shows up without a click.
            callers.append(await LiveCaller.start(srv, f"more-{size}"))
            await expect(live).to_have_count(2, timeout=SLOW)
            await expect(cards).to_have_count(3)
            await assert_no_overflow(page, "gallery with live calls")
            await screenshot(page, f"63-gallery-live-{size}")
        finally:
            for caller in callers:
                await caller.hangup()

        # Once they end, their cards turn into finished calls by themselves.
        await expect(live).to_have_count(0, timeout=SLOW)
        done = page.locator(f'.call-card:has-text("live-{size} with the bot")')
        await expect(done).to_have_attribute("data-status", "complete")
        await expect(done.locator(".call-card-facts")).to_contain_text(re.compile(r"^0:\d\d · 0 photos · \d+ frames · recording"))
        await expect(done.locator("[data-action=delete]")).to_have_count(1)
        await expect(cards).to_have_count(3)
