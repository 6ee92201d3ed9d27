"""vault_audit_report run as Ansible runs it (a subprocess with ANSIBLE_MODULE_ARGS) on recorded audit lines.

The parsing itself is tested table-driven in tests/unit/plugins/module_utils/test_audit_log.py; here: globs,
.gz files, the window options, the JSON and text outputs (0600, atomic, check mode, rerun without change),
and clear failures.
"""

import gzip
import json
import os
import shutil
import stat

import pytest

from heracles_testlib import run_module

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils", "fixtures",
                       "openbao-2.7.2-audit.log")


@pytest.fixture()
def logs(tmp_path):
    """Two nodes' logs: node1 the recorded file, node2 its last four lines gzipped plus a junk line."""
    for name in ("node1", "node2"):
        (tmp_path / name / "audit").mkdir(parents=True)
    shutil.copy(FIXTURE, str(tmp_path / "node1" / "audit" / "audit.log"))
    with open(FIXTURE, "rb") as handle:
        lines = handle.read().splitlines(True)
    data = b"".join(lines[-4:]).replace(b'"id":"', b'"id":"n2-') + b"not json at all\n"
    with gzip.open(str(tmp_path / "node2" / "audit" / "audit.log.1.gz"), "wb") as handle:
        handle.write(data)
    return tmp_path


def args(logs, **extra):
    base = dict(paths=[str(logs / "node*" / "audit" / "audit.log*")])
    base.update(extra)
    return base


def test_report_over_two_nodes_with_a_gz_file(logs):
    res = run_module("vault_audit_report", args(logs))
    assert not res.failed, res
    rep = res["report"]
    assert len(res["files"]) == 2 and res["files"][1].endswith(".gz")
    assert rep["lines_read"] == 21 and rep["unparseable_lines"] == 1
    assert rep["unparseable_at"] == [res["files"][1] + ":5"]
    assert rep["requests"] == 11 and rep["denied"]["count"] == 2
    assert res["changed"] is False and "dest" not in res
    assert any(line.startswith("denied:      2") for line in res["summary"])


def test_window_options(logs):
    res = run_module("vault_audit_report", args(logs, since="2026-11-23T10:35:35.63Z", until="2026-11-23T19:35:35.632+09:00"))
    assert not res.failed, res
    assert res["report"]["window"] == dict(since="2026-11-23T10:35:35.630000Z", until="2026-11-23T10:35:35.632000Z")
    assert res["report"]["requests"] == 2  # the web read, from node1 and node2


def test_files_written_0600_check_mode_first_then_rerun_unchanged(logs, tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    dest, summary = str(out / "audit.json"), str(out / "audit.txt")
    opts = args(logs, dest=dest, summary_dest=summary, since="2026-01-01", until="2027-01-01")
    check = run_module("vault_audit_report", opts, check=True)
    assert not check.failed and check["changed"] is True, check
    assert os.listdir(str(out)) == []
    first = run_module("vault_audit_report", opts)
    assert not first.failed and first["changed"] is True, first
    assert sorted(os.listdir(str(out))) == ["audit.json", "audit.txt"]
    for path in (dest, summary):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(dest) as handle:
        assert json.load(handle) == first["report"]
    with open(summary) as handle:
        assert handle.read().splitlines() == first["summary"]
    again = run_module("vault_audit_report", opts)
    assert not again.failed and again["changed"] is False, again
    os.chmod(dest, 0o644)
    fixed = run_module("vault_audit_report", opts)
    assert fixed["changed"] is True and stat.S_IMODE(os.stat(dest).st_mode) == 0o600


@pytest.mark.parametrize("override, expect", [
    (dict(paths=["/nonexistent/audit/*.log"]), "No audit log found: /nonexistent/audit/*.log matched no file"),
    (dict(since="yesterday"), "Bad time window: 'yesterday' is neither a duration"),
    (dict(since="2026-05-02", until="2026-05-01"), "Bad time window: since (2026-05-02T00:00:00.000000Z) is after until"),
    (dict(dest="/nonexistent-dir/report.json"), "The directory of /nonexistent-dir/report.json does not exist"),
    (dict(max_entries=-1), "max_entries must be 0 or more"),
], ids=["no-files", "bad-since", "since-after-until", "no-dest-dir", "negative-max"])
def test_clear_failures(logs, override, expect):
    res = run_module("vault_audit_report", args(logs, **override))
    assert res.failed
    assert expect in res["msg"], res["msg"]
    assert res.get("changed") is False or "changed" not in res


def test_a_pattern_without_match_only_warns(logs):
    res = run_module("vault_audit_report", dict(paths=[str(logs / "node1" / "audit" / "audit.log"), str(logs / "nope*.log")]))
    assert not res.failed, res
    assert "matched no audit log file" in json.dumps(res.get("warnings", []))
    assert res["report"]["requests"] == 9


def test_unreadable_or_corrupt_file_fails_clearly(logs):
    path = logs / "node1" / "audit" / "audit.log.2.gz"
    path.write_bytes(b"this is no gzip data")
    res = run_module("vault_audit_report", dict(paths=[str(path)]))
    assert res.failed and "Cannot read %s" % path in res["msg"] and "audit log this user may read" in res["msg"], res["msg"]
