# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Draw time per secret by method and N, and peak RSS by N, from ``latest.json`` (benchmark venv: matplotlib).

    .venv-bench/bin/python benchmarks/chart.py benchmarks/results/latest.json benchmarks/results/seed_per_secret.png \
        benchmarks/results/seed_rss.png
"""

from __future__ import absolute_import, division, print_function

import json
import os
import sys

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402

STYLE = {
    "ours-playbook": dict(color="#1f5fa8", marker="o", linestyle="-"),
    "ours-module": dict(color="#5dade2", marker="o", linestyle="--"),
    "community": dict(color="#c0392b", marker="s", linestyle="-"),
    "hvac-seq": dict(color="#7f8c8d", marker="^", linestyle=":"),
    "hvac-threads": dict(color="#27ae60", marker="^", linestyle="-"),
}


def draw(results, path):
    rows = report.summarize_samples(results.get("samples", []))
    meta = results.get("meta", {})
    fig, axis = plt.subplots(figsize=(8, 5), dpi=110)
    for method, label in report.METHODS:
        points = sorted((r["n"], r["per_secret_ms"]) for r in rows if r["method"] == method and r["phase"] == "first")
        if not points:
            continue
        axis.plot([p[0] for p in points], [p[1] for p in points], label=label.replace("`", ""), **STYLE[method])
        for n, value in points:
            axis.annotate("%.0f" % value if value >= 100 else "%.3g" % value, (n, value), textcoords="offset points",
                          xytext=(4, 4), fontsize=7, color=STYLE[method]["color"])
    sizes = sorted(set(r["n"] for r in rows))
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xticks(sizes)
    axis.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axis.set_xlabel("secrets seeded (N, 3 fields each)")
    axis.set_ylabel("ms per secret, first run (median)")
    axis.set_title("Seeding time per secret: heracles.secrets vs community.hashi_vault vs raw hvac\n"
                   "(%s, %s cores, OpenBao %s 3-node TLS Raft on loopback)"
                   % ("quick run" if meta.get("quick") else "full run", meta.get("cpus", "?"), meta.get("openbao", "?")),
                   fontsize=9)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


RSS_STYLE = {
    ("ours-module", "first"): dict(color="#1f5fa8", marker="o", linestyle="-", label="vault_kv_seed process, first run"),
    ("ours-module", "rerun"): dict(color="#5dade2", marker="o", linestyle="--", label="vault_kv_seed process, rerun"),
    ("ours-playbook", "first"): dict(color="#7f8c8d", marker="s", linestyle="-", label="ansible-playbook, first run"),
    ("ours-playbook", "rerun"): dict(color="#b2babb", marker="s", linestyle="--", label="ansible-playbook, rerun"),
}


def draw_rss(results, path):
    """Peak RSS (MB) of the module process and of ansible-playbook by N, with the module's target as a line."""
    rows = report.summarize_samples(results.get("samples", []))
    fig, axis = plt.subplots(figsize=(8, 5), dpi=110)
    for (method, phase), style in RSS_STYLE.items():
        points = sorted((r["n"], r["rss_mb"]) for r in rows
                        if (r["method"], r["phase"]) == (method, phase) and r.get("rss_mb") is not None)
        if points:
            axis.plot([p[0] for p in points], [p[1] for p in points], **style)
            n, value = points[-1]
            axis.annotate("%.0f" % value, (n, value), textcoords="offset points", xytext=(4, 4), fontsize=7,
                          color=style["color"])
    axis.axhline(report.TARGET_MODULE_RSS_MB, color="#c0392b", linestyle=":", linewidth=1,
                 label="target for the module process (%d MB)" % report.TARGET_MODULE_RSS_MB)
    axis.set_xscale("log")
    sizes = sorted(set(r["n"] for r in rows if r.get("rss_mb") is not None))
    if sizes:
        axis.set_xticks(sizes)
    axis.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axis.set_ylim(bottom=0)
    axis.set_xlabel("secrets seeded (N, 3 fields each)")
    axis.set_ylabel("peak RSS, MB (VmHWM; largest of the runs)")
    axis.set_title("seed.yml memory by N: the vault_kv_seed process and ansible-playbook", fontsize=9)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv):
    """chart.py RESULTS_JSON PER_SECRET_PNG [RSS_PNG]"""
    with open(argv[1]) as handle:
        results = json.load(handle)
    draw(results, argv[2])
    if len(argv) > 3:
        draw_rss(results, argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
