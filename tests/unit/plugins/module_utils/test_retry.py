"""retry.py: backoff policy, what is retryable, and the leader-following adapter.

The adapter is tested against tiny real HTTP servers on 127.0.0.1 (one per fake
node) that answer ``GET /v1/sys/leader`` the way Vault/OpenBao does, so leader
discovery goes through ``requests`` and hvac exactly as in production.
"""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import hvac.exceptions as hvac_exc
import pytest
import requests

from ansible_collections.heracles.secrets.plugins.module_utils import retry
from ansible_collections.heracles.secrets.plugins.module_utils.errors import (
    ConfigError, QuorumLostError, SealedError, UnreachableError,
)
from ansible_collections.heracles.secrets.plugins.module_utils.retry import (
    LeaderFollowingAdapter, RetryPolicy, call_with_retry, is_retryable,
)

DATA_PATH = "/v1/secret/data/app"
SEALED_BODY = {"errors": ["Vault is sealed"]}
NO_LEADER_BODY = {"errors": ["local node not active but active cluster node not found"]}


# -- RetryPolicy ------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, expected", [
    ({}, [1.0, 2.0, 4.0]),
    ({"retries": 0}, []),
    ({"retries": 1}, [1.0]),
    ({"retries": 5, "max_delay": 5.0}, [1.0, 2.0, 4.0, 5.0, 5.0]),
    ({"retries": 3, "delay": 0.5, "backoff": 3.0}, [0.5, 1.5, 4.5]),
    ({"retries": 3, "delay": 2.0, "backoff": 1.0}, [2.0, 2.0, 2.0]),
    ({"retries": 2, "delay": 0.0}, [0.0, 0.0]),
    ({"retries": 8}, [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]),  # MAX_DELAY cap
], ids=["default", "no-retries", "one", "max-delay-cap", "backoff-3", "constant", "zero-delay", "default-cap"])
def test_policy_delays(kwargs, expected):
    assert RetryPolicy(**kwargs).delays() == expected


@pytest.mark.parametrize("kwargs", [
    {"retries": -1},
    {"delay": -0.1},
    {"backoff": 0.5},
    {"backoff": 0},
], ids=["negative-retries", "negative-delay", "shrinking-backoff", "zero-backoff"])
def test_policy_rejects_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_policy_defaults_are_the_module_constants_and_real_sleep():
    policy = RetryPolicy()
    assert (policy.retries, policy.delay, policy.backoff, policy.max_delay) == (
        retry.DEFAULT_RETRIES, retry.DEFAULT_RETRY_DELAY, retry.DEFAULT_BACKOFF, retry.MAX_DELAY)
    assert policy.sleep is time.sleep


# -- is_retryable -------------------------------------------------------------------

def _unexpected(status):
    """hvac raises UnexpectedError (no status of its own) for e.g. 504; our adapter adds the status."""
    exc = hvac_exc.UnexpectedError("unexpected")
    exc.status_code = status
    return exc


RETRYABLE_CASES = [
    ("requests-connection-error", requests.exceptions.ConnectionError("refused"), True),
    ("requests-connect-timeout", requests.exceptions.ConnectTimeout("connect timeout"), True),
    ("requests-read-timeout", requests.exceptions.ReadTimeout("read timeout"), True),
    ("requests-timeout", requests.exceptions.Timeout("timeout"), True),
    ("requests-chunked", requests.exceptions.ChunkedEncodingError("cut"), True),
    ("requests-ssl", requests.exceptions.SSLError("certificate verify failed"), False),
    ("requests-ssl-hostname", requests.exceptions.SSLError("hostname '127.1' doesn't match 'localhost'"), False),
    ("requests-ssl-http-port", requests.exceptions.SSLError("[SSL: WRONG_VERSION_NUMBER] wrong version number"), False),
    # a node killed during the request: the TLS stream just ends; that heals on another node
    ("requests-ssl-eof", requests.exceptions.SSLError(
        "HTTPSConnectionPool(host='127.0.0.1', port=31700): Max retries exceeded (Caused by SSLError(SSLEOFError(8, "
        "'EOF occurred in violation of protocol (_ssl.c:2427)')))"), True),
    ("vault-down-503", hvac_exc.VaultDown(errors=["Vault is sealed"]), True),
    ("internal-500", hvac_exc.InternalServerError(errors=["local node not active"]), True),
    ("bad-gateway-502", hvac_exc.BadGateway(), True),
    ("rate-limit-429", hvac_exc.RateLimitExceeded(), True),
    ("precondition-412", hvac_exc.PreconditionFailed(), True),
    ("forbidden-403", hvac_exc.Forbidden(errors=["permission denied"]), False),
    ("unauthorized-401", hvac_exc.Unauthorized(), False),
    ("invalid-path-404", hvac_exc.InvalidPath(), False),
    ("not-initialized-501", hvac_exc.VaultNotInitialized(), False),
    ("400-upgrading", hvac_exc.InvalidRequest(errors=["Vault is upgrading, try again"]), True),
    ("400-mount-upgrading", hvac_exc.InvalidRequest(errors=["mount is being upgraded"]), True),
    ("400-other", hvac_exc.InvalidRequest(errors=["missing client token"]), False),
    ("400-no-errors", hvac_exc.InvalidRequest(), False),
    ("unexpected-502", _unexpected(502), True),
    ("unexpected-504", _unexpected(504), True),
    ("unexpected-418", _unexpected(418), False),
    ("unexpected-no-status", hvac_exc.UnexpectedError("no status known"), False),
    ("quorum-lost", QuorumLostError("no leader"), True),
    ("sealed", SealedError("sealed"), True),
    ("unreachable", UnreachableError("down"), True),
    ("config-error", ConfigError("bad input"), False),
    ("value-error", ValueError("bug"), False),
]


