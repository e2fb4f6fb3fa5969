"""An incoming call is hard to miss, on a laptop and on a phone: a ring
(WebAudio), the tab title, and a system notification when the page is in
the background; all of it stops when the call is answered or declined."""

from __future__ import annotations

from playwright.async_api import expect

from tests.support.browser import assert_no_overflow, log_in, screenshot


#: Watches the page's use of the real browser APIs (it still calls them):
#: every AudioContext it makes and the oscillators it starts, and every
#: Notification it shows and closes.
WATCH_APIS = """
(() => {
  const seen = window.__seen = { contexts: [], oscillators: 0, notifications: [], closed: 0 };
  const RealContext = window.AudioContext;
  window.AudioContext = class extends RealContext {
    constructor(...args) { super(...args); seen.contexts.push(this); }
    createOscillator() {
      const osc = super.createOscillator();
      const start = osc.start.bind(osc);
      osc.start = (...a) => { seen.oscillators += 1; return start(...a); };
      return osc;
    }
  };
  const RealNotification = window.Notification;
  window.Notification = class extends RealNotification {
    constructor(title, options) {
      super(title, options);
      seen.notifications.push({ title, body: options && options.body });
    }
    close() { seen.closed += 1; return super.close(); }
  };
})();
"""


async def _seen(page):
    return await page.evaluate(
        "() => ({ ...window.__seen, contexts: window.__seen.contexts.map((c) => c.state) })"
    )


async def test_incoming_call_rings_changes_the_title_and_notifies(open_page, size, server):
    caller = await open_page(size=size)
    await log_in(caller, f"vic-{size}")
    callee = await open_page(size=size)
    await callee.context.grant_permissions(["notifications"], origin=server.url)
    await callee.add_init_script(WATCH_APIS)
    await callee.reload()
    await log_in(callee, f"wes-{size}")
    title = await callee.title()

    # In the background: another window has the focus.
    cdp = await callee.context.new_cdp_session(callee)
    await cdp.send("Emulation.setFocusEmulationEnabled", {"enabled": False})
    other = await callee.context.new_page()
    await other.bring_to_front()
    assert await callee.evaluate("() => document.hasFocus()") is False

    await caller.click(f'#people li[data-username="wes-{size}"] button')
    dialog = callee.locator("#incoming")
    await expect(dialog).to_be_visible()
    await expect(callee.locator("#incoming-text")).to_have_text(f"vic-{size} is calling you")
    await callee.wait_for_function("() => document.title.includes('is calling')")
    # Ringing: real oscillators on a running AudioContext (signing in was
    # the gesture that lets the page play sound).
    await callee.wait_for_function(
        "() => window.__seen.oscillators >= 2 && window.__seen.contexts.some((c) => c.state === 'running')"
    )
    seen = await _seen(callee)
    assert seen["notifications"] == [{"title": f"vic-{size} is calling you", "body": "Open Callbot to answer."}]
    await callee.bring_to_front()
    await assert_no_overflow(callee, "incoming call")
    await screenshot(callee, f"40-incoming-{size}")

    # Declined: the ring, the title and the notification all stop.
    await callee.click("#decline-button")
    await expect(dialog).to_be_hidden()
    await callee.wait_for_function("(t) => document.title === t", arg=title)
    seen = await _seen(callee)
    assert seen["closed"] == 1
    assert all(state == "closed" for state in seen["contexts"]), seen

    # A call that the caller cancels stops ringing too; in the foreground
    # there is no system notification, the dialog is enough.
    await callee.evaluate("() => { window.__seen.notifications = []; }")
    await caller.click(f'#people li[data-username="wes-{size}"] button')
    await expect(dialog).to_be_visible()
    await expect(caller.locator("#hangup-button")).to_have_text("Cancel")
    await callee.wait_for_function("() => window.__seen.contexts.some((c) => c.state === 'running')")
    await caller.click("#hangup-button")
    await expect(dialog).to_be_hidden()
    await callee.wait_for_function("(t) => document.title === t", arg=title)
    seen = await _seen(callee)
    assert all(state == "closed" for state in seen["contexts"]), seen
    assert seen["notifications"] == []
