#!/usr/bin/env python3
"""Run ``server.py`` as one node of a Redis-backed cluster.

    python tests/redis/node_main.py --redis-url redis://127.0.0.1:6379 \
        [--redis-lease 10] [--node-id ID] [server.py flags...]

When ``server.py`` has ``--redis-url`` itself, this only forwards to it. Until
then it swaps ``server``'s registry factory for a :class:`RedisRegistry`, so
the tests and the benchmark run the real app either way.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import server  # noqa: E402

from callbot.signaling.redis_registry import RedisRegistry  # noqa: E402


def main(argv: list[str]) -> int:
    known = server.build_parser()._option_string_actions
    if "--redis-url" in known:
        return server.main(argv)
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--redis-url", required=True)
    p.add_argument("--redis-lease", type=float, default=10.0)
    p.add_argument("--node-id", default=None)
    ours, rest = p.parse_known_args(argv)

    def registry_factory() -> RedisRegistry:
        return RedisRegistry(ours.redis_url, node_id=ours.node_id, lease_seconds=ours.redis_lease)

    server.InMemoryRegistry = registry_factory  # type: ignore[assignment,misc]
    return server.main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