@pytest.mark.parametrize("exc, expected", [c[1:] for c in RETRYABLE_CASES], ids=[c[0] for c in RETRYABLE_CASES])
def test_is_retryable(exc, expected):
    assert is_retryable(exc) is expected


# -- call_with_retry -------------------------------------------------------------------

class Flaky:
    """Raises the given exceptions in turn, then returns ``result``."""

    def __init__(self, failures, result="ok"):
        self.failures = list(failures)
        self.result = result
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return self.result


def _conn_err():
    return requests.exceptions.ConnectionError("refused")


@pytest.mark.parametrize("failures, expected_waits", [
    (0, []),
    (1, [1.0]),
    (2, [1.0, 2.0]),
    (3, [1.0, 2.0, 4.0]),
], ids=["first-try", "one-failure", "two-failures", "last-retry"])
def test_call_with_retry_retries_until_success(failures, expected_waits):
    waits, seen = [], []
    func = Flaky([_conn_err() for dummy in range(failures)])
    result = call_with_retry(func, RetryPolicy(sleep=waits.append), on_retry=lambda exc, n: seen.append(n))
    assert result == "ok"
    assert func.calls == failures + 1
    assert waits == expected_waits
    assert seen == list(range(failures))


def test_call_with_retry_reraises_after_retries_exhausted():
    waits = []
    errors = [_conn_err() for dummy in range(5)]
    func = Flaky(errors)
    with pytest.raises(requests.exceptions.ConnectionError) as info:
        call_with_retry(func, RetryPolicy(sleep=waits.append))
    assert func.calls == 4  # first try + 3 retries
    assert waits == [1.0, 2.0, 4.0]
    assert info.value is errors[3]  # the last failure, not a wrapper


@pytest.mark.parametrize("exc", [
    hvac_exc.Forbidden(errors=["permission denied"]),
    requests.exceptions.SSLError("certificate verify failed"),
    ValueError("bug"),
], ids=["forbidden", "tls", "bug"])
def test_call_with_retry_stops_on_non_retryable(exc):
    waits = []
    func = Flaky([_conn_err(), exc])
    with pytest.raises(type(exc)):
        call_with_retry(func, RetryPolicy(sleep=waits.append))
    assert func.calls == 2
    assert waits == [1.0]


def test_call_with_retry_uses_the_given_predicate():
    waits = []
    func = Flaky([KeyError("x"), KeyError("y")])
    assert call_with_retry(func, RetryPolicy(retries=2, delay=0.25, sleep=waits.append),
                           retryable=lambda exc: isinstance(exc, KeyError)) == "ok"
    assert waits == [0.25, 0.5]


def test_call_with_retry_zero_retries_calls_once():
    waits = []
    func = Flaky([_conn_err()])
    with pytest.raises(requests.exceptions.ConnectionError):
        call_with_retry(func, RetryPolicy(retries=0, sleep=waits.append))
    assert func.calls == 1 and waits == []


# -- fake Vault nodes over real HTTP -------------------------------------------------------

