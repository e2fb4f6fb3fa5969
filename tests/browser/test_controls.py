"""Call controls on a live call with the bot, on a laptop and on a phone:
mute (reaching the bot's recording as silence), camera off and on, another
camera during the call, and fullscreen."""

from __future__ import annotations

import json

import numpy as np
from playwright.async_api import expect

from tests.support.browser import SLOW, assert_no_overflow, call_bot, log_in, screenshot
from tests.support.server import running_server, test_config
from tests.support.wait import eventually
from webapp.keys import BOT, CONFIG


#: RMS (full scale 1.0) below which 100 ms of audio counts as silence.
SILENT = 1e-3
#: Chromium's fake microphone plays a steady tone, far above this.
LOUD = 0.05


def _recorder(srv, username):
    return srv.app[BOT].calls[username].media.recorder


def _recorded(srv, username) -> tuple[float, int]:
    """Seconds recorded so far, and video frames in the recording."""
    status = _recorder(srv, username).status()
    video = [t["frames"] for t in status["tracks"] if t["kind"] == "video"]
    return status["duration"], (video[0] if video else 0)


async def _record_for(srv, username, seconds: float) -> None:
    """Waits until `seconds` more of the call have been recorded."""
    start, _ = _recorded(srv, username)
    await eventually(lambda: _recorded(srv, username)[0] >= start + seconds, SLOW / 1000)


def _finished_recording(calls_dir, username):
    for meta_path in calls_dir.glob("*/meta.json"):
        meta = json.loads(meta_path.read_text())
        if meta.get("caller") == username and meta.get("status") == "complete" and meta["recording"]["file"]:
            return meta_path.parent / meta["recording"]["file"]
    return None


def _loudness(path) -> list[float]:
    """RMS of each 100 ms of the recording's audio, in order."""
    import av

    samples = []
    with av.open(str(path)) as container:
        rate = container.streams.audio[0].rate
        for frame in container.decode(audio=0):
            samples.append(frame.to_ndarray().astype(np.float64).mean(axis=0))
    audio = np.concatenate(samples)
    step = rate // 10
    return [float(np.sqrt((audio[i:i + step] ** 2).mean())) for i in range(0, len(audio) - step + 1, step)]


def _longest_silence(levels: list[float]) -> tuple[int, int]:
    """(start, length) of the longest run of silent 100 ms windows."""
    best, run_start = (0, 0), None
    for i, level in enumerate(levels + [1.0]):
        if level < SILENT:
            run_start = i if run_start is None else run_start
        elif run_start is not None:
            best = max(best, (run_start, i - run_start), key=lambda r: r[1])
            run_start = None
    return best


async def test_mute_reaches_the_bots_recording_as_silence(open_page, size, tmp_path):
    async with running_server(test_config(tmp_path)) as srv:
        name = f"tom-{size}"
        page = await open_page(srv.url, size=size)
        await log_in(page, name)
        await call_bot(page)
        mic = page.locator("#mic-button")
        await expect(mic).to_have_text("Mute")
        await _record_for(srv, name, 1.5)

        await mic.click()
        await expect(mic).to_have_text("Unmute")
        await expect(mic).to_have_attribute("data-on", "false")
        await screenshot(page, f"30-muted-{size}")
        await _record_for(srv, name, 2.5)
        await mic.click()
        await expect(mic).to_have_attribute("data-on", "true")
        await _record_for(srv, name, 1.5)
        await page.click("#hangup-button")
        await expect(page.locator("#call-state")).to_have_attribute("data-state", "ended")

        recording = await eventually(lambda: _finished_recording(srv.app[CONFIG].calls_dir, name), SLOW / 1000)
    levels = _loudness(recording)
    start, length = _longest_silence(levels)
    # About 2.5 s muted: at least 2 s of silence, with the tone before and after.
    assert length >= 20, f"longest silence {length / 10} s in {[round(v, 3) for v in levels]}"
    assert max(levels[:start]) > LOUD and max(levels[start + length:]) > LOUD, levels


async def test_camera_off_on_another_camera_and_fullscreen(open_page, size, tmp_path):
    async with running_server(test_config(tmp_path)) as srv:
        name = f"uma-{size}"
        page = await open_page(srv.url, size=size)
        await log_in(page, name)
        await call_bot(page)
        await _record_for(srv, name, 1.0)
        _, frames = _recorded(srv, name)
        assert frames > 0

        # Camera off: the camera is released and no video reaches the bot.
        camera = page.locator("#camera-button")
        await camera.click()
        await expect(camera).to_have_text("Camera on")
        await expect(page.locator("#camera-off")).to_be_visible()
        await expect(page.locator("#local-video")).to_be_hidden()
        assert await page.evaluate(
            "() => document.querySelector('#local-video').srcObject.getVideoTracks().length"
        ) == 0
        await expect(page.locator("#snapshot-button")).to_be_disabled()
        await screenshot(page, f"31-camera-off-{size}")
        await _record_for(srv, name, 0.5)  # what was in flight has arrived
        _, off = _recorded(srv, name)
        await _record_for(srv, name, 2.0)  # audio goes on
        _, still = _recorded(srv, name)
        assert still == off, f"{still - off} video frames reached the bot with the camera off"

        # Camera on again: video flows again.
        await camera.click()
        await expect(camera).to_have_text("Camera off")
        await expect(page.locator("#local-video")).to_be_visible()
        await eventually(lambda: _recorded(srv, name)[1] > still + 10, SLOW / 1000)

        # The other camera, during the call.
        await page.click("#devices-button")
        select = page.locator("#camera-select")
        await expect(select.locator("option")).to_have_count(3)
        before = await page.evaluate(
            "() => document.querySelector('#local-video').srcObject.getVideoTracks()[0].getSettings().deviceId"
        )
        assert await select.input_value() == before
        options = await select.locator("option").evaluate_all("os => os.map(o => [o.value, o.textContent])")
        # Chromium's fake_device_1 is a depth camera (Y16) whose frames no
        # encoder takes; fake_device_2 is an ordinary (MJPEG) one.
        other = next(value for value, label in options if label == "fake_device_2")
        await select.select_option(other)
        await page.wait_for_function(
            "(id) => { const s = document.querySelector('#local-video').srcObject;"
            " const t = s && s.getVideoTracks()[0]; return t && t.readyState === 'live' && t.getSettings().deviceId === id; }",
            arg=other,
        )
        _, switched = _recorded(srv, name)
        await eventually(lambda: _recorded(srv, name)[1] > switched + 10, SLOW / 1000)
        await assert_no_overflow(page, "device choice")
        await screenshot(page, f"32-devices-{size}")

        # Fullscreen and back.
        await page.click("#fullscreen-button")
        await page.wait_for_function("() => document.fullscreenElement?.id === 'stage'")
        await expect(page.locator("#fullscreen-button")).to_have_text("Exit fullscreen")
        await page.click("#fullscreen-button")
        await page.wait_for_function("() => document.fullscreenElement === null")
        await expect(page.locator("#fullscreen-button")).to_have_text("Fullscreen")
        await page.click("#hangup-button")
        await expect(page.locator("#call-state")).to_have_attribute("data-state", "ended")
