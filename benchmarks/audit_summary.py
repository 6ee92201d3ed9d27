# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure pieces of the audit benchmark (``audit_bench.py``): rows per size, ratios, targets and the Markdown.

Input is ``results["audit"]`` as bench.py writes it::

    {"samples": [{"tool": "module"|"jq", "size_mb", "lines", "requests", "seconds", "cpu_seconds", "rss_mb",
                  "counts": {"requests", "forwarded", "denied", "operations"}, "bounds"}, ...],
     "notes": [...], "jq": "jq-1.6"}

Nothing here talks to a server or runs a process, so tests feed it fake numbers.
"""

from __future__ import absolute_import, division, print_function

TARGET_VS_JQ = 1.0  # module throughput / jq throughput, at the largest size
TARGET_RSS_GROWTH = 1.25  # module peak RSS at the largest size / at the smallest: "flat"


def summarize(audit):
    """Rows per size (module and jq side by side) and the two targets."""
    by_size = {}
    for sample in audit.get("samples") or []:
        by_size.setdefault(sample["size_mb"], {})[sample["tool"]] = sample
    rows = []
    for size in sorted(by_size):
        module, jq = by_size[size].get("module"), by_size[size].get("jq")
        row = dict(size_mb=size, module=_figures(module), jq=_figures(jq))
        row["ratio"] = _ratio(row["module"], row["jq"], "mb_per_s")
        row["cpu_ratio"] = _ratio(row["module"], row["jq"], "mb_per_cpu_s")
        row["agree"] = None if not (module and jq) else module["counts"] == jq["counts"]
        rows.append(row)
    return dict(rows=rows, targets=_targets(rows))


def _figures(sample):
    if not sample:
        return None
    return dict(seconds=sample["seconds"], rss_mb=sample["rss_mb"], mb_per_s=sample["size_mb"] / sample["seconds"],
                mb_per_cpu_s=sample["size_mb"] / sample["cpu_seconds"] if sample.get("cpu_seconds") else None,
                evicted=sum(((sample.get("bounds") or {}).get("evicted") or {}).values()))


def _ratio(module, jq, key):
    if not module or not jq or not module.get(key) or not jq.get(key):
        return None
    return module[key] / jq[key]


def _targets(rows):
    measured = [r for r in rows if r["module"]]
    largest = measured[-1] if measured else None
    ratio = largest["ratio"] if largest else None
    growth = None
    if len(measured) > 1 and measured[0]["module"]["rss_mb"]:
        growth = largest["module"]["rss_mb"] / measured[0]["module"]["rss_mb"]
    memory = "not measured"
    if growth is not None:
        memory = "%.2fx (%.0f MB at %.0f MB, %.0f MB at %.0f MB)" % (
            growth, measured[0]["module"]["rss_mb"], measured[0]["size_mb"], largest["module"]["rss_mb"],
            largest["size_mb"])
        if growth > TARGET_RSS_GROWTH and not measured[0]["module"]["evicted"]:
            memory += ("; at %.0f MB no table was full yet (no row evicted): memory grows until the tables hold "
                       "their capacity, then stays flat" % measured[0]["size_mb"])
    return [
        dict(id="audit-vs-jq", target="audit report throughput >= %.0fx jq (largest size)" % TARGET_VS_JQ, value=ratio,
             met=None if ratio is None else ratio >= TARGET_VS_JQ,
             text="not measured" if ratio is None else "%.1fx at %.0f MB" % (ratio, largest["size_mb"])),
        dict(id="audit-memory", target="audit report peak RSS flat in the file size (<= %.2fx smallest)"
             % TARGET_RSS_GROWTH, value=growth, met=None if growth is None else growth <= TARGET_RSS_GROWTH,
             text=memory),
    ]


def _cell(value, fmt):
    return "-" if value is None else fmt % value


def markdown(audit, chart=None):
    """The audit section of latest.md."""
    summary = summarize(audit)
    if not summary["rows"]:
        return ""
    out = ["", "## Audit report by the gigabyte (`vault_audit_report` vs jq)", "",
           "Generated audit logs from lines OpenBao %s wrote (%s; jq: %s). MB/s over wall time (CPU time in brackets); peak RSS of the "
           "process. jq runs `benchmarks/audit_bench.py` JQ_PROGRAM, the same counts as the module (requests, "
           "forwarded, denied, per operation, identity and path)." % (audit.get("openbao") or "?",
                                                                      "; ".join(audit.get("notes") or []) or "-",
                                                                      audit.get("jq") or "missing"), "",
           "| size MB | module MB/s | jq MB/s | ratio | module RSS MB | jq RSS MB | rows evicted | same totals |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in summary["rows"]:
        module, jq = row["module"] or {}, row["jq"] or {}
        out.append("| %.0f | %s | %s | %s | %s | %s | %s | %s |" % (
            row["size_mb"], _speed(module), _speed(jq), _cell(row["ratio"], "%.1fx"), _cell(module.get("rss_mb"), "%.0f"),
            _cell(jq.get("rss_mb"), "%.0f"), _cell(module.get("evicted"), "%d"),
            {True: "yes", False: "**no**", None: "-"}[row["agree"]]))
    out += ["", "| target | measured | met |", "| --- | --- | --- |"]
    for target in summary["targets"]:
        out.append("| %s | %s | %s |" % (target["target"], target["text"],
                                         {True: "yes", False: "**missed**", None: "not measured"}[target["met"]]))
    if chart:
        out += ["", "![audit report throughput and peak RSS by file size](%s)" % chart]
    return "\n".join(out) + "\n"


def _speed(figures):
    if not figures:
        return "-"
    return "%.1f (%s)" % (figures["mb_per_s"], _cell(figures.get("mb_per_cpu_s"), "%.1f"))
