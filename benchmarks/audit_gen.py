# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Multiply recorded audit lines to a file of a target size, streamed to disk.

Each recorded request (its request and response lines, paired by ``request.id``) is a template: its raw text is
kept byte for byte (the format is whatever the recording OpenBao wrote) except for the fields varied per emitted
request, which are replaced where they stand as JSON strings:

- ``request.id``: fresh per emitted request, the same on its request and response line (pairing is kept);
- ``time``: spread over one day in emission order, the response a few ms after its request;
- identity: ``auth.display_name`` (suffixed), ``auth.entity_id``, the HMAC'd ``accessor`` and ``client_token``, and
  ``request.remote_address``, all derived from one identity number;
- ``request.path``: the last segment suffixed with a path number (``sys/`` and ``auth/token/`` paths kept).

Identity and path numbers are drawn log-uniformly (a few heavy users, a long tail) from pools of up to
``IDENTITIES`` and ``PATHS`` numbers (fewer for small files): about 5000 distinct identities and 5000 paths at
full size, and identity/path pairs and request ids that keep growing with the file -- what a report with bounded
tables must survive. (jq 1.6 copies an object it updates inside ``reduce``, so its cost per line grows with the
number of keys: pools that grew with the file would measure that rather than reading.) Deterministic per seed.

    .venv/bin/python benchmarks/audit_gen.py OUT.log SIZE_MB [SAMPLE.jsonl]
"""

from __future__ import absolute_import, division, print_function

import hashlib
import json
import os
import random
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "data", "audit-sample.jsonl")
DAY_START = "2026-05-01"
DAY_NS = 86400 * 10 ** 9
IDENTITIES = 1000  # per recorded identity (alice, bob, root, ...): display names get a -<n> suffix
PATHS = 500  # per recorded path
BYTES_PER_NUMBER = 20000  # a small file draws from smaller pools (one number per 20 KB, about 7 requests)
_FIELD = re.compile("\x00([A-Z])\x00")
# field letter -> (JSON key whose string value it replaces, or None for every occurrence of the value)
_KEYS = dict(N="display_name", E="entity_id", R="remote_address", P="path")


def _quoted(value):
    return json.dumps(value)


def _mark(text, key, value, letter):
    """Replace ``"key":"value"`` (or every ``"value"`` when key is None) by a field marker."""
    if not isinstance(value, str) or not value:
        return text
    if key is None:
        return text.replace(_quoted(value), '"\x00%s\x00"' % letter)
    return text.replace('"%s":%s' % (key, _quoted(value)), '"%s":"\x00%s\x00"' % (key, letter))


def _template_line(raw):
    """(literal, field letter) parts of one recorded line, and whether the path is varied."""
    data = json.loads(raw)
    auth, request = data.get("auth") or {}, data.get("request") or {}
    head, sep, rest = raw.partition('"time":%s' % _quoted(data["time"]))
    text = head + '"time":"\x00T\x00"' + rest if sep else raw
    text = _mark(text, None, request.get("id"), "I")
    text = _mark(text, None, auth.get("accessor"), "A")
    text = _mark(text, None, auth.get("client_token"), "C")
    for letter, key in _KEYS.items():
        value = request.get(key) if letter in "RP" else auth.get(key)
        text = _mark(text, key, value, letter)
    path = request.get("path") or ""
    vary_path = not path.startswith(("sys/", "auth/token/"))
    pieces = _FIELD.split(text)
    return [(pieces[i], pieces[i + 1] if i + 1 < len(pieces) else None) for i in range(0, len(pieces), 2)], vary_path


def templates(lines):
    """Recorded lines -> one template per request (its lines, in recorded order): per line its parts, whether the
    path is varied, and its recorded display name and path."""
    return [[_template_line(raw) + (_originals(raw),) for raw in group] for group in _groups(lines)]


def _draw(rng, pool):
    """A number in [0, pool): log-uniform, so low numbers are frequent and the tail is long."""
    return min(pool - 1, int(pool ** rng.random()) - 1)


def _hmac(kind, number):
    return "hmac-sha256:" + hashlib.sha256(b"%s-%d" % (kind, number)).hexdigest()


def _time(ns):
    seconds, frac = divmod(ns, 10 ** 9)
    minutes, sec = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return "%sT%02d:%02d:%02d.%09dZ" % (DAY_START, hours % 24, minute, sec, frac)


def _fields(rng, identities, paths):
    ident = _draw(rng, identities)
    rid = "%032x" % rng.getrandbits(128)
    return dict(I="%s-%s-%s-%s-%s" % (rid[:8], rid[8:12], rid[12:16], rid[16:20], rid[20:]),
                E="%08x-1111-4000-8000-%012x" % (ident, ident), A=_hmac(b"accessor", ident),
                C=_hmac(b"token", ident), R="10.%d.%d.%d" % (ident >> 16 & 255, ident >> 8 & 255, ident & 255),
                suffix="-%d" % ident, path=_draw(rng, paths))


def _render(parts, fields, values):
    out = []
    for literal, letter in parts:
        out.append(literal)
        if letter is not None:
            out.append(values[letter] if letter in values else fields[letter])
    return "".join(out)


def _values(recorded, fields, vary_path):
    """The per-line values that depend on the recorded text: display name and path with their suffixes."""
    values = {}
    name, path = recorded
    if name:
        values["N"] = name + fields["suffix"]
    if path:
        values["P"] = path + ("-%d" % fields["path"] if vary_path else "")
    return values


def generate(out_path, size_bytes, lines, seed=1):
    """Write about ``size_bytes`` of audit lines to ``out_path``; returns (bytes, requests, lines)."""
    tmpl = templates(lines)
    rng = random.Random(seed)
    identities = max(10, min(IDENTITIES, size_bytes // BYTES_PER_NUMBER))
    paths = max(10, min(PATHS, size_bytes // BYTES_PER_NUMBER))
    average = sum(len(raw) + 1 for raw in lines) / float(len(tmpl))
    step = max(1, int(DAY_NS / max(1.0, size_bytes / average)))
    written = count = nlines = 0
    with open(out_path, "w", buffering=1 << 20) as handle:
        while written < size_bytes:
            index = count % len(tmpl)
            fields = _fields(rng, identities, paths)
            at = count * step
            for offset, (parts, vary_path, recorded) in enumerate(tmpl[index]):
                fields["T"] = _time(at + offset * 1500000 + rng.randrange(1000000))
                text = _render(parts, fields, _values(recorded, fields, vary_path)) + "\n"
                handle.write(text)
                written += len(text)
                nlines += 1
            count += 1
    return written, count, nlines


def _groups(lines):
    """Lines grouped by request id (request and response line together), in recorded order."""
    by_id, order = {}, []
    for raw in lines:
        rid = (json.loads(raw).get("request") or {}).get("id") or "line-%d" % len(order)
        if rid not in by_id:
            by_id[rid] = []
            order.append(rid)
        by_id[rid].append(raw)
    return [by_id[rid] for rid in order]


def _originals(raw):
    data = json.loads(raw)
    return ((data.get("auth") or {}).get("display_name"), (data.get("request") or {}).get("path"))


def main(argv):
    sample = argv[3] if len(argv) > 3 else SAMPLE
    with open(sample) as handle:
        lines = [line for line in handle.read().splitlines() if line.strip()]
    written, requests, nlines = generate(argv[1], int(float(argv[2]) * 1e6), lines)
    print("%s: %.1f MB, %d requests, %d lines" % (argv[1], written / 1e6, requests, nlines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
