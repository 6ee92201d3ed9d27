# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Draw the audit report's throughput and peak RSS against the log size, module vs jq, from ``latest.json``
(run with the benchmark venv, which has matplotlib).

    .venv-bench/bin/python benchmarks/chart_audit.py benchmarks/results/latest.json benchmarks/results/audit_report.png
"""

from __future__ import absolute_import, division, print_function

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import audit_summary  # noqa: E402

STYLE = {
    "module": dict(color="#1f5fa8", marker="o", linestyle="-", label="vault_audit_report (one python process)"),
    "jq": dict(color="#c0392b", marker="s", linestyle="--", label="jq -n 'reduce inputs ...' (same counts)"),
}
CPU_STYLE = dict(linestyle=":", alpha=0.5)  # the same over CPU time: less noisy on a shared machine


def _points(rows, tool, key):
    return [(r["size_mb"], r[tool][key]) for r in rows if r[tool] and r[tool].get(key) is not None]


def _plot(axis, rows, key, ylabel, cpu_key=None):
    for tool, style in STYLE.items():
        points = _points(rows, tool, key)
        if not points:
            continue
        axis.plot([p[0] for p in points], [p[1] for p in points], **style)
        cpu = _points(rows, tool, cpu_key) if cpu_key else []
        if cpu:
            axis.plot([p[0] for p in cpu], [p[1] for p in cpu], color=style["color"], marker=style["marker"],
                      label="%s, over CPU time" % tool, **CPU_STYLE)
        for size, value in points:
            axis.annotate("%.0f" % value if value >= 10 else "%.1f" % value, (size, value), textcoords="offset points",
                          xytext=(4, 4), fontsize=7, color=style["color"])
    axis.set_xlabel("audit log size (MB)")
    axis.set_ylabel(ylabel)
    axis.set_ylim(bottom=0)
    axis.grid(True, alpha=0.3)


def draw(results, path):
    audit = results.get("audit") or {}
    rows = audit_summary.summarize(audit)["rows"]
    meta = results.get("meta", {})
    fig, (speed, memory) = plt.subplots(1, 2, figsize=(11, 4.6), dpi=110)
    _plot(speed, rows, "mb_per_s", "MB/s (wall; dotted: over CPU time)", cpu_key="mb_per_cpu_s")
    speed.set_title("throughput", fontsize=9)
    _plot(memory, rows, "rss_mb", "peak RSS (MB)")
    memory.set_title("peak memory", fontsize=9)
    speed.legend(fontsize=8)
    fig.suptitle("Audit report over audit logs generated from OpenBao %s lines: vault_audit_report vs %s (%s, %s cores)"
                 % (audit.get("openbao") or meta.get("openbao", "?"), audit.get("jq") or "jq", "quick run" if meta.get("quick") else "full run",
                    meta.get("cpus", "?")), fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv):
    source, target = argv[1:3]
    with open(source) as handle:
        draw(json.load(handle), target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
