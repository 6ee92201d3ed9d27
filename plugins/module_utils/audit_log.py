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

Speed and memory (``make bench`` measures both against jq up to 1 GB): ``json.loads`` of each line is the floor
(the line is still checked to be JSON, bodies included, though a body is never read: cutting the response body off
before decoding would save about 6% and that check); around it, the time OpenBao writes is sliced rather than
parsed, a response line whose request line waits is read for its error only, redacted paths are remembered. Memory
is bounded by ``TABLE_CAPACITY`` and ``MAX_PENDING`` (see ``AuditReport``), not by the size of the logs.

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
MAX_METADATA_KEYS = 32
MAX_UNPARSEABLE_REFS = 20
# Rows per table (identities, paths, identity/path pairs, ...) kept in memory, and request lines waiting for their
# response line: what bounds the memory of a report over a log of any size (see AuditReport).
TABLE_CAPACITY = 10000
MAX_PENDING = 4096
EARLY_IDS = 4  # ids of requests counted before their response line remembered: MAX_PENDING times this
MAX_CACHED = 4096  # validated minutes and redacted paths remembered
TOKEN_MARKER = "<token>"

UTC = datetime.timezone.utc
_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$",
                   re.IGNORECASE)
# Path segments that look like a token (hvs./hvb./hvr. and the legacy s./b./r. forms): some older
# endpoints take the token in the path (auth/token/lookup/<token>), and paths are not HMAC'd.
_TOKEN_SEGMENT = re.compile(r"^(?:hv[sbr]|[sbr])\.[A-Za-z0-9_-]{16,}$")
_MINUTE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}$")
_MINUTES = {}
_PATHS = {}


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


def _valid_minute(prefix):
    """``2026-05-01T10:00`` is a real date and minute (remembered: a day of logs has 1440 of them)."""
    known = _MINUTES.get(prefix)
    if known is None:
        known = bool(_MINUTE.match(prefix))
        if known:
            try:
                datetime.datetime(int(prefix[:4]), int(prefix[5:7]), int(prefix[8:10]), int(prefix[11:13]),
                                  int(prefix[14:16]))
            except ValueError:
                known = False
        if len(_MINUTES) >= MAX_CACHED:
            _MINUTES.clear()
        _MINUTES[prefix] = known
    return known


def time_key(text):
    """An audit line's ``time`` as ``format_time`` writes it (UTC, microseconds, ``Z``): a string that sorts as the
    time does. The form OpenBao writes (``2026-05-01T10:00:00.123456789Z``) is sliced rather than parsed; any
    other form goes through ``parse_time``. Raises ``ValueError``."""
    if (len(text) >= 20 and text[-1] == "Z" and text[10] == "T" and text[19] in ".Z" and _valid_minute(text[:16])
            and text[16] == ":" and text[17:19].isdigit() and text[17:19].isascii() and text[17:19] < "60"):
        frac = text[20:-1]
        if text[19] == "Z" and not frac:
            return text[:19] + ".000000Z"
        if frac.isdigit() and frac.isascii():
            return text[:20] + (frac[:6] if len(frac) >= 6 else frac.ljust(6, "0")) + "Z"
    return format_time(parse_time(text))


def _redacted(path):
    """``redact_path``, remembered per path (a log repeats its paths)."""
    known = _PATHS.get(path)
    if known is None:
        if len(_PATHS) >= MAX_CACHED:
            _PATHS.clear()
        known = _PATHS[path] = redact_path(path)
    return known


def _json_object(text):
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError("not JSON")
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def _head(data):
    """(type, time_key, request id) of a decoded line; raises ``ValueError`` when it is not an audit entry."""
    kind = data.get("type")
    if kind not in ("request", "response"):
        raise ValueError("type is %r, not request or response" % (kind,))
    when = data.get("time")
    if not when:
        raise ValueError("no time")
    request = data.get("request")
    rid = request.get("id") if isinstance(request, dict) else None
    return kind, time_key(when if isinstance(when, str) else str(when)), rid if isinstance(rid, str) else None


def _error(data):
    error = data.get("error")
    return error.lower() if isinstance(error, str) else ""


