"""Fixtures of the fault tests (test_faults.py, test_chaos.py): one cluster per module that they may break."""

import pytest

from heracles_faults import bring_all_back
from heracles_testlib import run_module


@pytest.fixture(scope="module")
def c(own_cluster, request):
    """The module's own cluster with its KV v2 mount (the module's ``MOUNT``) enabled."""
    res = run_module("vault_mount", own_cluster.conn(path=request.module.MOUNT, type="kv", options={"version": "2"}))
    assert not res.failed, res
    return own_cluster


@pytest.fixture()
def all_nodes_back(c):
    """Whatever a test did or where it failed: every node runs, unsealed, as one of three voters afterwards."""
    yield
    bring_all_back(c)
