"""Fixtures shared by integration modules that check what configure.yml and seed.yml leave in a real cluster."""

import os

import pytest

from ansible_collections.heracles.secrets.plugins.module_utils import vault_data
from heracles_playbook import Runner, connection_vars
from heracles_testlib import ROOT, ClusterHandle

# Its first tests need a cluster configure.yml has never touched: a module scheduled before it gets its own cluster.
NEEDS_UNTOUCHED_SESSION_CLUSTER = "test_configure_seed_playbooks.py"
ENVS = vault_data.environments(os.path.join(ROOT, "vault"))


def shares_session_cluster(request):
    """False when test_configure_seed_playbooks.py runs after this module in this session (it wants a fresh one)."""
    items = request.session.items
    mine = [i for i, item in enumerate(items) if item.path == request.path]
    theirs = [i for i, item in enumerate(items) if item.path.name == NEEDS_UNTOUCHED_SESSION_CLUSTER]
    return not theirs or not mine or max(theirs) < min(mine)


@pytest.fixture(scope="module")
def configured_cluster(request, tokenreview, tmp_path_factory):
    """configure.yml + seed.yml for every declared environment, with Kubernetes auth against the local TokenReview
    server: on the session cluster (a rerun, changing nothing) unless test_configure_seed_playbooks.py comes later."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    own = None
    if shares_session_cluster(request):
        cluster = request.getfixturevalue("cluster")
    else:
        print("%s: on a cluster of its own (%s runs later)" % (name, NEEDS_UNTOUCHED_SESSION_CLUSTER))
        cluster = own = ClusterHandle(tmp_path_factory.mktemp("%s-cluster" % name)).start()
    try:
        if own is not None:
            own.bootstrap()
        state = tmp_path_factory.mktemp("%s-state" % name)
        kubernetes = tokenreview.reviewer_config(state)
        runner = Runner(state, dict(heracles_vault_connection=connection_vars(cluster), configure_environments=ENVS,
                                    seed_environments=ENVS, configure_kubernetes=dict((e, kubernetes) for e in ENVS)))
        for playbook in ("configure.yml", "seed.yml"):
            proc = runner.run(playbook)
            assert proc.returncode == 0, proc.stdout[-3000:]
        yield dict(runner=runner, cluster=cluster, tokenreview=tokenreview, kubernetes=kubernetes)
    finally:
        if own is not None:
            own.stop()
