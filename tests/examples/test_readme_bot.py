"""The README's "Write your own bot" works when followed literally: its bot
file, run by a real server process with --bot, answers a real caller."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from tests.support.caller import Caller
from tests.support.process import ROOT, ServerProcess
from tests.support.server import Client
from tests.support.wait import eventually

pytestmark = pytest.mark.slow


def readme_bot() -> tuple[str, str, str]:
    """(file name, code, --bot value) as the README's section gives them."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Write your own bot"):]
    file_name = re.search(r"Put this in `(\w+\.py)`", section).group(1)
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    spec = re.search(r"scripts/serve --bot (\S+?)`", section).group(1)
    return file_name, code, spec


async def test_the_readme_bot_runs_as_written(tmp_path):
    file_name, code, spec = readme_bot()
    (tmp_path / file_name).write_text(code)
    server = await ServerProcess.start(tmp_path / "data", "--bot", spec, cwd=tmp_path)
    try:
        client = await Client.connect(server.ws_url)
        await client.login("alice")
        caller = Caller(client)
        chat = caller.pc.createDataChannel("chat")
        messages: asyncio.Queue = asyncio.Queue()
        chat.on("message", messages.put_nowait)
        await caller.call()
        assert (await asyncio.wait_for(messages.get(), 10)).startswith("hello alice")
        chat.send("ping")
        assert await asyncio.wait_for(messages.get(), 10) == "you said: ping"

        def frame_seen() -> dict | None:
            metas = list((tmp_path / "data" / "calls").glob("*/meta.json"))
            meta = json.loads(metas[0].read_text()) if metas else {}
            return meta if meta.get("bot_data", {}).get("last_frame_size") else None

        meta = await eventually(frame_seen, 15)
        assert meta["bot_data"]["last_frame_size"] == [320, 240]
        await caller.hangup()
        await client.close()
    finally:
        await server.stop()
