# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Go-style durations (``1m30s``), as Vault takes and returns them, compared by value."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h|d)")


def parse_duration(value):
    """Go duration (``1m30s``, ``768h``), Vault's ``d`` suffix, or a number of seconds -> float seconds."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if re.match(r"^\d+(\.\d+)?$", text):
        return float(text)
    parts = _PART.findall(text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise ValueError("not a duration: %r (use e.g. 10s, 1m, 24h)" % (value,))
    return sum(float(n) * _UNITS[u] for n, u in parts)


def same_duration(a, b):
    return parse_duration(a) == parse_duration(b)