class FakeNode:
    """One fake Vault node: a real HTTP server on 127.0.0.1 with a scripted answer.

    ``leader`` is the ``/v1/sys/leader`` answer: a dict (200 + JSON) or a status
    code (503 means sealed).  ``routes`` maps other paths to ``(status, body)``, or to a
    list of them answered in turn.
    """

    def __init__(self):
        self.leader = {"ha_enabled": True, "is_self": False, "leader_address": ""}
        self.routes = {}
        self.seen = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                path = self.path.split("?", 1)[0]
                node.seen.append((self.command, path))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if path == "/v1/sys/leader":
                    status, body = (node.leader, SEALED_BODY) if isinstance(node.leader, int) else (200, node.leader)
                else:
                    answer = node.routes.get(path, (404, {"errors": []}))
                    if isinstance(answer, list):  # a script: one answer per request, the last repeats
                        answer = answer.pop(0) if len(answer) > 1 else answer[0]
                    if callable(answer):  # a script with side effects (e.g. an election elsewhere)
                        answer = answer()
                    status, body = answer
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args):  # keep pytest output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01},
                                       daemon=True)
        self.thread.start()

    def data_requests(self):
        return [s for s in self.seen if s[1] != "/v1/sys/leader"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def closed_port_url():
    """An address where nothing listens: connections are refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return "http://127.0.0.1:%d" % port


@pytest.fixture
def fake_nodes():
    made = []

    def make(count):
        nodes = [FakeNode() for dummy in range(count)]
        made.extend(nodes)
        return nodes

    yield make
    for node in made:
        node.close()


def leader_of(node):
    return {"ha_enabled": True, "is_self": True, "leader_address": node.url}


def standby_of(leader_url):
    return {"ha_enabled": True, "is_self": False, "leader_address": leader_url}


def make_adapter(url, nodes=(), waits=None, **kwargs):
    policy = RetryPolicy(sleep=(waits.append if waits is not None else (lambda s: None)))
    return LeaderFollowingAdapter(base_uri=url, nodes=list(nodes), policy=policy, timeout=2, **kwargs)


# Each case: the /v1/sys/leader answer of fake nodes a, b, c ("leader", "standby:<x>", "sealed",
# "none"); "down" and "down2" are closed ports.  ``url`` is the configured address, ``nodes`` the
# other addresses given; ``expect`` is the node find_leader() must return or the error it raises.
FIND_LEADER_CASES = [
    ("configured-is-leader", dict(a="leader", b="standby:a"), "a", ["b"], "a"),
    ("configured-is-leader-no-nodes", dict(a="leader"), "a", [], "a"),
    ("no-ha-single-server", dict(a="no-ha"), "a", [], "a"),
    ("configured-down-no-ha-in-nodes", dict(b="no-ha"), "down", ["b"], "b"),
    ("standby-advertises-unlisted-leader", dict(a="standby:b", b="leader"), "a", [], "b"),
    ("standby-advertises-listed-leader", dict(a="standby:c", b="standby:c", c="leader"), "a", ["b", "c"], "c"),
    ("configured-down-leader-in-nodes", dict(b="leader"), "down", ["b"], "b"),
    ("configured-down-standby-in-nodes", dict(b="standby:c", c="leader"), "down", ["b"], "c"),
    ("configured-down-sealed-then-leader", dict(b="sealed", c="leader"), "down", ["b", "c"], "c"),
    ("advertised-leader-unreachable-stays", dict(a="standby:down"), "a", [], "a"),
    ("configured-down-advertised-unreachable", dict(b="standby:down2"), "down", ["b"], "b"),
    ("all-sealed", dict(a="sealed", b="sealed"), "a", ["b"], SealedError),
    ("sealed-and-down", dict(a="sealed"), "down", ["a"], SealedError),
    ("no-leader", dict(a="none", b="none"), "a", ["b"], QuorumLostError),
    ("no-leader-some-sealed", dict(a="sealed", b="none"), "a", ["b"], QuorumLostError),
    ("nothing-reachable", {}, "down", ["down2"], UnreachableError),
]


@pytest.mark.parametrize("answers, url, others, expect", [c[1:] for c in FIND_LEADER_CASES],
                         ids=[c[0] for c in FIND_LEADER_CASES])
def test_find_leader(fake_nodes, answers, url, others, expect):
    live = dict(zip(sorted(answers), fake_nodes(len(answers))))
    urls = {name: node.url for name, node in live.items()}
    urls.update(down=closed_port_url(), down2=closed_port_url())
    for name, answer in answers.items():
        if answer == "leader":
            live[name].leader = leader_of(live[name])
        elif answer == "sealed":
            live[name].leader = 503
        elif answer == "no-ha":  # `bao server -dev`, file storage: sys/leader says HA is off
            live[name].leader = {"ha_enabled": False, "is_self": False, "leader_address": ""}
        elif answer.startswith("standby:"):
            live[name].leader = standby_of(urls[answer.split(":", 1)[1]])
        # "none": the default answer, a standby that knows no leader
    adapter = make_adapter(urls[url], [urls[o] for o in others])
    if isinstance(expect, type):
        with pytest.raises(expect) as info:
            adapter.find_leader()
        assert info.value.hint, "every typed error carries a hint for the operator"
    else:
        assert adapter.find_leader() == urls[expect]
    assert adapter.history == []  # find_leader() only looks; move_to_leader() moves


def test_find_leader_normalises_trailing_slashes(fake_nodes):
    (a,) = fake_nodes(1)
    a.leader = leader_of(a)
    adapter = make_adapter(a.url + "/", [a.url + "//"])
    assert adapter.candidates() == [a.url]
    assert adapter.find_leader() == a.url


def test_find_leader_unreachable_error_names_the_addresses():
    down, down2 = closed_port_url(), closed_port_url()
    with pytest.raises(UnreachableError) as info:
        make_adapter(down, [down2]).find_leader()
    assert down in str(info.value) and down2 in str(info.value)


def test_move_to_leader_records_history(fake_nodes):
    a, b = fake_nodes(2)
    a.leader, b.leader = standby_of(b.url), leader_of(b)
    adapter = make_adapter(a.url, [b.url])
    assert adapter.move_to_leader() == b.url
    assert adapter.base_uri == b.url
    assert [(h["from"], h["to"]) for h in adapter.history] == [(a.url, b.url)]
    assert adapter.move_to_leader() == b.url  # already there: no new entry
    assert len(adapter.history) == 1


def test_move_to_leader_skips_when_another_thread_already_moved(fake_nodes):
    a, b = fake_nodes(2)
    a.leader, b.leader = standby_of(b.url), leader_of(b)
    adapter = make_adapter(a.url, [b.url])
    stale_generation = adapter._generation - 1
    assert adapter.move_to_leader(stale_generation) == a.url
    assert adapter.history == [] and a.seen == []


# -- request(): retry and follow the leader --------------------------------------------------

@pytest.mark.parametrize("first", ["sealed", "down", "standby-no-leader"])
def test_request_moves_to_leader(fake_nodes, first):
    a, b = fake_nodes(2)
    b.leader = leader_of(b)
    b.routes[DATA_PATH] = (200, {"data": {"from": "b"}})
    if first == "sealed":
        a.leader = 503
        a.routes[DATA_PATH] = (503, SEALED_BODY)
        start = a.url
    elif first == "down":
        start = closed_port_url()
    else:  # an old active node that lost leadership answers 500 until it finds the new one
        a.leader = standby_of(b.url)
        a.routes[DATA_PATH] = (500, NO_LEADER_BODY)
        start = a.url
    waits = []
    adapter = make_adapter(start, [b.url], waits)
    assert adapter.get(DATA_PATH) == {"data": {"from": "b"}}
    assert adapter.base_uri == b.url
    assert [(h["from"], h["to"]) for h in adapter.history] == [(start, b.url)]
    assert waits == [1.0]
    assert b.data_requests() == [("GET", DATA_PATH)]
    if first != "down":
        assert a.data_requests() == [("GET", DATA_PATH)]


def test_request_follows_a_leader_elected_as_the_retries_run_out(fake_nodes):
    """A slow election (loaded host): the new leader appears only after the last retry failed."""
    a, b = fake_nodes(2)
    calls = []

    def no_leader_then_elect():
        calls.append(1)
        if len(calls) == 4:  # the last attempt: b wins the election meanwhile
            b.leader = leader_of(b)
        return 500, NO_LEADER_BODY

    a.routes[DATA_PATH] = no_leader_then_elect
    b.routes[DATA_PATH] = (200, {"data": {"from": "b"}})
    waits = []
    adapter = make_adapter(a.url, [b.url], waits)
    assert adapter.get(DATA_PATH) == {"data": {"from": "b"}}
    assert waits == [1.0, 2.0, 4.0] and len(calls) == 4
    assert [(h["from"], h["to"]) for h in adapter.history] == [(a.url, b.url)]


def test_request_gives_up_when_no_leader_appears(fake_nodes):
    (a,) = fake_nodes(1)
    a.routes[DATA_PATH] = (500, NO_LEADER_BODY)
    waits = []
    with pytest.raises(QuorumLostError):
        make_adapter(a.url, [], waits).get(DATA_PATH)
    assert waits == [1.0, 2.0, 4.0] and len(a.data_requests()) == 4


def test_find_leader_on_a_silent_node_says_quorum():
    """A node that accepts connections but does not answer (stepping down after losing quorum)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)  # the kernel completes the handshake; nobody ever answers
    try:
        silent = "http://127.0.0.1:%d" % sock.getsockname()[1]
        with pytest.raises(QuorumLostError) as info:
            make_adapter(silent, [closed_port_url()]).find_leader()
        assert silent in str(info.value) and "did not answer" in str(info.value)
        assert "unseal-recovery" in info.value.hint
    finally:
        sock.close()


