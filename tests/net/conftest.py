"""Tests with real networks: namespaces with NAT routers (tests/support/netns.py),
a real coturn, and Firefox. They need root; scripts/test runs them as root
inside its loopback-only namespace, where ``ip netns add`` works."""

from __future__ import annotations

import pytest

from tests.support.netns import missing_requirements


@pytest.fixture
def netns_ready() -> None:
    # Not a skip: a network test that cannot run fails and says why.
    problem = missing_requirements()
    if problem:
        pytest.fail(problem, pytrace=False)
