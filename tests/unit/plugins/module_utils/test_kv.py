"""kv.is_own_write: a write whose answer was lost is recognised on the re-read, nothing else is."""

import pytest

from ansible_collections.heracles.secrets.plugins.module_utils import kv

SENT = {"user": "app", "password": "p-1"}


@pytest.mark.parametrize("cas,current,version,own", [
    (0, dict(SENT), 1, True),                          # created, answer lost, the resend met cas=0
    (4, dict(SENT), 5, True),                          # updated from version 4
    (0, dict(SENT, password="other"), 1, False),      # someone else created it with other data
    (0, {"user": "app"}, 1, False),                   # a subset is not what was sent
    (0, dict(SENT, extra="x"), 1, False),             # nor a superset
    (0, dict(SENT), 2, False),                         # the same data, but a version later: not this write
    (3, dict(SENT), 3, False),                         # unchanged version: the write did not land
    (0, None, 1, False),                               # deleted since
])
def test_is_own_write(cas, current, version, own):
    assert kv.is_own_write(SENT, cas, current, version) is own
