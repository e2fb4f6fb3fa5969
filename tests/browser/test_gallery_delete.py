"""Deleting a call from the gallery, on a laptop and on a phone: asked first
in a dialog (Cancel keeps it), then gone from the list and from the disk.
"""

from __future__ import annotations

import calendar
import json

from playwright.async_api import expect

from media.storage import new_call_id
from tests.support.browser import assert_no_overflow, log_in, picture_jpeg, screenshot
from tests.support.server import running_server, test_config


def _make_call(calls_dir, caller: str, day: int) -> str:
    call_id = new_call_id(calendar.timegm((2026, 2, day, 9, 30, 0)))
    d = calls_dir / call_id
    (d / "frames").mkdir(parents=True)
    (d / "frames" / "frame-000000.jpg").write_bytes(picture_jpeg(160, 90))
    (d / "recording.webm").write_bytes(bytes(range(256)) * 16)
    (d / "meta.json").write_text(json.dumps({
        "call_id": call_id, "caller": caller, "bot": "bot", "status": "complete",
        "started_at": f"2026-02-{day:02d}T09:30:00.000Z", "duration": 42.0, "photos": [],
        "recording": {"file": "recording.webm"},
    }))
    return call_id


async def test_delete_asks_then_removes_the_call(open_page, size, tmp_path):
    config = test_config(tmp_path)
    keep = _make_call(config.calls_dir, "ida", 1)
    doomed = _make_call(config.calls_dir, "jon", 2)
    async with running_server(config) as srv:
        page = await open_page(srv.url, size=size)
        await log_in(page, f"kim-{size}")
        await page.click("#tab-gallery")
        card = page.locator(f'.call-card[data-call-id="{doomed}"]')
        await expect(page.locator(".call-card")).to_have_count(2)

        # Cancel keeps it.
        await card.locator("[data-action=delete]").click()
        dialog = page.locator("#confirm-delete")
        await expect(dialog).to_be_visible()
        await expect(page.locator("#confirm-text")).to_contain_text("The call of jon")
        await expect(page.locator("#confirm-text")).to_contain_text("can’t be undone")
        await assert_no_overflow(page, "delete dialog")
        await screenshot(page, f"64-delete-confirm-{size}")
        await page.click("#confirm-cancel")
        await expect(dialog).to_be_hidden()
        assert (config.calls_dir / doomed).is_dir()

        # Delete removes it, here and on disk.
        await card.locator("[data-action=delete]").click()
        await page.click("#confirm-delete-button")
        await expect(dialog).to_be_hidden()
        await expect(card).to_have_count(0)
        await expect(page.locator("#gallery-status")).to_have_text("The call of jon was deleted.")
        assert not (config.calls_dir / doomed).exists()
        assert (config.calls_dir / keep).is_dir()
        await expect(page.locator(".call-card")).to_have_count(1)
        await screenshot(page, f"65-deleted-{size}")
