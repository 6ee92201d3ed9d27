# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place that builds an hvac client: address, TLS, auth, timeouts,
namespace, retries and leader-following.  Nothing else constructs hvac.Client.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.heracles.secrets.plugins.module_utils import api, keystore
from ansible_collections.heracles.secrets.plugins.module_utils.errors import ConfigError
from ansible_collections.heracles.secrets.plugins.module_utils.retry import LeaderFollowingAdapter, RetryPolicy

try:
    import hvac
    import requests
    from requests.adapters import HTTPAdapter
    HAS_HVAC = True
except ImportError:  # pragma: no cover
    HAS_HVAC = False

DEFAULT_URL = "https://127.0.0.1:8200"
DEFAULT_TIMEOUT = 10
K8S_JWT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"

# Both CLIs' environment variables are honoured; OpenBao's win when both are set.
ENV = {
    "url": ("BAO_ADDR", "VAULT_ADDR"),
    "ca_cert": ("BAO_CACERT", "VAULT_CACERT"),
    "token": ("BAO_TOKEN", "VAULT_TOKEN"),
    "namespace": ("BAO_NAMESPACE", "VAULT_NAMESPACE"),
}

# The CLIs' switch to skip TLS verification. This collection does not honour it (verification is turned off only
# by validate_certs=false, which warns); VaultModule warns when it is set, so nobody believes it took effect.
SKIP_VERIFY_ENV = ("BAO_SKIP_VERIFY", "VAULT_SKIP_VERIFY")

CONNECTION_SPEC = dict(
    url=dict(type="str", aliases=["addr"]),
    nodes=dict(type="list", elements="str", default=[]),
    ca_cert=dict(type="path", aliases=["cacert"]),
    validate_certs=dict(type="bool", default=True),
    client_cert=dict(type="path"),
    client_key=dict(type="path", no_log=False),
    timeout=dict(type="int", default=DEFAULT_TIMEOUT),
    namespace=dict(type="str"),
    retries=dict(type="int", default=3),
    retry_delay=dict(type="float", default=1.0),
    follow_leader=dict(type="bool", default=True),
    auth_method=dict(type="str", default="token", choices=["token", "kubernetes", "approle", "init_file", "none"]),
    token=dict(type="str", no_log=True),
    token_path=dict(type="path", no_log=False),
    auth_mount_point=dict(type="str"),
    role=dict(type="str", aliases=["role_id"]),
    jwt=dict(type="str", no_log=True),
    jwt_path=dict(type="path", no_log=False),
    secret_id=dict(type="str", no_log=True),
)
CONNECTION_SPEC.update(keystore.KEYSTORE_SPEC)


def _env(name):
    for var in ENV.get(name, ()):
        if os.environ.get(var):
            return os.environ[var]
    return None


def resolve(params, name, default=None):
    """Option value, else its environment variable, else ``default``."""
    value = params.get(name)
    if value in (None, ""):
        value = _env(name)
    return default if value in (None, "") else value


def skip_verify_set():
    """The name of a set, true-looking BAO_/VAULT_SKIP_VERIFY variable (ignored here), or None."""
    for var in SKIP_VERIFY_ENV:
        if (os.environ.get(var) or "").strip().lower() not in ("", "0", "false", "f", "no", "n"):
            return var
    return None


def check_url(value, what="url"):
    """Refuse an address without an http(s) scheme before any request (requests' own error does not say so)."""
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme not in ("http", "https"):
        raise ConfigError("%s %r is not a URL with a scheme" % (what, value),
                          "Write it as https://<host>:<port>, for example https://127.0.0.1:8200")
    return value


def tls_verify(params):
    """``requests`` verify value: the CA path, True, or False (explicit opt-out only)."""
    if not params.get("validate_certs", True):
        return False
    return resolve(params, "ca_cert") or True


