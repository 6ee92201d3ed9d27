"""audit_log.py: parsing audit lines into a report of identities, paths and counts -- never values.

``fixtures/openbao-2.7.2-audit.log`` holds 16 lines recorded from a real OpenBao 2.7.2 file audit device:
an unauthenticated ``sys/audit/test``, a raft bootstrap challenge, the response line of a mount (its request
line is not in the file, as at a window edge), root writes of two KV v2 secrets, a policy and a token, and
that token (``token-webapp``, policies default + web) reading one allowed and one denied path.
"""

import datetime
import json
import os

import pytest

from ansible_collections.heracles.secrets.plugins.module_utils import audit_log
from ansible_collections.heracles.secrets.plugins.module_utils.audit_log import (
    AuditReport, AuditWindowError, build_report, format_time, parse_bound, parse_line, parse_time, redact_path,
    summary_lines,
)

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "openbao-2.7.2-audit.log")
UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def recorded():
    with open(FIXTURE) as handle:
        return handle.read().splitlines()


def line(kind="request", time="2026-05-01T10:00:00.123456789Z", rid="r1", auth=None, request=None, **extra):
    body = dict(time=time, type=kind, auth=auth if auth is not None else {},
                request=dict(dict(id=rid, operation="read", path="kv/data/x"), **(request or {})))
    body.update(extra)
    return json.dumps(body)


ROOT = dict(display_name="root", policies=["root"], token_policies=["root"], token_type="service",
            accessor="hmac-sha256:aaaa")
APP = dict(display_name="kubernetes-web-web", entity_id="ent-1", policies=["default", "web"], token_type="service",
           metadata=dict(role="web", service_account_name="web", service_account_namespace="web"),
           accessor="hmac-sha256:bbbb")


# -- the recorded OpenBao lines ------------------------------------------------------------
def test_recorded_openbao_log():
    rep = build_report([("audit.log", recorded())])
    assert rep["lines_read"] == 16 and rep["unparseable_lines"] == 0 and rep["outside_window_lines"] == 0
    assert rep["requests"] == 9
    assert rep["operations"] == {"create": 2, "read": 2, "update": 5}
    idents = dict((i["identity"], i) for i in rep["identities"])
    assert sorted(idents) == ["(unauthenticated)", "root", "token-webapp"]
    assert idents["root"]["requests"] == 5 and idents["root"]["policies"] == ["root"]
    app = idents["token-webapp"]
    assert (app["requests"], app["denied"], app["policies"], app["metadata"]) == (2, 1, ["default", "web"], {"app": "web"})
    assert app["accessors"] == ["hmac-sha256:f10a9e1db97fe726e1a79728190f54adfe4f2991cfb9e675c60e3935f8ac84a3"]
    assert rep["denied"]["count"] == 1
    denied = rep["denied"]["entries"][0]
    assert (denied["identity"], denied["path"], denied["operation"]) == ("token-webapp", "kv-t/data/apps/other/db", "read")
    assert denied["time"] == "2026-11-23T10:35:35.633052Z" and denied["remote_address"] == "127.0.0.1"
    assert rep["root"]["count"] == 5 and rep["root"]["identities"] == ["root"]
    assert rep["root"]["paths"] == {"auth/token/create": 1, "kv-t/data/apps/other/db": 1, "kv-t/data/apps/web/db": 1,
                                    "sys/mounts/kv-t": 1, "sys/policy/web": 1}
    access = dict(((a["identity"], a["path"]), a) for a in rep["access"])
    assert access[("token-webapp", "kv-t/data/apps/web/db")]["requests"] == 1
    assert access[("token-webapp", "kv-t/data/apps/other/db")]["denied"] == 1
    assert rep["first"] == "2026-11-23T10:35:22.278061Z" and rep["last"] == "2026-11-23T10:35:35.633052Z"


