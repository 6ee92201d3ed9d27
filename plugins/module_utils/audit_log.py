# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read Vault/OpenBao file audit logs (JSON lines) into a report of who did what -- never values.

A file audit device writes two lines per request, both with the same ``request.id``: ``type: request``
when the request arrives and ``type: response`` when it is answered. A request is counted once, when its
response line is read (or at the end of the file when none was logged), and belongs to the window when its
request line does (its response line, when the request line is not there). A write sent to a standby is
logged twice in the cluster: on the standby, whose response says ``cannot write to readonly storage``, and
again, under another request id, on the active node the standby forwards it to; the standby's entry is
counted as ``forwarded`` only. Only an allowlist of fields is ever read:
``time``, ``type``, ``error`` (to classify it), ``auth.display_name / entity_id / policies /
token_policies / token_type / metadata / accessor`` and ``request.id / path / operation / mount_type /
remote_address``. Request and response bodies (``request.data``, ``response.data``) are never looked at,
so a value -- HMAC'd or, on a ``log_raw`` device, in clear -- cannot reach the report.

Everything here is pure (no I/O): ``build_report`` takes ``(name, lines)`` pairs.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import re
from collections import deque

from ansible_collections.heracles.secrets.plugins.module_utils.durations import parse_duration

DENIED_MARKER = "permission denied"
# A standby that receives a write tries it, fails with this error, and forwards the request to the active
# node, which logs it again under a new request id: the standby's entry is not counted.
FORWARDED_MARKER = "cannot write to readonly storage"
HMAC_PREFIX = "hmac-sha256:"
UNAUTHENTICATED = "(unauthenticated)"
DEFAULT_MAX_ENTRIES = 100
MAX_ACCESSORS = 10
MAX_UNPARSEABLE_REFS = 20
TOKEN_MARKER = "<token>"

UTC = datetime.timezone.utc
_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$",
                   re.IGNORECASE)
# Path segments that look like a token (hvs./hvb./hvr. and the legacy s./b./r. forms): some older
# endpoints take the token in the path (auth/token/lookup/<token>), and paths are not HMAC'd.
_TOKEN_SEGMENT = re.compile(r"^(?:hv[sbr]|[sbr])\.[A-Za-z0-9_-]{16,}$")


class AuditWindowError(ValueError):
    """``since``/``until`` cannot be understood."""


def parse_time(text):
    """An RFC 3339 time as the audit log writes it (nanoseconds, ``Z``), a date, or a time with an offset,
    as an aware UTC datetime. A time without a zone is taken as UTC. Raises ``ValueError``."""
    if isinstance(text, datetime.datetime):
        return text if text.tzinfo else text.replace(tzinfo=UTC)
    match = _TIME.match(str(text).strip())
    if not match:
        raise ValueError("not a timestamp: %r" % (text,))
    year, month, day, hour, minute, second, frac, zone = match.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    value = datetime.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                              micro, tzinfo=UTC)
    if zone and zone.upper() != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        value -= sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return value


def format_time(value):
    """``2026-05-01T10:00:00.123456Z`` (UTC), or None."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_bound(value, now):
    """A window bound: empty -> None, a duration (``24h``, ``90m``, ``7d``) -> ``now`` minus it,
    else an ISO time or date."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        return now - datetime.timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        return parse_time(text)
    except ValueError:
        raise AuditWindowError("%r is neither a duration (24h, 90m, 7d) nor a time (2026-05-01T10:00:00Z, 2026-05-01)"
                               % (value,))


def redact_path(path):
    """The request path with token-looking segments replaced by ``<token>``."""
    if not path:
        return path
    return "/".join(TOKEN_MARKER if _TOKEN_SEGMENT.match(part) else part for part in str(path).split("/"))


def identity_of(display_name, entity_id):
    """``display_name`` plus ``entity_id`` when the token has an entity: ``kubernetes-web-web (3f2a...)``."""
    name = display_name or UNAUTHENTICATED
    return "%s (%s)" % (name, entity_id) if entity_id else name


def _text(value):
    return value if isinstance(value, str) else None


