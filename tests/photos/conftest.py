"""Fixtures for the photo tests: call directories, real images, loopback ICE."""

from __future__ import annotations

from pathlib import Path

import pytest

from callbot.storage import CallDirectory, create_call_directory

from .helpers import make_jpeg, make_png


@pytest.fixture
def call_dir(tmp_path: Path) -> CallDirectory:
    return create_call_directory(tmp_path / "calls")


@pytest.fixture(scope="session")
def jpeg_10k() -> bytes:
    return make_jpeg(10_000)


@pytest.fixture(scope="session")
def jpeg_300k() -> bytes:
    return make_jpeg(300_000)


@pytest.fixture(scope="session")
def jpeg_3m() -> bytes:
    return make_jpeg(3_000_000)


@pytest.fixture(scope="session")
def png_300k() -> bytes:
    return make_png(300_000)


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ICE gather 127.0.0.1 only.

    aioice's ``get_host_addresses`` skips 127.0.0.1 (and ::1) on purpose, so
    on a machine whose only interface is ``lo`` two peers in one process find
    no candidate pair. ``Connection.gather_candidates`` looks the function up
    in the ``aioice.ice`` module namespace at call time, so replacing it there
    (and nothing else) makes both peers offer a loopback host candidate.
    """
    import aioice.ice

    def loopback_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    monkeypatch.setattr(aioice.ice, "get_host_addresses", loopback_addresses)