def test_recorded_report_holds_no_hmac_of_a_body_value():
    """Bodies are never read: the HMACs of request/response data in the log do not appear in the report."""
    body_hmacs = set()

    def collect(node, in_body):
        if isinstance(node, dict):
            for key, value in node.items():
                collect(value, in_body or key == "data")
        elif isinstance(node, list):
            for value in node:
                collect(value, in_body)
        elif in_body and isinstance(node, str) and node.startswith("hmac-sha256:"):
            body_hmacs.add(node)

    for text in recorded():
        collect(json.loads(text), False)
    assert body_hmacs, "the fixture has HMAC'd body values"
    dumped = json.dumps(build_report([("audit.log", recorded())]))
    assert [h for h in body_hmacs if h in dumped] == []
    assert "client_token" not in dumped


# -- parse_line, table-driven ----------------------------------------------------------------
PARSE_CASES = [
    ("root-request", line(auth=ROOT), dict(identity="root", root=True, denied=False, error=False, path="kv/data/x")),
    ("entity-identity", line(auth=APP), dict(identity="kubernetes-web-web (ent-1)", root=False,
                                             metadata=APP["metadata"], accessor="hmac-sha256:bbbb")),
    ("unauthenticated", line(auth={"token_type": "default"}), dict(identity="(unauthenticated)", policies=[])),
    ("denied", line(auth=APP, error="1 error occurred:\n\t* permission denied\n\n"), dict(denied=True, error=True)),
    ("other-error", line(auth=APP, error="no handler for route"), dict(denied=False, error=True)),
    ("token-policies-only-root", line(auth=dict(display_name="x", token_policies=["root"])), dict(root=True)),
    ("raw-accessor-dropped", line(auth=dict(ROOT, accessor="raw-accessor-value")), dict(accessor=None)),
    ("token-in-path", line(request=dict(path="auth/token/lookup/hvs.CAESIJ1k2xQabcdefghijklmnop")),
     dict(path="auth/token/lookup/<token>")),
    ("nanoseconds", line(time="2026-11-23T10:35:35.633091529Z"),
     dict(time=datetime.datetime(2026, 11, 23, 10, 35, 35, 633091, tzinfo=UTC))),
    ("mount-and-remote", line(request=dict(mount_type="kv", remote_address="10.0.0.7")),
     dict(mount_type="kv", remote_address="10.0.0.7")),
]


@pytest.mark.parametrize("text, expect", [c[1:] for c in PARSE_CASES], ids=[c[0] for c in PARSE_CASES])
def test_parse_line(text, expect):
    entry = parse_line(text)
    for key, value in expect.items():
        assert entry[key] == value, key


UNPARSEABLE = [
    ("not-json", "this is not json"),
    ("truncated", line()[:40]),
    ("array", "[1, 2]"),
    ("no-type", json.dumps(dict(time="2026-05-01T10:00:00Z"))),
    ("other-type", json.dumps(dict(time="2026-05-01T10:00:00Z", type="audit"))),
    ("no-time", json.dumps(dict(type="request"))),
    ("bad-time", json.dumps(dict(type="request", time="yesterday"))),
]


@pytest.mark.parametrize("text", [c[1] for c in UNPARSEABLE], ids=[c[0] for c in UNPARSEABLE])
def test_unparseable_lines_are_counted_not_fatal(text):
    rep = build_report([("a.log", [line(auth=ROOT), text, "", line(auth=ROOT, rid="r2")])])
    assert rep["lines_read"] == 3 and rep["unparseable_lines"] == 1 and rep["unparseable_at"] == ["a.log:2"]
    assert rep["requests"] == 2
    assert text not in json.dumps(rep) or text == ""


def test_values_never_reach_the_report_even_from_a_log_raw_device():
    secret = "s3cr3t-value-in-clear"
    raw = line(auth=dict(ROOT, client_token="hvs.rawroottoken1234567890", accessor="raw-accessor"),
               request=dict(path="kv/data/app", data={"data": {"password": secret}}),
               response={"data": {"data": {"password": secret}}})
    dumped = json.dumps(build_report([("raw.log", [raw])]))
    assert secret not in dumped and "hvs.rawroottoken" not in dumped and "raw-accessor" not in dumped