def _entry(data, kind, when, rid):
    """The allowlisted fields of a decoded line whose ``_head`` is (kind, when, rid)."""
    auth = data.get("auth")
    auth = auth if isinstance(auth, dict) else {}
    request = data.get("request")
    request = request if isinstance(request, dict) else {}
    error = _error(data)
    policies = sorted(set(_strings(auth.get("policies")) + _strings(auth.get("token_policies"))))
    metadata = auth.get("metadata")
    accessor = _text(auth.get("accessor"))
    display_name = _text(auth.get("display_name"))
    entity_id = _text(auth.get("entity_id"))
    return dict(
        time=when,
        type=kind,
        id=rid,
        display_name=display_name,
        entity_id=entity_id,
        identity=identity_of(display_name, entity_id),
        policies=policies,
        token_type=_text(auth.get("token_type")),
        metadata=dict((str(k), v) for k, v in metadata.items() if isinstance(v, (str, int, float, bool)))
        if isinstance(metadata, dict) and metadata else {},
        # Only an HMAC'd accessor is kept: a log_raw device would hand over the real one.
        accessor=accessor if accessor and accessor.startswith(HMAC_PREFIX) else None,
        path=_redacted(_text(request.get("path")) or ""),
        operation=_text(request.get("operation")) or "",
        mount_type=_text(request.get("mount_type")) or "",
        remote_address=_text(request.get("remote_address")),
        denied=DENIED_MARKER in error,
        forwarded=FORWARDED_MARKER in error,
        error=bool(error),
        root="root" in policies,
    )


def read_entry(text):
    """One audit line -> a flat dict of the allowlisted fields, ``time`` as ``time_key``; raises ``ValueError`` when
    the line is not an audit entry (not JSON, not an object, no ``time``/``type``, unknown ``type``)."""
    data = _json_object(text)
    return _entry(data, *_head(data))


def parse_line(text):
    """``read_entry`` with ``time`` as an aware UTC datetime."""
    entry = read_entry(text)
    entry["time"] = parse_time(entry["time"])
    return entry


def is_credential_issuance(entry):
    """A dynamic database credential that was handed out: a successful read of ``<mount>/creds/<role>`` on a
    database secrets engine."""
    if entry["mount_type"] != "database" or entry["operation"] != "read" or entry["denied"] or entry["error"]:
        return False
    parts = entry["path"].split("/")
    return len(parts) >= 3 and parts[-2] == "creds"


def _later(a, b):
    return b if a is None or (b is not None and b > a) else a


def _earlier(a, b):
    return b if a is None or (b is not None and b < a) else a


def _bump(counts, key):
    counts[key] = counts.get(key, 0) + 1


