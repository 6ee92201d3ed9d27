# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retries with exponential backoff, and an hvac adapter that finds and follows
the active node.

Why an adapter: every hvac call goes through ``Adapter.request``, so wrapping it
gives retry and leader-following to every module without each one thinking
about it.  The seeds ask for 1 s, 2 s, 4 s and three tries; that is the default
``RetryPolicy``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import time

from ansible_collections.heracles.secrets.plugins.module_utils.errors import (
    QUORUM_HINT, SEALED_HINT, QuorumLostError, SealedError, UnreachableError, is_no_leader, is_tls_setup_error,
)

try:
    import requests
except ImportError:  # pragma: no cover
    requests = None

try:
    import hvac.exceptions as hvac_exc
    from hvac.adapters import JSONAdapter, RawAdapter
    HAS_HVAC = True
except ImportError:  # pragma: no cover
    hvac_exc = None
    JSONAdapter = RawAdapter = object
    HAS_HVAC = False

DEFAULT_RETRIES = 3
DEFAULT_RETRY_DELAY = 1.0
DEFAULT_BACKOFF = 2.0
MAX_LATE_FOLLOWS = 2  # extra attempts, each only after the leader actually moved
MAX_DELAY = 30.0

# Server answers that mean "try again shortly", matched on the error text.
_TRANSIENT_400 = ("upgrading", "upgrade", "mount is being", "in the process of")


class RetryPolicy:
    """Exponential backoff: ``delay``, ``delay*backoff``, ... for ``retries`` retries."""

    def __init__(self, retries=DEFAULT_RETRIES, delay=DEFAULT_RETRY_DELAY, backoff=DEFAULT_BACKOFF,
                 max_delay=MAX_DELAY, sleep=time.sleep):
        if retries < 0 or delay < 0 or backoff < 1:
            raise ValueError("retries and retry_delay must be >= 0 and backoff >= 1")
        self.retries = retries
        self.delay = delay
        self.backoff = backoff
        self.max_delay = max_delay
        self.sleep = sleep

    def delays(self):
        """The waits between attempts: ``retries`` values."""
        return [min(self.delay * (self.backoff ** i), self.max_delay) for i in range(self.retries)]


def is_retryable(exc):
    """True for errors that a later attempt (possibly on another node) can fix.

    TLS set-up errors are not retried: a wrong CA or hostname does not heal itself and
    retrying only delays the clear message. A TLS connection cut mid-way (a node killed
    during the request) is retried like any dropped connection.
    """
    if requests is not None:
        if is_tls_setup_error(exc):
            return False
        if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                            requests.exceptions.ChunkedEncodingError)):
            return True
    if HAS_HVAC:
        if isinstance(exc, (hvac_exc.VaultDown, hvac_exc.BadGateway, hvac_exc.RateLimitExceeded)):
            return True
        if isinstance(exc, hvac_exc.InternalServerError):
            return True
        if isinstance(exc, hvac_exc.PreconditionFailed):
            return True
        if isinstance(exc, hvac_exc.InvalidRequest):
            text = " ".join(str(e) for e in (exc.errors or [])).lower()
            return any(marker in text for marker in _TRANSIENT_400)
        if isinstance(exc, hvac_exc.UnexpectedError):
            status = _status_of(exc)
            return status in (502, 503, 504)
    if isinstance(exc, (QuorumLostError, SealedError, UnreachableError)):
        return True
    return False


def _status_of(exc):
    # hvac's exceptions carry no status; LeaderFollowingAdapter._raise_for_error adds it
    status = getattr(exc, "status_code", None)
    return status if status is not None else getattr(getattr(exc, "response", None), "status_code", None)


def call_with_retry(func, policy, retryable=is_retryable, on_retry=None):
    """Call ``func()`` and retry it by ``policy`` while ``retryable(exc)``."""
    delays = policy.delays()
    attempt = 0
    while True:
        try:
            return func()
        except Exception as exc:  # noqa: BLE001 - filtered by retryable()
            if attempt >= len(delays) or not retryable(exc):
                raise
            if on_retry is not None:
                on_retry(exc, attempt)
            policy.sleep(delays[attempt])
            attempt += 1


def _norm(url):
    return url.rstrip("/") if url else url