# -- request/response pairing ------------------------------------------------------------------
PAIR_CASES = [
    # (id, lines, requests, denied, errors)
    ("request-and-response", [line(rid="a"), line("response", rid="a")], 1, 0, 0),
    ("two-requests", [line(rid="a"), line("response", rid="a"), line(rid="b"), line("response", rid="b")], 2, 0, 0),
    ("response-only", [line("response", rid="a")], 1, 0, 0),
    ("request-only", [line(rid="a")], 1, 0, 0),
    ("denied-on-both-lines-counted-once",
     [line(rid="a", error="permission denied"), line("response", rid="a", error="permission denied")], 1, 1, 0),
    ("error-only-on-response", [line(rid="a"), line("response", rid="a", error="internal error")], 1, 0, 1),
    ("no-request-id", [line(rid=None), line("response", rid=None)], 2, 0, 0),
    ("same-id-reused-after-response", [line(rid="a"), line("response", rid="a"), line(rid="a")], 2, 0, 0),
    ("same-id-reused-without-response", [line(rid="a"), line(rid="a"), line("response", rid="a")], 2, 0, 0),
    # OpenBao 2.7.2: a write sent to a standby (its log), then the same write on the active node (another id)
    ("forwarded-by-standby", [line(rid="s", request=dict(operation="update")),
                              line("response", rid="s", request=dict(operation="update"),
                                   error="1 error occurred:\n\t* failed to persist policy: cannot write to readonly storage\n\n"),
                              line(rid="l", request=dict(operation="update")),
                              line("response", rid="l", request=dict(operation="update"))], 1, 0, 0),
]


@pytest.mark.parametrize("lines, requests, denied, errors", [c[1:] for c in PAIR_CASES], ids=[c[0] for c in PAIR_CASES])
def test_each_request_counted_once(lines, requests, denied, errors):
    rep = build_report([("a.log", lines)])
    assert (rep["requests"], rep["denied"]["count"], rep["errors"]) == (requests, denied, errors)


def test_forwarded_standby_entries_are_counted_apart():
    standby = [line(rid="s"), line("response", rid="s", error="cannot write to readonly storage")]
    active = [line(rid="l"), line("response", rid="l")]
    rep = build_report([("standby.log", standby), ("active.log", active)])
    assert (rep["requests"], rep["forwarded"], rep["errors"]) == (1, 1, 0)
    assert [f["requests"] for f in rep["files"]] == [0, 1]
    assert "1 standby entries of writes forwarded" in "\n".join(summary_lines(rep))


def test_request_in_window_with_its_response_after_it_is_counted_with_the_response():
    lines = [line(time="2026-05-01T10:59:59.9Z", rid="a"),
             line("response", time="2026-05-01T11:00:00.1Z", rid="a", error="permission denied")]
    rep = build_report([("a.log", lines)], until=parse_time("2026-05-01T11:00:00Z"))
    assert (rep["requests"], rep["denied"]["count"], rep["outside_window_lines"]) == (1, 1, 0)


def test_files_are_reported_separately_and_summed():
    rep = build_report([("n1.log", [line(rid="a", auth=ROOT)]), ("n2.log", [line(rid="b", auth=APP), "junk"])])
    assert [(f["path"], f["lines"], f["unparseable"], f["requests"]) for f in rep["files"]] == [
        ("n1.log", 1, 0, 1), ("n2.log", 2, 1, 1)]
    assert rep["requests"] == 2 and rep["lines_read"] == 3


def test_bytes_lines_are_decoded():
    rep = build_report([("a.log", [line(auth=ROOT).encode("utf-8") + b"\n", b"\xff\xfe not json\n"])])
    assert rep["requests"] == 1 and rep["unparseable_lines"] == 1


# -- the window ------------------------------------------------------------------------------------
def at(minute, **kw):
    return line(time="2026-05-01T10:%02d:00Z" % minute, rid="m%d" % minute, **kw)