@pytest.mark.parametrize("status", [502, 504, 429])
def test_request_retries_gateway_and_rate_limit_answers_in_place(fake_nodes, status):
    """A load balancer's 502/504 or a 429 is retried on the same (leader) node."""
    (a,) = fake_nodes(1)
    a.leader = leader_of(a)
    a.routes[DATA_PATH] = [(status, {"errors": []}), (status, {"errors": []}), (200, {"data": {"ok": True}})]
    waits = []
    adapter = make_adapter(a.url, [], waits)
    assert adapter.get(DATA_PATH) == {"data": {"ok": True}}
    assert waits == [1.0, 2.0]
    assert len(a.data_requests()) == 3
    assert adapter.history == []


def test_request_follows_a_leader_change_between_calls(fake_nodes):
    a, b = fake_nodes(2)
    a.leader, b.leader = leader_of(a), standby_of(a.url)
    a.routes[DATA_PATH] = (200, {"data": {"from": "a"}})
    adapter = make_adapter(a.url, [b.url])
    assert adapter.get(DATA_PATH) == {"data": {"from": "a"}}
    assert adapter.history == []
    # a is sealed (say, restarted); b wins the election
    a.leader, a.routes[DATA_PATH] = 503, (503, SEALED_BODY)
    b.leader, b.routes[DATA_PATH] = leader_of(b), (200, {"data": {"from": "b"}})
    assert adapter.get(DATA_PATH) == {"data": {"from": "b"}}
    assert [(h["from"], h["to"]) for h in adapter.history] == [(a.url, b.url)]