class AuditReport:
    """Accumulates parsed lines into counts; ``result()`` returns the report (JSON-ready).

    Memory does not grow with the log: every per-key table (identities, paths, identity/path pairs, root paths,
    credential holders) holds at most ``capacity`` rows -- when one is full, its busiest half is kept and the rest
    is dropped and counted in ``evicted`` (a key seen again starts from zero, so beyond the capacity the counts
    of the tail are lower bounds and ``*_not_listed`` an upper bound); request lines waiting for their response
    line are at most ``MAX_PENDING`` (the oldest is then counted without its response, whose id is remembered so
    that it is not counted again). Every count is exact while no table is full and no request waits that long.
    A table is a dict of rows whose heaviest half survives a prune: a heavy hitter stays listed."""

    def __init__(self, since=None, until=None, max_entries=DEFAULT_MAX_ENTRIES, capacity=TABLE_CAPACITY):
        if since is not None and until is not None and since > until:
            raise AuditWindowError("since (%s) is after until (%s)" % (format_time(since), format_time(until)))
        self.since = since
        self.until = until
        self._since, self._until = format_time(since), format_time(until)
        self.max_entries = max_entries
        self.capacity = max(capacity, 2 * max_entries)
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
        self.evicted = dict(identities=0, paths=0, access=0, root_paths=0, credentials=0, pending=0)
        self._pending = {}  # request id -> its request line, until the response line arrives
        self._early = set()  # ids of requests counted before their response line (MAX_PENDING): not twice
        self._early_order = deque()
        self._stats = None

    # -- input ---------------------------------------------------------------
    def add_source(self, name, lines):
        """Read every line of one file (any iterable of str/bytes)."""
        stats = self._stats = dict(path=name, lines=0, unparseable=0, requests=0, first=None, last=None)
        for number, raw in enumerate(lines, 1):
            if isinstance(raw, bytes):
                raw = raw.decode("utf-8", "replace")
            if not raw or raw.isspace():
                continue
            stats["lines"] += 1
            try:
                data = _json_object(raw)
                kind, when, rid = _head(data)
            except ValueError:
                stats["unparseable"] += 1
                if len(self.unparseable_at) < MAX_UNPARSEABLE_REFS:
                    self.unparseable_at.append("%s:%d" % (name, number))
                continue
            if kind == "response" and rid in self._pending:  # the usual case: only its error is needed
                error = _error(data)
                self._settle_response(self._pending.pop(rid), bool(error), DENIED_MARKER in error,
                                      FORWARDED_MARKER in error)
            else:
                self.add_entry(_entry(data, kind, when, rid))
        self.flush()  # both lines of a request are in the same file
        self.lines += stats["lines"]
        self.unparseable += stats["unparseable"]
        self.files.append(stats)
        self._stats = None

    def in_window(self, when):
        """``when``: a ``time_key`` string or a datetime."""
        if not isinstance(when, str):
            when = format_time(when)
        return (self._since is None or when >= self._since) and (self._until is None or when <= self._until)

    def add_entry(self, entry):
        """Take one line (``read_entry``). A request line waits for its response line (same ``request.id``) so the
        request is counted once, with what either line says (denied, error, forwarded)."""
        rid = entry["id"]
        if rid and entry["type"] == "response":
            if rid in self._pending:
                self._settle(self._pending.pop(rid), entry)  # its request line was in the window
                return
            if self._early and rid in self._early:
                self._early.discard(rid)  # counted when it left the pending table
                return
        if not self.in_window(entry["time"]):
            self.outside_window += 1
            return
        if rid and entry["type"] == "request":
            if rid in self._pending:  # an id seen again without a response in between
                self._settle(self._pending.pop(rid), None)
            self._pending[rid] = entry
            if len(self._pending) > MAX_PENDING:
                self._settle_oldest()
            return
        self._settle(entry, None)

    def _settle_oldest(self):
        rid = next(iter(self._pending))
        self._settle(self._pending.pop(rid), None)
        self.evicted["pending"] += 1
        self._early.add(rid)
        self._early_order.append(rid)
        if len(self._early_order) > EARLY_IDS * MAX_PENDING:
            self._early.discard(self._early_order.popleft())

    def flush(self):
        """Count the requests still waiting for a response line (none was logged, or it is past the window)."""
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            self._settle(entry, None)
        self._early.clear()
        self._early_order.clear()

    def _settle(self, request, response):
        if response is None:
            if request["forwarded"]:
                self.forwarded += 1
            else:
                self._count(request)
            return
        self._settle_response(request, response["error"], response["denied"], response["forwarded"])

    def _settle_response(self, request, failed, denied, forwarded):
        """Count ``request`` with what its response line adds (error, denied, forwarded)."""
        if forwarded:
            self.forwarded += 1
            return
        if failed and not request["error"] or denied and not request["denied"]:
            request = dict(request, denied=request["denied"] or denied, error=True)
        self._count(request)

    def _row(self, name, table, key, new):
        """The row of ``key``, created by ``new()`` when missing; a full table first drops its quieter half."""
        row = table.get(key)
        if row is None:
            if len(table) >= self.capacity:
                self._prune(name, table)
            row = table[key] = new()
        return row

    def _prune(self, name, table):
        rows = sorted(table, key=lambda k: -_weight(table[k]))  # stable: the older of equal rows first
        for key in rows[self.capacity // 2:]:
            del table[key]
        self.evicted[name] += len(rows) - self.capacity // 2

    def _count(self, entry):
        self.requests += 1
        when, op, identity, path = entry["time"], entry["operation"], entry["identity"], entry["path"]
        self.first = _earlier(self.first, when)
        self.last = _later(self.last, when)
        stats = self._stats
        if stats is not None:
            stats["requests"] += 1
            stats["first"] = _earlier(stats["first"], when)
            stats["last"] = _later(stats["last"], when)
        _bump(self.operations, op)
        ident = self._count_identity(entry)
        prow = self._row("paths", self.paths, path, lambda: dict(path=path, mount_type=entry["mount_type"], requests=0,
                                                                 denied=0, operations={}))
        prow["requests"] += 1
        _bump(prow["operations"], op)
        row = self._row("access", self.access, (identity, path),
                        lambda: dict(identity=identity, path=path, requests=0, denied=0, operations={}))
        row["requests"] += 1
        _bump(row["operations"], op)
        if entry["root"]:
            self._count_root(entry)
        if is_credential_issuance(entry):
            self._count_credential(entry)
        if entry["denied"]:
            self.denied_count += 1
            ident["denied"] += 1
            prow["denied"] += 1
            row["denied"] += 1
            self.denied.append(self._brief(entry))
        elif entry["error"]:
            self.errors += 1
            ident["errors"] += 1

    def _count_identity(self, entry):
        ident = self._row("identities", self.identities, entry["identity"], lambda: dict(
            identity=entry["identity"], display_name=entry["display_name"], entity_id=entry["entity_id"],
            policies=set(), token_types=set(), metadata={}, accessors=set(), requests=0, denied=0, errors=0,
            operations={}, first=None, last=None))
        ident["requests"] += 1
        ident["policies"].update(entry["policies"])
        if entry["token_type"]:
            ident["token_types"].add(entry["token_type"])
        metadata = ident["metadata"]
        for key, value in entry["metadata"].items():
            if key in metadata or len(metadata) < MAX_METADATA_KEYS:
                metadata.setdefault(key, value)
        if entry["accessor"] and len(ident["accessors"]) < MAX_ACCESSORS:
            ident["accessors"].add(entry["accessor"])
        _bump(ident["operations"], entry["operation"])
        ident["first"] = _earlier(ident["first"], entry["time"])
        ident["last"] = _later(ident["last"], entry["time"])
        return ident

    def _count_root(self, entry):
        self.root_count += 1
        if len(self.root_identities) < self.capacity:
            self.root_identities.add(entry["identity"])
        path = entry["path"]
        if path not in self.root_paths and len(self.root_paths) >= self.capacity:
            self._prune("root_paths", self.root_paths)
        _bump(self.root_paths, path)
        self.root_entries.append(self._brief(entry))

    def _count_credential(self, entry):
        self.credentials_count += 1
        issued = self._row("credentials", self.credentials, entry["identity"],
                           lambda: dict(identity=entry["identity"], issued=0, roles={}))
        issued["issued"] += 1
        if entry["path"] in issued["roles"] or len(issued["roles"]) < self.capacity:
            _bump(issued["roles"], entry["path"])

    @staticmethod
    def _brief(entry):
        return dict(time=entry["time"], identity=entry["identity"], path=entry["path"],
                    operation=entry["operation"], remote_address=entry["remote_address"], policies=entry["policies"])

    # -- output --------------------------------------------------------------
    def credentials_result(self):
        rows, more = self._top("credentials", list(self.credentials.values()), lambda r: (-r["issued"], r["identity"]))
        return dict(count=self.credentials_count, identities=[dict(r, roles=dict(sorted(r["roles"].items())))
                                                              for r in rows], identities_not_listed=more)

    def _top(self, name, rows, key):
        rows = sorted(rows, key=key)
        return rows[:self.max_entries], max(0, len(rows) - self.max_entries) + self.evicted[name]

    def _path_rows(self):
        """Paths with the number of identities that used each (from the identity/path pairs)."""
        users = {}
        for identity_path in self.access:
            _bump(users, identity_path[1])
        return [dict(p, identities=users.get(p["path"], 0)) for p in self.paths.values()]

    def result(self):
        identities = []
        for ident in self.identities.values():
            out = dict(ident)
            out.update(policies=sorted(ident["policies"]), token_types=sorted(ident["token_types"]),
                       accessors=sorted(ident["accessors"]))
            identities.append(out)
        identities, identities_more = self._top("identities", identities, lambda r: (-r["requests"], r["identity"]))
        paths, paths_more = self._top("paths", self._path_rows(), lambda r: (-r["requests"], r["path"]))
        access, access_more = self._top("access", list(self.access.values()),
                                        lambda r: (-r["requests"], r["identity"], r["path"]))
        return dict(
            window=dict(since=self._since, until=self._until),
            first=self.first,
            last=self.last,
            files=[dict(f) for f in self.files],
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
            bounds=dict(capacity=self.capacity, max_pending=MAX_PENDING, evicted=dict(self.evicted)),
        )


def _weight(row):
    """How busy a table row is: its request count (or the count itself in a table of counts)."""
    if isinstance(row, int):
        return row
    return row.get("requests", row.get("issued", 0))


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
