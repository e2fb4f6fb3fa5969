from __future__ import annotations

import os
from typing import Iterator

import pytest

from tests.support.redis_process import REDIS_SERVER, RedisProcess

if not os.access(REDIS_SERVER, os.X_OK):
    pytest.skip("redis-server is not installed (apt-get install redis-server)", allow_module_level=True)


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()
