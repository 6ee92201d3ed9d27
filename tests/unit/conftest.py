"""Unit tests import the collection as ``ansible_collections.heracles.secrets``.

``.collections/ansible_collections/heracles/secrets`` is a symlink to the repo
(``make collection`` creates it); this puts its root on ``sys.path``.
"""

import os
import sys

# tests/unit/conftest.py -> tests/unit -> tests -> repo root
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO_ROOT, ".collections")

if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "heracles", "secrets", "plugins")):
    raise RuntimeError("%s/ansible_collections/heracles/secrets is missing: run `make collection`" % COLLECTIONS)

if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
