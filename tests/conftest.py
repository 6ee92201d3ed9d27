"""Fixtures: real OpenBao clusters on free loopback ports, torn down at the end."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

from heracles_testlib import ClusterHandle  # noqa: E402


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """A bootstrapped 3-node TLS Raft cluster (init + unseal + autopilot through our modules)."""
    handle = ClusterHandle(tmp_path_factory.mktemp("cluster")).start()
    try:
        handle.bootstrap()
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def fresh_cluster(tmp_path_factory):
    """Three started, uninitialised nodes: for init/unseal tests."""
    handle = ClusterHandle(tmp_path_factory.mktemp("fresh")).start()
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory):
    """A bootstrapped cluster a test module may break (kill the leader, lose quorum)."""
    handle = ClusterHandle(tmp_path_factory.mktemp("own")).start()
    try:
        handle.bootstrap()
        yield handle
    finally:
        handle.stop()