def _strings(value):
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def parse_line(text):
    """One audit log line -> a flat dict of the allowlisted fields; raises ``ValueError`` when the line is
    not an audit entry (not JSON, not an object, no ``time``/``type``, unknown ``type``)."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError("not JSON")
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    kind = data.get("type")
    if kind not in ("request", "response"):
        raise ValueError("type is %r, not request or response" % (kind,))
    if not data.get("time"):
        raise ValueError("no time")
    when = parse_time(data["time"])
    auth = data.get("auth") if isinstance(data.get("auth"), dict) else {}
    request = data.get("request") if isinstance(data.get("request"), dict) else {}
    error = data.get("error")
    error = error if isinstance(error, str) else ""
    policies = sorted(set(_strings(auth.get("policies")) + _strings(auth.get("token_policies"))))
    metadata = auth.get("metadata") if isinstance(auth.get("metadata"), dict) else {}
    accessor = _text(auth.get("accessor"))
    display_name = _text(auth.get("display_name"))
    entity_id = _text(auth.get("entity_id"))
    return dict(
        time=when,
        type=kind,
        id=_text(request.get("id")),
        display_name=display_name,
        entity_id=entity_id,
        identity=identity_of(display_name, entity_id),
        policies=policies,
        token_type=_text(auth.get("token_type")),
        metadata=dict((str(k), v) for k, v in metadata.items() if isinstance(v, (str, int, float, bool))),
        # Only an HMAC'd accessor is kept: a log_raw device would hand over the real one.
        accessor=accessor if accessor and accessor.startswith(HMAC_PREFIX) else None,
        path=redact_path(_text(request.get("path")) or ""),
        operation=_text(request.get("operation")) or "",
        mount_type=_text(request.get("mount_type")) or "",
        remote_address=_text(request.get("remote_address")),
        denied=DENIED_MARKER in error.lower(),
        forwarded=FORWARDED_MARKER in error.lower(),
        error=bool(error),
        root="root" in policies,
    )


def is_credential_issuance(entry):
    """A dynamic database credential that was handed out: a successful read of ``<mount>/creds/<role>`` on a
    database secrets engine."""
    parts = entry["path"].split("/")
    return (entry["mount_type"] == "database" and entry["operation"] == "read" and not entry["denied"]
            and not entry["error"] and len(parts) >= 3 and parts[-2] == "creds")


def _later(a, b):
    return b if a is None or (b is not None and b > a) else a


def _earlier(a, b):
    return b if a is None or (b is not None and b < a) else a


class AuditReport:
    """Accumulates parsed lines into counts; ``result()`` returns the report (JSON-ready)."""

    def __init__(self, since=None, until=None, max_entries=DEFAULT_MAX_ENTRIES):
        if since is not None and until is not None and since > until:
            raise AuditWindowError("since (%s) is after until (%s)" % (format_time(since), format_time(until)))
        self.since = since
        self.until = until
        self.max_entries = max_entries
        self.files = []
        self.lines = 0
        self.unparseable = 0
        self.unparseable_at = []
        self.outside_window = 0
        self.requests = 0
        self.denied_count = 0
        self.errors = 0
        self.first = None
        self.last = None
        self.operations = {}
        self.identities = {}
        self.paths = {}
        self.access = {}
        self.denied = deque(maxlen=max_entries)
        self.root_count = 0
        self.root_paths = {}
        self.root_identities = set()
        self.root_entries = deque(maxlen=max_entries)
        self.forwarded = 0
        self.credentials = {}  # identity -> {"issued": n, "roles": {creds path: n}}
        self.credentials_count = 0
        self._pending = {}  # request id -> its request line, until the response line arrives
        self._stats = None

    # -- input ---------------------------------------------------------------
    def add_source(self, name, lines):
        """Read every line of one file (any iterable of str/bytes)."""
        stats = self._stats = dict(path=name, lines=0, unparseable=0, requests=0, first=None, last=None)
        for number, raw in enumerate(lines, 1):
            if isinstance(raw, bytes):
                raw = raw.decode("utf-8", "replace")
            if not raw.strip():
                continue
            stats["lines"] += 1
            self.lines += 1
            try:
                entry = parse_line(raw)
            except ValueError:
                stats["unparseable"] += 1
                self.unparseable += 1
                if len(self.unparseable_at) < MAX_UNPARSEABLE_REFS:
                    self.unparseable_at.append("%s:%d" % (name, number))
                continue
            self.add_entry(entry)
        self.flush()  # both lines of a request are in the same file
        stats["first"], stats["last"] = format_time(stats["first"]), format_time(stats["last"])
        self.files.append(stats)
        self._stats = None

    def in_window(self, when):
        return (self.since is None or when >= self.since) and (self.until is None or when <= self.until)

    def add_entry(self, entry):
        """Take one parsed line. A request line waits for its response line (same ``request.id``) so the
        request is counted once, with what either line says (denied, error, forwarded)."""
        rid = entry["id"]
        if rid and entry["type"] == "response" and rid in self._pending:
            self._settle(self._pending.pop(rid), entry)  # its request line was in the window
            return
        if not self.in_window(entry["time"]):
            self.outside_window += 1
            return
        if rid and entry["type"] == "request":
            if rid in self._pending:  # an id seen again without a response in between
                self._settle(self._pending.pop(rid), None)
            self._pending[rid] = entry
            return
        self._settle(entry, None)

    def flush(self):
        """Count the requests still waiting for a response line (none was logged, or it is past the window)."""
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            self._settle(entry, None)

    def _settle(self, request, response):
        if response is not None:
            if response["forwarded"]:
                self.forwarded += 1
                return
            request = dict(request, denied=request["denied"] or response["denied"],
                           error=request["error"] or response["error"])
        elif request["forwarded"]:
            self.forwarded += 1
            return
        self._count(request)

    def _count(self, entry):
        self.requests += 1
        self.first = _earlier(self.first, entry["time"])
        self.last = _later(self.last, entry["time"])
        if self._stats is not None:
            self._stats["requests"] += 1
            self._stats["first"] = _earlier(self._stats["first"], entry["time"])
            self._stats["last"] = _later(self._stats["last"], entry["time"])
        op = entry["operation"]
        self.operations[op] = self.operations.get(op, 0) + 1

        ident = self.identities.get(entry["identity"])
        if ident is None:
            ident = self.identities[entry["identity"]] = dict(
                identity=entry["identity"], display_name=entry["display_name"], entity_id=entry["entity_id"],
                policies=set(), token_types=set(), metadata={}, accessors=set(), requests=0, denied=0, errors=0,
                operations={}, first=None, last=None)
        ident["requests"] += 1
        ident["policies"].update(entry["policies"])
        if entry["token_type"]:
            ident["token_types"].add(entry["token_type"])
        for key, value in entry["metadata"].items():
            ident["metadata"].setdefault(key, value)
        if entry["accessor"] and len(ident["accessors"]) < MAX_ACCESSORS:
            ident["accessors"].add(entry["accessor"])
        ident["operations"][op] = ident["operations"].get(op, 0) + 1
        ident["first"] = _earlier(ident["first"], entry["time"])
        ident["last"] = _later(ident["last"], entry["time"])

        path = self.paths.get(entry["path"])
        if path is None:
            path = self.paths[entry["path"]] = dict(path=entry["path"], mount_type=entry["mount_type"], requests=0,
                                                    denied=0, operations={}, identities=set())
        path["requests"] += 1
        path["operations"][op] = path["operations"].get(op, 0) + 1
        path["identities"].add(entry["identity"])

        key = (entry["identity"], entry["path"])
        row = self.access.get(key)
        if row is None:
            row = self.access[key] = dict(identity=entry["identity"], path=entry["path"], requests=0, denied=0,
                                          operations={})
        row["requests"] += 1
        row["operations"][op] = row["operations"].get(op, 0) + 1

        if entry["root"]:
            self.root_count += 1
            self.root_identities.add(entry["identity"])
            self.root_paths[entry["path"]] = self.root_paths.get(entry["path"], 0) + 1
            self.root_entries.append(self._brief(entry))

        if is_credential_issuance(entry):
            self.credentials_count += 1
            issued = self.credentials.setdefault(entry["identity"], dict(identity=entry["identity"], issued=0, roles={}))
            issued["issued"] += 1
            issued["roles"][entry["path"]] = issued["roles"].get(entry["path"], 0) + 1

        if entry["denied"]:
            self.denied_count += 1
            ident["denied"] += 1
            path["denied"] += 1
            row["denied"] += 1
            self.denied.append(self._brief(entry))
        elif entry["error"]:
            self.errors += 1
            ident["errors"] += 1

    @staticmethod
    def _brief(entry):
        return dict(time=format_time(entry["time"]), identity=entry["identity"], path=entry["path"],
                    operation=entry["operation"], remote_address=entry["remote_address"], policies=entry["policies"])

    # -- output --------------------------------------------------------------
    def credentials_result(self):
        rows, more = self._top(list(self.credentials.values()), lambda r: (-r["issued"], r["identity"]))
        return dict(count=self.credentials_count, identities=[dict(r, roles=dict(sorted(r["roles"].items())))
                                                              for r in rows], identities_not_listed=more)

    def _top(self, rows, key):
        rows = sorted(rows, key=key)
        return rows[:self.max_entries], max(0, len(rows) - self.max_entries)

    def result(self):
        identities = []
        for ident in self.identities.values():
            out = dict(ident)
            out.update(policies=sorted(ident["policies"]), token_types=sorted(ident["token_types"]),
                       accessors=sorted(ident["accessors"]), first=format_time(ident["first"]),
                       last=format_time(ident["last"]))
            identities.append(out)
        paths = [dict(p, identities=len(p["identities"])) for p in self.paths.values()]
        identities, identities_more = self._top(identities, lambda r: (-r["requests"], r["identity"]))
        paths, paths_more = self._top(paths, lambda r: (-r["requests"], r["path"]))
        access, access_more = self._top(list(self.access.values()), lambda r: (-r["requests"], r["identity"], r["path"]))
        return dict(
            window=dict(since=format_time(self.since), until=format_time(self.until)),
            first=format_time(self.first),
            last=format_time(self.last),
            files=list(self.files),
            lines_read=self.lines,
            unparseable_lines=self.unparseable,
            unparseable_at=list(self.unparseable_at),
            outside_window_lines=self.outside_window,
            requests=self.requests,
            forwarded=self.forwarded,
            errors=self.errors,
            operations=dict(sorted(self.operations.items())),
            identities=identities,
            identities_not_listed=identities_more,
            paths=paths,
            paths_not_listed=paths_more,
            access=access,
            access_not_listed=access_more,
            denied=dict(count=self.denied_count, entries=list(self.denied),
                        entries_not_listed=max(0, self.denied_count - len(self.denied))),
            credentials=self.credentials_result(),
            root=dict(count=self.root_count, identities=sorted(self.root_identities),
                      paths=dict(sorted(self.root_paths.items())), entries=list(self.root_entries),
                      entries_not_listed=max(0, self.root_count - len(self.root_entries))),
        )


def build_report(sources, since=None, until=None, max_entries=DEFAULT_MAX_ENTRIES):
    """The report for ``sources``, an iterable of ``(name, lines)``."""
    report = AuditReport(since=since, until=until, max_entries=max_entries)
    for name, lines in sources:
        report.add_source(name, lines)
    return report.result()


def summary_lines(report, limit=5):
    """A short human summary of ``build_report``'s result."""
    window = report["window"]
    forwarded = ""
    if report["forwarded"]:
        forwarded = "; %d standby entries of writes forwarded to the active node not counted again" % report["forwarded"]
    out = [
        "window:      %s .. %s" % (window["since"] or "(start of logs)", window["until"] or "(end of logs)"),
        "read:        %d file(s), %d line(s), %d unparseable, %d outside the window"
        % (len(report["files"]), report["lines_read"], report["unparseable_lines"], report["outside_window_lines"]),
        "requests:    %d (first %s, last %s)%s" % (report["requests"], report["first"] or "-", report["last"] or "-", forwarded),
        "operations:  %s" % (", ".join("%s=%d" % kv for kv in report["operations"].items()) or "-"),
        "denied:      %d" % report["denied"]["count"],
    ]
    for entry in report["denied"]["entries"][-limit:]:
        out.append("  %s %s %s %s" % (entry["time"], entry["identity"], entry["operation"], entry["path"]))
    root = report["root"]
    by = (" by " + ", ".join(root["identities"])) if root["identities"] else ""
    out.append("root token:  %d request(s)%s" % (root["count"], by))
    top_root = sorted(root["paths"].items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    for path, count in top_root:
        out.append("  %5d %s" % (count, path))
    creds = report.get("credentials") or {"count": 0, "identities": []}
    out.append("credentials: %d database credential(s) issued" % creds["count"])
    for row in creds["identities"][:limit]:
        out.append("  %5d %s (%s)" % (row["issued"], row["identity"], ", ".join(sorted(row["roles"]))))
    out.append("identities:  %d" % (len(report["identities"]) + report["identities_not_listed"]))
    for ident in report["identities"][:limit]:
        out.append("  %5d %s (denied %d)" % (ident["requests"], ident["identity"], ident["denied"]))
    return out