def build_session(params, pool_size=10, cert=None):
    """A pooled session.  hvac prefers ``session.verify`` over its own argument, so TLS is set here."""
    session = requests.Session()
    session.verify = tls_verify(params)
    session.cert = cert
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def build_client(params, url=None, follow_leader=None, pool_size=10, login=True, retries=None):
    """Return an authenticated ``hvac.Client`` for ``params`` (a CONNECTION_SPEC dict).

    ``url`` pins one node (unseal, per-node status); leader-following is then
    off unless asked for.
    """
    if not HAS_HVAC:
        raise ConfigError("hvac is not installed on the host that runs the module", "pip install hvac")
    address = check_url((url or resolve(params, "url", DEFAULT_URL)).rstrip("/"))
    for node in params.get("nodes") or []:
        check_url(node, "nodes entry")
    if follow_leader is None:
        follow_leader = params.get("follow_leader", True) if url is None else False
    cert = None
    if params.get("client_cert"):
        cert = (params["client_cert"], params.get("client_key")) if params.get("client_key") else params["client_cert"]
    policy = RetryPolicy(retries=params.get("retries", 3) if retries is None else retries,
                         delay=params.get("retry_delay", 1.0))
    # token="" stops hvac from silently picking up VAULT_TOKEN or ~/.vault-token: authenticate() decides.
    client = hvac.Client(
        url=address,
        token="",
        cert=cert,
        verify=tls_verify(params),
        timeout=params.get("timeout") or DEFAULT_TIMEOUT,
        session=build_session(params, pool_size, cert),
        adapter=LeaderFollowingAdapter,
        namespace=resolve(params, "namespace"),
        nodes=[n for n in (params.get("nodes") or []) if n.rstrip("/") != address],
        policy=policy,
        follow_leader=follow_leader,
    )
    adapter = client.adapter
    if follow_leader:
        adapter.move_to_leader()
    if login:
        authenticate(client, params)
    return client


def _read_file(path, what):
    try:
        with open(os.path.expanduser(path)) as handle:
            return handle.read().strip()
    except (IOError, OSError) as exc:
        raise ConfigError("Cannot read %s %s: %s" % (what, path, exc.strerror), "Check the path and permissions")


class Login(object):
    """One way to log in (``auth_method``). Subclasses set ``name`` and ``login``; register them in ``LOGINS``.

    ``login(client, params, mount)`` sets ``client.token`` (or lets hvac set it by logging in), raising ConfigError
    with what to do when a parameter is missing.
    """

    name = None

    def login(self, client, params, mount):
        raise NotImplementedError


class NoLogin(Login):
    name = "none"

    def login(self, client, params, mount):
        return None


class TokenLogin(Login):
    """A token: the option, VAULT_TOKEN/BAO_TOKEN, ``token_path``, else ``~/.vault-token``."""

    name = "token"

    def login(self, client, params, mount):
        token = resolve(params, "token")
        if not token and params.get("token_path"):
            token = _read_file(params["token_path"], "token_path")
        if not token:
            default_path = os.path.expanduser("~/.vault-token")
            if os.path.exists(default_path):
                token = _read_file(default_path, "token file")
        if not token:
            raise ConfigError("No Vault token given",
                              "Set token, VAULT_TOKEN/BAO_TOKEN or token_path, or choose another auth_method")
        client.token = token


class InitFileLogin(Login):
    """The root token inside the encrypted init material (bootstrap only)."""

    name = "init_file"

    def login(self, client, params, mount):
        payload = keystore.open_store(params).read()
        if not payload.get("root_token"):
            raise ConfigError("The init material holds no root token (it was revoked or not stored)",
                              "Use auth_method=token with an operator token")
        client.token = payload["root_token"]


class KubernetesLogin(Login):
    """A service-account JWT (``jwt``, ``jwt_path`` or the pod's own) for a role: POST auth/<mount>/login."""

    name = "kubernetes"

    def login(self, client, params, mount):
        if not params.get("role"):
            raise ConfigError("auth_method=kubernetes needs role", "Set role to the Kubernetes auth role name")
        jwt = params.get("jwt") or _read_file(params.get("jwt_path") or K8S_JWT_PATH, "jwt_path")
        api.login_kubernetes(client, params["role"], jwt, mount=mount or "kubernetes")


class AppRoleLogin(Login):
    """role_id + secret_id (POST auth/<mount>/login)."""

    name = "approle"

    def login(self, client, params, mount):
        if not params.get("role"):
            raise ConfigError("auth_method=approle needs role (the role_id)", "Set role to the AppRole role_id")
        api.login_approle(client, params["role"], secret_id=params.get("secret_id"), mount=mount or "approle")


# auth_method -> its login; CONNECTION_SPEC's choices are these names (a unit test keeps them equal).
LOGINS = dict((cls.name, cls()) for cls in (NoLogin, TokenLogin, InitFileLogin, KubernetesLogin, AppRoleLogin))


def authenticate(client, params):
    """Log ``client`` in by ``auth_method`` (one of ``LOGINS``); sets ``client.token``."""
    method = params.get("auth_method") or "token"
    if method not in LOGINS:
        raise ConfigError("Unknown auth_method %r" % method, "Use one of %s" % ", ".join(sorted(LOGINS)))
    LOGINS[method].login(client, params, params.get("auth_mount_point"))
    return client


def current_address(client):
    """The address ``client`` sends its requests to now: the active node when it follows the leader."""
    return client.adapter.base_uri