class LeaderFollowingAdapter(JSONAdapter):
    """hvac JSON adapter that retries transient failures and moves to the active node.

    ``nodes`` are other API addresses of the same cluster, used to find the
    leader when the configured one is down.  ``sys/leader``'s ``leader_address``
    is tried first; if it is not reachable from here (common behind a load
    balancer or a port-forward) the configured address is kept, since standbys
    forward requests to the active node.
    """

    def __init__(self, *args, **kwargs):
        self.nodes = [_norm(n) for n in kwargs.pop("nodes", None) or []]
        self.policy = kwargs.pop("policy", None) or RetryPolicy()
        self.follow_leader = kwargs.pop("follow_leader", True)
        super(LeaderFollowingAdapter, self).__init__(*args, **kwargs)
        self.configured_url = _norm(self.base_uri)
        self.history = []  # leader moves seen in this run, for the module's result
        self._lock = threading.Lock()
        self._generation = 0

    # -- leader discovery ------------------------------------------------
    def candidates(self):
        seen, out = set(), []
        for url in [self.base_uri, self.configured_url] + self.nodes:
            url = _norm(url)
            if url and url not in seen:
                seen.add(url)
                out.append(url)
        return out

    def _leader_info(self, url):
        resp = self.session.get(url + "/v1/sys/leader", timeout=min(self._kwargs.get("timeout", 5) or 5, 5),
                                verify=self._kwargs.get("verify", True), cert=self._kwargs.get("cert"))
        if resp.status_code == 503:
            return {"sealed": True}
        resp.raise_for_status()
        return resp.json()

    def find_leader(self):
        """Return the API address of the active node, or raise a typed error.

        Calls ``GET /v1/sys/leader`` (unauthenticated) on each candidate.
        """
        reachable, sealed, advertised, silent = [], [], [], []
        last_exc = None
        for url in self.candidates():
            try:
                info = self._leader_info(url)
            except Exception as exc:  # noqa: BLE001 - any failure means "not this one"
                if is_tls_setup_error(exc):
                    raise
                if requests is not None and isinstance(exc, requests.exceptions.Timeout):
                    silent.append(url)
                last_exc = exc
                continue
            reachable.append(url)
            if info.get("sealed"):
                sealed.append(url)
                continue
            if info.get("is_self") or info.get("ha_enabled") is False:
                return url  # without HA (dev server, file storage) the one unsealed node is the active one
            if info.get("leader_address"):
                advertised.append(_norm(info["leader_address"]))
        for url in advertised:
            if url in reachable:
                return url
            try:
                if self._leader_info(url).get("is_self"):
                    return url
            except Exception:  # noqa: BLE001 - advertised address not reachable from here
                continue
        if advertised:
            # The leader exists but is not reachable from here: standbys forward.
            return reachable[0] if self.configured_url not in reachable else self.configured_url
        raise self._no_leader_error(reachable, sealed, silent, last_exc)

    def _no_leader_error(self, reachable, sealed, silent, last_exc):
        """The typed error that says why no node is the active one: unreachable, silent, sealed or no quorum."""
        if not reachable and silent:
            # Connected but no answer: a node that has just lost quorum blocks while it steps down.
            return QuorumLostError("No active node: %s accepted connections but did not answer sys/leader in time "
                                   "(a node that has lost quorum blocks while it steps down)" % ", ".join(silent),
                                   QUORUM_HINT)
        if not reachable:
            return UnreachableError("No Vault node is reachable (tried %s): %s"
                                    % (", ".join(self.candidates()), last_exc),
                                    "Check that the servers run and that url/nodes are their API addresses")
        if len(sealed) == len(reachable):
            return SealedError("Every reachable node is sealed (%s)" % ", ".join(sealed), SEALED_HINT)
        unsealed = [u for u in reachable if u not in sealed]
        hint = QUORUM_HINT
        if len(unsealed) >= 2:
            # Enough unsealed nodes for a quorum of three, yet no active one: usually a node refuses to
            # become active (its server log says "post-unseal setup failed"), e.g. a declared audit device
            # whose options differ from the stored audit table.
            hint = ("%d nodes are unsealed but none becomes active: read their server logs for 'post-unseal setup "
                    "failed' (for example a declared audit device that differs from the stored one). %s"
                    % (len(unsealed), QUORUM_HINT))
        return QuorumLostError("No active node: %d node(s) answer (%d sealed) but none is or knows the leader (%s)"
                               % (len(reachable), len(sealed), ", ".join(reachable)), hint)

    def move_to_leader(self, generation=None):
        """Point this adapter at the active node; thread-safe, one discovery per failure wave."""
        with self._lock:
            if generation is not None and generation != self._generation:
                return self.base_uri  # another thread already moved
            leader = self.find_leader()
            if _norm(leader) != _norm(self.base_uri):
                self.history.append({"from": _norm(self.base_uri), "to": leader, "at": time.time()})
                self.base_uri = leader
            self._generation += 1
            return leader

    def _raise_for_error(self, method, url, response):
        try:
            super(LeaderFollowingAdapter, self)._raise_for_error(method, url, response)
        except Exception as exc:  # noqa: BLE001 - re-raised unchanged
            # hvac maps e.g. 504 to UnexpectedError without the status; keep it for is_retryable()
            exc.status_code = response.status_code
            raise

    # -- the one request path ------------------------------------------------
    def request(self, method, url, headers=None, raise_exception=True, **kwargs):
        parent = super(LeaderFollowingAdapter, self).request
        return self._with_retry(lambda: parent(method, url, headers=headers, raise_exception=raise_exception, **kwargs))

    def raw_request(self, method, url, retry=True, **kwargs):
        """Like ``request`` but returns the ``requests.Response`` unparsed (``stream=True`` stays streaming).

        JSONAdapter would call ``.json()`` on a 200 and so read a snapshot into memory.  ``retry=False`` for
        bodies that cannot be sent twice (a file being streamed).
        """
        if not retry:
            return RawAdapter.request(self, method, url, **kwargs)
        return self._with_retry(lambda: RawAdapter.request(self, method, url, **kwargs))

    def _with_retry(self, call):
        delays = self.policy.delays()
        attempt = follows = 0
        while True:
            generation = self._generation
            try:
                return call()
            except Exception as exc:  # noqa: BLE001 - filtered below
                if not is_retryable(exc):
                    raise
                if HAS_HVAC and isinstance(exc, hvac_exc.InternalServerError) and not is_no_leader(exc):
                    raise  # a real server-side error; retrying does not help
                if attempt >= len(delays):
                    if not self.follow_leader:
                        raise
                    # Say *why* it keeps failing (quorum lost / all sealed / all down) -- or, when an election
                    # finished just as the budget ran out, follow the new leader: a slow election on a loaded
                    # host must not fail a run that the next request would complete.
                    before = _norm(self.base_uri)
                    if follows >= MAX_LATE_FOLLOWS or _norm(self.move_to_leader()) == before:
                        raise
                    follows += 1
                    continue
                self.policy.sleep(delays[attempt])
                attempt += 1
                if self.follow_leader:
                    try:
                        self.move_to_leader(generation)
                    except (QuorumLostError, SealedError, UnreachableError):
                        pass  # maybe mid-election: try again where we are; the last failure says why
