# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Draw snapshot-save throughput against snapshot size from ``latest.json`` (run with the benchmark venv).

    .venv-bench/bin/python benchmarks/chart_snapshot.py benchmarks/results/latest.json \\
        benchmarks/results/snapshot_throughput.png

GET and ``vault_raft_snapshot``, each end to end (solid) and streamed part (dashed); the target is drawn at 0.8x
of the GET's end-to-end throughput.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402

COLORS = dict(get="#7f8c8d", module="#1f5fa8")
LINES = (("mb_per_s", "end to end", "-", "o"), ("streamed_mb_per_s", "streamed part", "--", "^"))


def series(rows, method, key):
    """``[(snapshot MB, MB/s)]`` of one method, by size."""
    return sorted((r["bytes"] / 1e6, r[key]) for r in rows if r["method"] == method and r["bytes"] and r[key])


def draw(results, path):
    rows = report.summarize_snapshot(results.get("snapshot", []))
    meta = results.get("meta", {})
    fig, axis = plt.subplots(figsize=(8, 5), dpi=110)
    for method in ("get", "module"):
        for key, what, style, marker in LINES:
            points = series(rows, method, key)
            if not points:
                continue
            label = "%s, %s" % ("plain GET" if method == "get" else "vault_raft_snapshot", what)
            axis.plot([p[0] for p in points], [p[1] for p in points], linestyle=style, marker=marker,
                      color=COLORS[method], label=label)
            for size, value in points:
                axis.annotate("%.0f" % value, (size, value), textcoords="offset points", xytext=(4, 4), fontsize=7,
                              color=COLORS[method])
    target = series(rows, "get", "mb_per_s")
    if target:
        axis.plot([p[0] for p in target], [p[1] * report.TARGET_SNAPSHOT_THROUGHPUT for p in target], linestyle=":",
                  color="#c0392b", label="target: %gx GET end to end" % report.TARGET_SNAPSHOT_THROUGHPUT)
    axis.axvline(report.TARGET_SNAPSHOT_MB, color="#c0392b", alpha=0.3, linewidth=1)
    axis.set_xlabel("snapshot size (MB)")
    axis.set_ylabel("MB/s (median)")
    axis.set_ylim(bottom=0)
    load = report.median([r.get("load1") for r in rows])
    axis.set_title("Raft snapshot save: throughput by size, plain GET vs vault_raft_snapshot\n"
                   "(%s, %s cores, OpenBao %s 3-node TLS Raft on loopback; load average %s)"
                   % ("quick run" if meta.get("quick") else "full run", meta.get("cpus", "?"), meta.get("openbao", "?"),
                      "%.1f" % load if load is not None else "?"), fontsize=9)
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    with open(sys.argv[1]) as source:
        draw(json.load(source), sys.argv[2])
