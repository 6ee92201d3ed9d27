"""vault_unseal: a node that cannot be unsealed is reported as "<what happened>. <what to do>"."""

import hvac.exceptions as hvac_exc
import pytest

from ansible_collections.heracles.secrets.plugins.module_utils.errors import HeraclesError
from ansible_collections.heracles.secrets.plugins.modules.vault_unseal import unseal_entry

URL = "https://127.0.0.1:8210"
KEYS = ["k1", "k2", "k3"]
SEALED = dict(initialized=True, sealed=True, t=2, progress=0)


class FakeSys:
    """The two sys calls vault_unseal makes; each answer is a status dict or an exception to raise."""

    def __init__(self, status, submits=()):
        self.status = status
        self.submits = list(submits)
        self.submitted = []

    def read_seal_status(self):
        if isinstance(self.status, Exception):
            raise self.status
        return self.status

    def submit_unseal_key(self, key=None, reset=False):
        self.submitted.append("reset" if reset else key)
        answer = self.submits.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeClient:
    def __init__(self, status, submits=()):
        self.sys = FakeSys(status, submits)


def run(status, submits=()):
    client = FakeClient(status, submits)
    entry = dict(url=URL, client=client, changed=False)
    unseal_entry(entry, KEYS, timeout=0)
    return entry, client.sys.submitted


@pytest.mark.parametrize("status, submits, message, hint", [
    (dict(SEALED, recovery_seal=True, type="awskms"), (),
     "%s uses auto-unseal (awskms) and is sealed: key shares cannot unseal it" % URL,
     "Check that the seal's KMS key exists"),
    (SEALED, (hvac_exc.InvalidRequest(errors=["invalid key"]),),
     "%s rejected the unseal keys (invalid key)" % URL, "The init material does not belong to this cluster"),
    (dict(SEALED, t=5), (), "The init material holds 3 key(s) but %s needs 5" % URL, "Supply the missing shares"),
    (hvac_exc.VaultDown(errors=["Vault is sealed"]), (),
     "Vault request failed at %s: Vault is sealed or unavailable (Vault is sealed)" % URL, "Unseal the node(s)"),
    (HeraclesError("%s is being replaced." % URL, "Wait for it"), (), "%s is being replaced" % URL, "Wait for it"),
], ids=["auto-unseal", "wrong-keys", "too-few-keys", "vault-down", "message-ends-with-period"])
def test_a_failure_reads_message_period_hint(status, submits, message, hint):
    entry, dummy = run(status, submits)
    assert entry["after"] == "sealed" and entry["changed"] is False
    assert entry["error"].startswith(message + ". " + hint), entry["error"]
    assert ".." not in entry["error"] and ". ." not in entry["error"]


def test_a_sealed_node_gets_the_threshold_of_keys():
    entry, submitted = run(SEALED, (dict(SEALED, progress=1), dict(SEALED, sealed=False)))
    assert entry["after"] == "unsealed" and entry["changed"] is True and "error" not in entry
    assert submitted == ["k1", "k2"]
