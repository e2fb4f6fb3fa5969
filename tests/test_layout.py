"""The design card's layout holds: top-level packages, and imports going one
way between them (no cycles), checked from the source."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("webapp", "signaling", "peer", "photos", "media", "examples")
#: What each package may import of ours (besides itself).
ALLOWED = {
    "media": set(),
    "photos": {"media"},
    "signaling": {"media"},
    "peer": {"media", "photos", "signaling"},
    "webapp": {"media", "photos", "signaling", "peer"},
    "examples": {"peer"},
}


def imports_of(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in PACKAGES and top != package:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_the_card_names_the_top_level():
    for entry in ("pyproject.toml", "server.py", "peer", "media", "static", "tests", "README.md"):
        assert (ROOT / entry).exists(), entry
    assert not (ROOT / "callbot").exists()


def test_packages_import_one_way():
    wrong = {
        f"{package} -> {other}": sorted(files)
        for package in PACKAGES
        for other, files in imports_of(package).items()
        if other not in ALLOWED[package]
    }
    assert wrong == {}


def test_no_aiohttp_inside_media_or_photos():
    for package in ("media", "photos"):
        for path in (ROOT / package).rglob("*.py"):
            assert "aiohttp" not in path.read_text(), path
