"""api.py is the one way from a module to Vault: no module reaches into hvac, and every API function says its endpoint.

(a) Every module under plugins/modules/ is parsed with ``ast``; reaching through ``.adapter.``, ``.sys.``,
    ``.secrets.`` or ``.auth.`` on anything, or calling hvac's generic ``read``/``list``/``write``/``write_data``/
    ``delete`` on a client, fails the test (``self.secrets``, a dict of the module, is fine; ``x.secrets.kv`` is
    not), except in the modules listed in api.py's "still calling hvac directly" comment (STILL_DIRECT).
(b) Every public function in api.py has a docstring naming an HTTP method and a ``/v1/...`` path, and each one is
    called by some module or module_utils file (no dead endpoints).
"""

import ast
import inspect
import os
import re

import pytest

from ansible_collections.heracles.secrets.plugins.module_utils import api

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
MODULES = os.path.join(ROOT, "plugins", "modules")
MODULE_UTILS = os.path.join(ROOT, "plugins", "module_utils")

# Modules still calling hvac directly (owned elsewhere). Shrink this list as they move to api.py; never grow it.
STILL_DIRECT = set()
HVAC_ATTRIBUTES = {"adapter", "sys", "secrets", "auth"}
GENERIC_CALLS = {"read", "list", "write", "write_data", "delete"}
ENDPOINT = re.compile(r"\b(GET|PUT|POST|DELETE|LIST|PATCH|HEAD)(\|(GET|PUT|POST|DELETE|LIST|PATCH|HEAD))* /v1/\S+")


def _receiver_name(node):
    """``client`` for ``client.x``, ``login_client`` for ``self.login_client.x``; None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def direct_calls(source):
    """(line, text) of every place ``source`` reaches into hvac instead of going through api.py."""
    found = []
    for node in ast.walk(ast.parse(source)):
        inner = node.value if isinstance(node, ast.Attribute) else None
        if isinstance(inner, ast.Attribute) and inner.attr in HVAC_ATTRIBUTES:  # x.adapter.get, x.secrets.kv, ...
            found.append((inner.lineno, ast.unparse(inner)))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in GENERIC_CALLS:
            receiver = _receiver_name(node.func.value)
            if receiver and receiver.endswith("client"):
                found.append((node.lineno, ast.unparse(node.func)))
    return sorted(set(found))


def module_names():
    return sorted(name[:-3] for name in os.listdir(MODULES) if name.endswith(".py") and name != "__init__.py")


def read(path):
    with open(path) as handle:
        return handle.read()


@pytest.mark.parametrize("name", [n for n in module_names() if n not in STILL_DIRECT])
def test_module_reaches_vault_only_through_api(name):
    calls = direct_calls(read(os.path.join(MODULES, name + ".py")))
    assert not calls, "%s calls hvac directly; add a function to module_utils/api.py and call that: %s" % (
        name, "; ".join("line %d: %s" % call for call in calls))


def test_the_allow_list_names_real_modules_that_still_need_it():
    """An entry whose module no longer calls hvac directly must leave STILL_DIRECT (and api.py's comment)."""
    names = module_names()
    for name in sorted(STILL_DIRECT):
        assert name in names, "%s is allow-listed but does not exist" % name
        assert direct_calls(read(os.path.join(MODULES, name + ".py"))), \
            "%s no longer calls hvac directly: remove it from STILL_DIRECT and from api.py's comment" % name


def test_api_comment_lists_the_same_modules():
    comment = read(inspect.getsourcefile(api)).split("Still calling hvac directly", 1)[1].split("\nfrom ", 1)[0]
    listed = set(re.findall(r"\b(vault_\w+|eso_\w+|k8s_\w+|local_cluster)\b", comment))
    assert listed == STILL_DIRECT


@pytest.mark.parametrize("source, expect", [
    ("client.adapter.get('/v1/sys/mounts')", ["client.adapter"]),
    ("x = self.client.sys.read_seal_status()", ["self.client.sys"]),
    ("c.secrets.kv.v2.read_secret_version(path='a')", ["c.secrets"]),
    ("login_client.auth.kubernetes.login('r', 'j')", ["login_client.auth"]),
    ("self.adapter = client.adapter\nself.adapter.list(base)", ["self.adapter"]),
    ("base = client.adapter.base_uri", ["client.adapter"]),
    ("client.read('auth/k/config')", ["client.read"]),
    ("self.client.write_data('auth/k/role/r', data={})", ["self.client.write_data"]),
    ("api.read_seal_status(client)", []),
    ("store.client.describe_secret(SecretId='x')", []),
    ("paths.list(x); core.delete(y)", []),
    ("import sys\nsys.exit(1)", []),
    ("self.secrets = secrets\nx = self.secrets[path]", []),
], ids=["adapter", "sys", "secrets", "auth", "adapter-kept", "base-uri", "generic-read", "generic-write", "through-api", "boto-client",
        "other-objects", "the-sys-module", "a-dict-named-secrets"])
def test_the_scan_sees_what_it_must(source, expect):
    assert sorted(text for dummy, text in direct_calls(source)) == sorted(expect)


def public_functions():
    return sorted((name, fn) for name, fn in inspect.getmembers(api, inspect.isfunction)
                  if not name.startswith("_") and fn.__module__ == api.__name__)


@pytest.mark.parametrize("name, fn", public_functions(), ids=[n for n, dummy in public_functions()])
def test_every_api_function_names_its_endpoint(name, fn):
    doc = inspect.getdoc(fn) or ""
    assert ENDPOINT.search(doc), "api.%s needs a docstring naming the HTTP method and the path, e.g. " \
                                 "``GET /v1/sys/seal-status``" % name
    assert name.split("_")[0] in ("read", "list", "create", "update", "delete", "enable", "disable", "tune", "configure",
                                  "submit", "start", "cancel", "initialize", "remove", "join", "rotate", "generate",
                                  "revoke", "lookup", "login", "destroy", "take", "restore"), \
        "api.%s: verb first, as hvac names it" % name


def test_every_api_function_is_used():
    sources = "".join(read(os.path.join(d, f)) for d in (MODULES, MODULE_UTILS) for f in sorted(os.listdir(d))
                      if f.endswith(".py") and f != "api.py")
    unused = [name for name, dummy in public_functions() if not re.search(r"\bapi\.%s\b" % name, sources)]
    assert not unused, "api.py functions no module calls: %s" % ", ".join(unused)
