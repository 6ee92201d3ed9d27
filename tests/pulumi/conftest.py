"""Pulumi programs under mocks, one run per stack and variant, shared by the test modules.

Mocks are set inside ``harness.run_program`` before the program file is executed (``runpy``), so the
program's resources register against the mock monitor; each run gets a fresh root stack and config.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.join(REPO_ROOT, ".collections")
for path in (HERE, os.path.join(REPO_ROOT, "pulumi"), COLLECTIONS):
    if path not in sys.path:
        sys.path.insert(0, path)

from harness import STACKS  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(params=STACKS)
def stack(request):
    """dev, staging, prod: every invariant runs once per stack."""
    return request.param
