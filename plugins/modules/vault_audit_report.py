#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_audit_report
short_description: Report who accessed what from Vault/OpenBao file audit logs, without any value
version_added: "0.1.0"
description:
  - Reads one or more file audit logs (JSON lines, as a C(file) audit device writes them; C(.gz) files too) and
    reports, over a time window, request counts by identity (C(display_name) plus C(entity_id)) and path, counts per
    operation, denied requests (the error contains C(permission denied)), use of root tokens (C(root) among the
    token's policies), dynamic database credentials issued per identity, the first and last time seen, and how many
    lines were read and could not be parsed.
  - Each request is counted once although the log holds a C(request) and a C(response) line for it. A write sent
    to a standby is logged by the standby (which fails it with C(cannot write to readonly storage) and forwards it)
    and again by the active node; only the active node's entry is counted, so read every node's log.
  - Only paths, operations, identities, policies, token types, auth metadata, HMAC'd accessors, remote addresses
    and counts are reported. Request and response bodies are never read, so no value (HMAC'd or not) reaches
    the report. Path segments that look like a token are replaced by C(<token>).
  - Unparseable lines are counted (with their file and line number), not fatal.
  - Memory does not grow with the size of the logs. Each table (identities, paths, identity/path pairs, root paths,
    credential holders) keeps at most 10000 rows (or twice O(max_entries)); when one is full its busiest half is
    kept and the rest dropped, as RV(report.bounds) counts. Up to that many distinct keys, every count is exact.
  - Reads files only; it does not talk to Vault, so it takes none of the connection options.
author: heracles.secrets contributors (!UNKNOWN)
seealso:
  - module: heracles.secrets.vault_audit
attributes:
  check_mode:
    support: full
    description: Reads the logs and returns the report; O(dest) and O(summary_dest) are not written, C(changed) says
      whether they would be.
  diff_mode:
    support: none
    description: Returns no diff; the report is in RV(report).
options:
  paths:
    description:
      - Audit log files or glob patterns (for example C(/vault/audit/*.log) or C(.local/cluster/node*/audit/audit.log)).
      - Files ending in C(.gz) are decompressed while read. The module fails when no file matches at all; a pattern
        that matches nothing while others do gives a warning.
    type: list
    elements: path
    required: true
  since:
    description:
      - Start of the window, inclusive. A duration (C(24h), C(90m), C(7d)) means that long before now; otherwise an
        ISO time (C(2026-05-01T10:00:00Z), an offset such as C(+09:00), or no zone for UTC) or a date.
      - Empty means from the start of the logs.
    type: str
    default: ""
  until:
    description: End of the window, inclusive; same forms as O(since). Empty means up to the end of the logs.
    type: str
    default: ""
  max_entries:
    description: How many rows each list in the report keeps (identities, paths, identity/path pairs, denied and root
      entries); the rest are counted in the C(*_not_listed) fields.
    type: int
    default: 100
  dest:
    description: Write the report as JSON here (mode 0600, replaced atomically, only when its content changes).
    type: path
  summary_dest:
    description: Write the short text summary here (mode 0600, replaced atomically, only when its content changes).
    type: path
"""

EXAMPLES = r"""
- name: Last 24 hours of the local cluster's audit logs
  heracles.secrets.vault_audit_report:
    paths: [.local/cluster/node*/audit/audit.log]
    since: 24h
    dest: .local/audit-reports/audit-report.json
    summary_dest: .local/audit-reports/audit-report.txt
  register: audit

- name: Who was denied, and was a root token used?
  ansible.builtin.debug:
    msg: "{{ audit.summary }}"

- name: A fixed window (a rerun reports no change)
  heracles.secrets.vault_audit_report:
    paths: [/var/log/vault/audit.log, /var/log/vault/audit.log.1.gz]
    since: "2026-05-01T00:00:00Z"
    until: "2026-05-02T00:00:00Z"
    dest: /var/lib/heracles/audit-2026-05-01.json
"""

RETURN = r"""
report:
  description: The report (the same object O(dest) receives).
  returned: always
  type: dict
  contains:
    window:
      description: The window actually applied, in UTC (C(null) for an open end).
      type: dict
      sample: {since: "2026-05-01T00:00:00.000000Z", until: null}
    first:
      description: Time of the first request counted.
      type: str
      sample: "2026-05-01T10:35:35.580372Z"
    last:
      description: Time of the last request counted.
      type: str
    files:
      description: Per file, lines read, unparseable lines, requests counted, first and last time.
      type: list
      elements: dict
    lines_read:
      description: Non-empty lines read from all files.
      type: int
    unparseable_lines:
      description: Lines that are not audit entries (not JSON, no time or type).
      type: int
    unparseable_at:
      description: C(file:line) of the first unparseable lines (never their content).
      type: list
      elements: str
    outside_window_lines:
      description: Lines skipped because their time is outside the window.
      type: int
    requests:
      description: Requests counted (each once, from its request and response lines).
      type: int
    forwarded:
      description: Standby entries of writes forwarded to the active node; not counted as requests (the active node's
        log has them).
      type: int
    errors:
      description: Requests that failed for another reason than permission denied.
      type: int
    operations:
      description: Requests per operation.
      type: dict
      sample: {create: 2, read: 14, update: 3}
    identities:
      description: Per identity, sorted by requests; policies, token types, auth metadata, HMAC'd accessors, counts.
      type: list
      elements: dict
      sample:
        - identity: token-webapp
          display_name: token-webapp
          entity_id: null
          policies: [default, web]
          token_types: [service]
          metadata: {app: web}
          accessors: ["hmac-sha256:f10a9e1d..."]
          requests: 2
          denied: 1
          errors: 0
          operations: {read: 2}
          first: "2026-05-01T10:35:35.631279Z"
          last: "2026-05-01T10:35:35.633052Z"
    paths:
      description: Per path, sorted by requests; mount type, operations, denied count and number of identities.
      type: list
      elements: dict
    access:
      description: Requests per identity and path, sorted by requests.
      type: list
      elements: dict
      sample:
        - {identity: token-webapp, path: kv-prod/data/apps/web/db, requests: 1, denied: 0, operations: {read: 1}}
    denied:
      description: C(count) of denied requests and the most recent C(entries) (time, identity, path, operation,
        remote address, policies).
      type: dict
    root:
      description: Requests made with a root token; C(count), C(identities), C(paths) with counts, recent C(entries).
      type: dict
    credentials:
      description: Dynamic database credentials issued (successful reads of C(<mount>/creds/<role>) on a database
        engine); C(count) and per identity the number C(issued) and C(roles) (creds path -> count).
      type: dict
      sample: {count: 3, identities: [{identity: kubernetes-payments-payments, issued: 3,
               roles: {database-prod/creds/payments-rw: 3}}], identities_not_listed: 0}
    bounds:
      description:
        - What bounds the memory. C(capacity) is the most rows a table keeps; C(evicted) counts, per table, the rows
          dropped when it was full (a dropped key seen again starts from zero, so the tail's counts are then lower
          bounds and the C(*_not_listed) fields upper bounds), and C(pending) the request lines counted without
          waiting for their response line because more than C(max_pending) were waiting.
        - All zero unless the logs hold more distinct keys than C(capacity).
      type: dict
      version_added: "0.2.0"
      sample: {capacity: 10000, max_pending: 4096, evicted: {access: 0, credentials: 0, identities: 0, paths: 0,
               pending: 0, root_paths: 0}}
summary:
  description: A short text summary (what O(summary_dest) receives, one line per element).
  returned: always
  type: list
  elements: str
  sample:
    - "requests:    7 (first 2026-05-01T10:35:35.580372Z, last 2026-05-01T10:35:35.633091Z)"
    - "denied:      1"
files:
  description: The files read, after glob expansion.
  returned: always
  type: list
  elements: str
dest:
  description: Where the JSON report was (or, in check mode, would be) written.
  returned: when O(dest) is set
  type: str
"""

import datetime
import glob
import gzip
import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.heracles.secrets.plugins.module_utils.audit_log import (
    UTC, AuditReport, AuditWindowError, parse_bound, summary_lines,
)


READ_BUFFER = 1 << 20  # lines are read from 1 MB blocks


def expand_paths(module, patterns):
    """Glob each pattern; fail when nothing at all matches, warn for the patterns that match nothing."""
    files, empty = [], []
    for pattern in patterns:
        matched = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else ([pattern] if os.path.exists(pattern) else [])
        matched = [m for m in matched if os.path.isfile(m)]
        if not matched:
            empty.append(pattern)
        for path in matched:
            if path not in files:
                files.append(path)
    if not files:
        module.fail_json(msg="No audit log found: %s matched no file. Point paths at the file audit device's file_path "
                             "on the hosts that hold it (local cluster: .local/cluster/node*/audit/audit.log); "
                             "nothing was written" % ", ".join(patterns), changed=False)
    for pattern in empty:
        module.warn("%s matched no audit log file" % pattern)
    return files


def open_log(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb", buffering=READ_BUFFER)


def content_differs(path, data):
    """True when ``path`` does not hold ``data`` with mode 0600."""
    try:
        with open(path, "rb") as handle:
            if handle.read() != data:
                return True
        return (os.stat(path).st_mode & 0o777) != 0o600
    except (IOError, OSError):
        return True


def write_file(module, path, data):
    """Write ``data`` to ``path`` atomically with mode 0600."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        module.fail_json(msg="The directory of %s does not exist; create it first (mode 0700)" % path, changed=False)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.rename(tmp, path)
    except (IOError, OSError) as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        module.fail_json(msg="Cannot write %s: %s" % (path, exc))


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", required=True),
            since=dict(type="str", default=""),
            until=dict(type="str", default=""),
            max_entries=dict(type="int", default=100),
            dest=dict(type="path"),
            summary_dest=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["max_entries"] < 0:
        module.fail_json(msg="max_entries must be 0 or more")
    now = datetime.datetime.now(UTC)
    try:
        report = AuditReport(since=parse_bound(p["since"], now), until=parse_bound(p["until"], now),
                             max_entries=p["max_entries"])
    except AuditWindowError as exc:
        module.fail_json(msg="Bad time window: %s; nothing was read" % exc)
    files = expand_paths(module, p["paths"])
    for path in files:
        try:
            with open_log(path) as handle:
                report.add_source(path, handle)
        except (IOError, OSError) as exc:
            module.fail_json(msg="Cannot read %s: %s. Check that it is an audit log this user may read; nothing was written"
                                 % (path, getattr(exc, "strerror", None) or exc), files=files)
    result = report.result()
    summary = summary_lines(result)

    changed = False
    outputs = []
    if p["dest"]:
        outputs.append((p["dest"], (json.dumps(result, indent=2, sort_keys=True) + "\n").encode("utf-8")))
    if p["summary_dest"]:
        outputs.append((p["summary_dest"], ("\n".join(summary) + "\n").encode("utf-8")))
    for path, data in outputs:
        if content_differs(path, data):
            changed = True
            if not module.check_mode:
                write_file(module, path, data)

    out = dict(changed=changed, report=result, summary=summary, files=files)
    if p["dest"]:
        out["dest"] = p["dest"]
    module.exit_json(**out)


def main():
    run_module()


if __name__ == "__main__":
    main()