@pytest.mark.parametrize("status, body, exc_type", [
    (403, {"errors": ["permission denied"]}, hvac_exc.Forbidden),
    (404, {"errors": []}, hvac_exc.InvalidPath),
    (400, {"errors": ["missing client token"]}, hvac_exc.InvalidRequest),
    (500, {"errors": ["internal error: storage full"]}, hvac_exc.InternalServerError),
], ids=["forbidden", "not-found", "bad-request", "real-500"])
def test_request_does_not_retry_or_move_on_final_errors(fake_nodes, status, body, exc_type):
    a, b = fake_nodes(2)
    a.leader, b.leader = standby_of(b.url), leader_of(b)  # b would be found if we looked
    a.routes[DATA_PATH] = (status, body)
    waits = []
    adapter = make_adapter(a.url, [b.url], waits)
    with pytest.raises(exc_type):
        adapter.get(DATA_PATH)
    assert waits == []
    assert adapter.history == [] and adapter.base_uri == a.url
    assert a.seen == [("GET", DATA_PATH)]  # not even a sys/leader look-up
    assert b.seen == []


def test_request_all_sealed_says_why_after_retries(fake_nodes):
    a, b = fake_nodes(2)
    for node in (a, b):
        node.leader, node.routes[DATA_PATH] = 503, (503, SEALED_BODY)
    waits = []
    adapter = make_adapter(a.url, [b.url], waits)
    with pytest.raises(SealedError):
        adapter.get(DATA_PATH)
    assert waits == [1.0, 2.0, 4.0]
    # After each wait the adapter looks for a leader (none: it stays put) and tries again; after the
    # last failure one more look-up says why. The request went out 1 + 3 times, all to the configured node.
    assert len(a.data_requests()) == 4
    assert b.data_requests() == []
    assert adapter.history == []


def test_request_nothing_reachable_raises_unreachable():
    waits = []
    adapter = make_adapter(closed_port_url(), [closed_port_url()], waits)
    with pytest.raises(UnreachableError):
        adapter.get(DATA_PATH)
    assert waits == [1.0, 2.0, 4.0]


def test_request_without_follow_leader_stays_on_its_node(fake_nodes):
    a, b = fake_nodes(2)
    a.leader, a.routes[DATA_PATH] = 503, (503, SEALED_BODY)
    b.leader, b.routes[DATA_PATH] = leader_of(b), (200, {"data": {}})
    waits = []
    adapter = make_adapter(a.url, [b.url], waits, follow_leader=False)
    with pytest.raises(hvac_exc.VaultDown):
        adapter.get(DATA_PATH)
    assert waits == [1.0, 2.0, 4.0]
    assert len(a.data_requests()) == 4
    assert ("GET", "/v1/sys/leader") not in a.seen
    assert b.seen == [] and adapter.history == []
