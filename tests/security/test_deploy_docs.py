"""docs/deploy-nginx.md shows the configuration the deployment test runs."""

from __future__ import annotations

import re

from tests.support.nginx import SITE_CONFIG
from webapp.flags import build_parser

DOC = SITE_CONFIG.parent / "deploy-nginx.md"


def test_the_nginx_block_in_the_docs_is_the_tested_file():
    blocks = re.findall(r"```nginx\n(.*?)```", DOC.read_text(), re.S)
    assert blocks == [SITE_CONFIG.read_text()]


def test_every_flag_the_docs_give_exists():
    known = {opt for action in build_parser()._actions for opt in action.option_strings}
    # The benchmark section names the benchmark's own flags.
    text = DOC.read_text().split("## Sizing and tuning")[0]
    used = set(re.findall(r"(--[a-z][a-z-]+)", text))
    assert used <= known, used - known