WINDOW_CASES = [
    # (id, since, until, counted minutes)
    ("open", None, None, [0, 10, 20, 30]),
    ("since-inclusive", "2026-05-01T10:10:00Z", None, [10, 20, 30]),
    ("until-inclusive", None, "2026-05-01T10:20:00Z", [0, 10, 20]),
    ("both", "2026-05-01T10:05:00Z", "2026-05-01T10:25:00Z", [10, 20]),
    ("offset", "2026-05-01T19:15:00+09:00", None, [20, 30]),
    ("duration", "1h55m", None, [10, 20, 30]),  # NOW is 12:00, so since 10:05
    ("date", "2026-05-02", None, []),
]


@pytest.mark.parametrize("since, until, minutes", [c[1:] for c in WINDOW_CASES], ids=[c[0] for c in WINDOW_CASES])
def test_window(since, until, minutes):
    lines = [at(m, auth=ROOT) for m in (0, 10, 20, 30)]
    rep = build_report([("a.log", lines)], since=parse_bound(since, NOW), until=parse_bound(until, NOW))
    assert rep["requests"] == len(minutes)
    assert rep["outside_window_lines"] == 4 - len(minutes)
    if minutes:
        assert rep["first"] == "2026-05-01T10:%02d:00.000000Z" % minutes[0]
        assert rep["last"] == "2026-05-01T10:%02d:00.000000Z" % minutes[-1]


def test_response_inside_window_counts_when_its_request_is_before_it():
    lines = [line(time="2026-05-01T09:59:59.9Z", rid="a", auth=ROOT),
             line("response", time="2026-05-01T10:00:00.1Z", rid="a", auth=ROOT, error="permission denied")]
    rep = build_report([("a.log", lines)], since=parse_time("2026-05-01T10:00:00Z"))
    assert rep["requests"] == 1 and rep["denied"]["count"] == 1 and rep["outside_window_lines"] == 1


BOUND_CASES = [
    ("", None),
    (None, None),
    ("24h", NOW - datetime.timedelta(hours=24)),
    ("7d", NOW - datetime.timedelta(days=7)),
    ("90m", NOW - datetime.timedelta(minutes=90)),
    ("2026-04-30T08:00:00Z", datetime.datetime(2026, 4, 30, 8, 0, tzinfo=UTC)),
    ("2026-04-30T08:00:00", datetime.datetime(2026, 4, 30, 8, 0, tzinfo=UTC)),
    ("2026-04-30 08:00", datetime.datetime(2026, 4, 30, 8, 0, tzinfo=UTC)),
    ("2026-04-30T17:00:00+09:00", datetime.datetime(2026, 4, 30, 8, 0, tzinfo=UTC)),
    ("2026-04-30T03:30:00-0430", datetime.datetime(2026, 4, 30, 8, 0, tzinfo=UTC)),
    ("2026-04-30", datetime.datetime(2026, 4, 30, tzinfo=UTC)),
]


@pytest.mark.parametrize("value, expect", BOUND_CASES, ids=[str(c[0]) for c in BOUND_CASES])
def test_parse_bound(value, expect):
    assert parse_bound(value, NOW) == expect


@pytest.mark.parametrize("value", ["yesterday", "24 hours", "2026-13-01", "10:00"])
def test_parse_bound_refuses_nonsense(value):
    with pytest.raises(AuditWindowError) as info:
        parse_bound(value, NOW)
    assert "neither a duration" in str(info.value)


def test_since_after_until_is_refused():
    with pytest.raises(AuditWindowError):
        AuditReport(since=parse_time("2026-05-02"), until=parse_time("2026-05-01"))


# -- caps, paths, summary ----------------------------------------------------------------------------
def test_lists_are_capped_and_the_rest_counted():
    lines = [line(rid="r%d" % i, auth=dict(display_name="user%d" % i, policies=["root"]),
                  request=dict(path="kv/data/p%d" % i), error="permission denied") for i in range(7)]
    rep = build_report([("a.log", lines)], max_entries=3)
    assert len(rep["identities"]) == 3 and rep["identities_not_listed"] == 4
    assert len(rep["paths"]) == 3 and rep["paths_not_listed"] == 4
    assert len(rep["access"]) == 3 and rep["access_not_listed"] == 4
    assert rep["denied"]["count"] == 7 and len(rep["denied"]["entries"]) == 3 and rep["denied"]["entries_not_listed"] == 4
    assert [e["identity"] for e in rep["denied"]["entries"]] == ["user4", "user5", "user6"]  # the most recent
    assert rep["root"]["count"] == 7 and rep["root"]["entries_not_listed"] == 4


