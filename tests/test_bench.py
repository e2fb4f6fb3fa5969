"""Every benchmark the README quotes still starts: the layout moved the test
helpers it imports once already, and two benches broke unnoticed."""

from __future__ import annotations

import asyncio
import sys

from tests.support.process import ROOT

#: The runnable ones (``record_clip.py`` is a module the others import).
BENCHES = sorted(p for p in (ROOT / "bench").glob("*.py") if '__name__ == "__main__"' in p.read_text())


async def _help(path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(path), "--help", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(errors="replace")


async def test_every_bench_starts():
    assert len(BENCHES) >= 10
    results = await asyncio.gather(*(_help(path) for path in BENCHES))
    broken = {path.name: out[-500:] for path, (rc, out) in zip(BENCHES, results) if rc != 0 or "usage:" not in out}
    assert not broken, broken