@pytest.mark.parametrize("path, expect", [
    ("kv-prod/data/apps/web", "kv-prod/data/apps/web"),
    ("auth/token/revoke/s.AbCdEfGhIjKlMnOpQrSt", "auth/token/revoke/<token>"),
    ("auth/token/lookup/hvb.AAAAAQLongBatchToken_value-xyz", "auth/token/lookup/<token>"),
    ("kv/data/s.short", "kv/data/s.short"),
    ("", ""),
])
def test_redact_path(path, expect):
    assert redact_path(path) == expect


def test_summary_names_denied_and_root():
    text = "\n".join(summary_lines(build_report([("audit.log", recorded())])))
    assert "requests:    9" in text and "denied:      1" in text
    assert "token-webapp read kv-t/data/apps/other/db" in text
    assert "root token:  5 request(s) by root" in text


def test_format_time_is_utc_z():
    value = parse_time("2026-04-30T17:00:00.5+09:00")
    assert format_time(value) == "2026-04-30T08:00:00.500000Z"
    assert format_time(None) is None
    assert audit_log.identity_of(None, None) == "(unauthenticated)"


# -- bounded memory ------------------------------------------------------------------------------------
def test_tables_stay_bounded_and_the_busiest_keys_survive():
    report = AuditReport(max_entries=2, capacity=10)
    lines = [line(rid="h%d" % i, auth=dict(display_name="heavy"), request=dict(path="kv/data/hot")) for i in range(50)]
    lines += [line(rid="t%d" % i, auth=dict(display_name="tail%d" % i), request=dict(path="kv/data/p%d" % i))
              for i in range(100)]
    report.add_source("a.log", lines)
    rep = report.result()
    assert max(len(report.identities), len(report.paths), len(report.access)) <= 10
    assert rep["requests"] == 150 and rep["identities"][0]["identity"] == "heavy" and rep["identities"][0]["requests"] == 50
    assert rep["paths"][0] == dict(path="kv/data/hot", mount_type="", requests=50, denied=0, operations={"read": 50},
                                   identities=1)
    assert rep["bounds"]["evicted"]["identities"] > 0 and rep["identities_not_listed"] >= 99


def test_pending_request_lines_are_bounded_and_not_counted_twice(monkeypatch):
    monkeypatch.setattr(audit_log, "MAX_PENDING", 5)
    report = AuditReport()
    requests = [line(rid="r%d" % i) for i in range(20)]
    responses = [line("response", rid="r%d" % i, error="permission denied" if i == 19 else None) for i in range(20)]
    for text in requests + responses:
        report.add_entry(audit_log.read_entry(text))
        assert len(report._pending) <= 5
    report.flush()
    rep = report.result()
    assert rep["requests"] == 20 and rep["bounds"]["evicted"]["pending"] == 15 and rep["denied"]["count"] == 1


@pytest.mark.parametrize("text", ["2026-11-23T10:35:35.633091529Z", "2026-11-23T10:35:35Z", "2026-11-23T10:35:35.5Z",
                                  "2026-11-23T10:35:35.633091Z", "2026-11-23T19:35:35.5+09:00", "2026-11-23"])
def test_time_key_is_format_time_of_parse_time(text):
    assert audit_log.time_key(text) == format_time(parse_time(text))


@pytest.mark.parametrize("text", ["2026-13-23T10:35:35Z", "2026-11-23T24:00:00Z", "2026-11-23T10:35:61Z",
                                  "2026-11-23T10:35:35.x1Z", "2026-11-23T10:35:3\u00b2Z"])
def test_time_key_refuses_what_parse_time_refuses(text):
    with pytest.raises(ValueError):
        audit_log.time_key(text)
