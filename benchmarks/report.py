# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure pieces of the benchmark: medians, ratios, targets and the Markdown report.

Input is the raw results dict that ``bench.py`` writes as JSON::

    {"meta": {...},
     "samples": [{"method", "n", "phase", "repeat", "seconds", "changed", "versions_created"}, ...],
     "snapshot": [{"method", "repeat", "seconds", "bytes", "module_seconds"}, ...],
     "up": [{"repeat", "total", "to_voters", "rerun", "rerun_changed"}, ...]}

Nothing here talks to a server, so tests feed it fake numbers.
"""

from __future__ import absolute_import, division, print_function

import statistics

# method id -> label, in table order
METHODS = [
    ("ours-playbook", "ours: `seed.yml` (ansible-playbook wall)"),
    ("ours-module", "ours: `vault_kv_seed` module time"),
    ("community", "community.hashi_vault `vault_kv2_write` loop"),
    ("hvac-seq", "raw hvac, sequential"),
    ("hvac-threads", "raw hvac, thread pool"),
]
LABELS = dict(METHODS)
PHASES = [("first", "first run"), ("rerun", "rerun"), ("rerun_rbw", "rerun, `read_before_write: true`")]
PHASE_LABELS = dict(PHASES)

TARGET_COMMUNITY_SPEEDUP = 50.0
TARGET_MODULE_VS_HVAC = 1.5
TARGET_RERUN_VS_FIRST = 1.2
TARGET_SNAPSHOT_THROUGHPUT = 0.8
TARGET_SNAPSHOT_MB = 200
TARGET_FLAT_PER_SECRET = 1.2  # time per secret at a large N vs the reference N (1000; 50 with --quick)
TARGET_RERUN_NOT_SLOWER = 1.0  # a rerun that changes nothing vs the first run, at each large N
TARGET_MODULE_RSS_MB = 500  # peak RSS of the vault_kv_seed process at the largest N


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _peak(values):
    """The largest of the runs' peak RSS figures (None when not measured)."""
    values = [v for v in values if v is not None]
    return max(values) if values else None


def ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def summarize_samples(samples):
    """One row per (method, n, phase): medians over the repeats."""
    groups = {}
    for sample in samples:
        groups.setdefault((sample["method"], sample["n"], sample["phase"]), []).append(sample)
    rows = []
    order = dict((m, i) for i, (m, dummy) in enumerate(METHODS))
    phase_order = dict((p, i) for i, (p, dummy) in enumerate(PHASES))

    def sort_key(item):
        method, n, phase = item[0]
        return n, order.get(method, 99), phase_order.get(phase, 99)

    for (method, n, phase), group in sorted(groups.items(), key=sort_key):
        seconds = median([s["seconds"] for s in group])
        rows.append(dict(method=method, n=n, phase=phase, runs=len(group), seconds=seconds,
                         per_secret_ms=None if seconds is None else 1000.0 * seconds / n,
                         changed=median([s.get("changed") for s in group]),
                         versions_created=median([s.get("versions_created") for s in group]),
                         min=min(s["seconds"] for s in group), max=max(s["seconds"] for s in group),
                         rss_mb=_peak([s.get("rss_mb") for s in group])))
    return rows


def find(rows, method, n, phase="first"):
    for row in rows:
        if (row["method"], row["n"], row["phase"]) == (method, n, phase):
            return row
    return None


def seconds_of(rows, method, n, phase="first"):
    row = find(rows, method, n, phase)
    return None if row is None else row["seconds"]


def summarize_snapshot(snapshots):
    """One row per (padding size, method): medians; ``streamed_seconds`` is the GET's body transfer or the module's
    own ``seconds`` (transfer + check + fsync + rename), both counted from the response headers."""
    groups = {}
    for sample in snapshots:
        groups.setdefault((sample.get("padding_mb") or 0, sample["method"]), []).append(sample)
    rows = []
    for (padding, method), group in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1] != "get")):
        seconds, size = median([s["seconds"] for s in group]), median([s["bytes"] for s in group])
        streamed = median([s.get("transfer_seconds") if method == "get" else s.get("module_seconds") for s in group])
        rows.append(dict(method=method, padding_mb=padding, runs=len(group), seconds=seconds, bytes=size,
                         mb_per_s=ratio(size / 1e6 if size else None, seconds), streamed_seconds=streamed,
                         streamed_mb_per_s=ratio(size / 1e6 if size else None, streamed),
                         cpu_seconds=median([s.get("cpu_seconds") for s in group]),
                         load1=median([s.get("load1") for s in group]),
                         module_seconds=median([s.get("module_seconds") for s in group]),
                         transfer_seconds=median([s.get("transfer_seconds") for s in group])))
    return rows


def snapshot_ratios(snapshot_rows):
    """Per padding size with both methods: the module's throughput over the GET's, end to end and streamed part."""
    out = []
    for padding in sorted(set(r["padding_mb"] for r in snapshot_rows)):
        pair = dict((r["method"], r) for r in snapshot_rows if r["padding_mb"] == padding)
        if "get" in pair and "module" in pair:
            get, module = pair["get"], pair["module"]
            out.append(dict(padding_mb=padding, bytes=module["bytes"],
                            end_to_end=ratio(module["mb_per_s"], get["mb_per_s"]),
                            streamed=ratio(module["streamed_mb_per_s"], get["streamed_mb_per_s"])))
    return out


def snapshot_costs(snapshot_rows):
    """What bounds the ratios: client CPU per MB of each method (slope from the smallest to the largest size) and
    the module's fixed cost (its seconds outside the streamed part, less the GET's: process start, imports, login)."""
    out = {}
    for method in ("get", "module"):
        rows = sorted((r for r in snapshot_rows if r["method"] == method and r["bytes"] and r["cpu_seconds"] is not None),
                      key=lambda r: r["bytes"])
        if len(rows) >= 2 and rows[-1]["bytes"] > rows[0]["bytes"]:
            out["%s_cpu_ms_per_mb" % method] = 1e9 * (rows[-1]["cpu_seconds"] - rows[0]["cpu_seconds"]) / (
                rows[-1]["bytes"] - rows[0]["bytes"])
    ratios = snapshot_ratios(snapshot_rows)
    if ratios:
        pair = dict((r["method"], r) for r in snapshot_rows if r["padding_mb"] == ratios[-1]["padding_mb"])
        outside = [(r["seconds"] or 0) - (r["streamed_seconds"] or 0) for r in (pair["module"], pair["get"])]
        out["module_fixed_seconds"] = outside[0] - outside[1]
    return out


def snapshot_target(snapshot_rows):
    """The snapshot target: end to end at the smallest size of at least TARGET_SNAPSHOT_MB (larger sizes only draw
    the curve); not measured when every size is smaller."""
    ratios = snapshot_ratios(snapshot_rows)
    if not ratios:
        return None
    at = ([r for r in ratios if (r["bytes"] or 0) >= TARGET_SNAPSHOT_MB * 1e6] or ratios[-1:])[0]
    size_mb = at["bytes"] / 1e6 if at["bytes"] else 0
    value = at["end_to_end"]
    text = ("%s end to end (the target's measure: process start, imports and login included), %s for the streamed "
            "part alone (GET: body transfer; module: transfer + archive check + sha256 + fsync + rename), at %.0f MB"
            % (_x(value), _x(at["streamed"]), size_mb))
    met = None if value is None else value >= TARGET_SNAPSHOT_THROUGHPUT
    if size_mb < TARGET_SNAPSHOT_MB:
        text += " (smaller than the target's %d MB: not measured at its size)" % TARGET_SNAPSHOT_MB
        met = None
    return dict(id="snapshot", target="snapshot save at >= %gx the throughput of a plain streamed GET (snapshot >= "
                "%d MB, end to end)" % (TARGET_SNAPSHOT_THROUGHPUT, TARGET_SNAPSHOT_MB), value=value, text=text, met=met)


def summarize_up(ups):
    if not ups:
        return None
    return dict(runs=len(ups), total=median([u["total"] for u in ups]), to_voters=median([u.get("to_voters") for u in ups]),
                rerun=median([u.get("rerun") for u in ups]), rerun_changed=median([u.get("rerun_changed") for u in ups]))


def targets(rows, snapshot_rows, n):
    """The issue's targets, each with the measured figure and whether it is met (None: not measured)."""
    out = []
    ours = seconds_of(rows, "ours-playbook", n)
    community = seconds_of(rows, "community", n)
    speedup = ratio(community, ours)
    out.append(dict(id="community", target="`seed.yml` at least %gx faster than the community loop (N=%d, first run)"
                    % (TARGET_COMMUNITY_SPEEDUP, n), value=speedup, text=_x(speedup),
                    met=None if speedup is None else speedup >= TARGET_COMMUNITY_SPEEDUP))
    for phase in ("first", "rerun"):
        module = seconds_of(rows, "ours-module", n, phase)
        floor = seconds_of(rows, "hvac-threads", n, phase)
        value = ratio(module, floor)
        out.append(dict(id="module-%s" % phase,
                        target="`vault_kv_seed` module time within %gx of raw threaded hvac (N=%d, %s)"
                        % (TARGET_MODULE_VS_HVAC, n, PHASE_LABELS[phase]),
                        value=value, text=_x(value), met=None if value is None else value <= TARGET_MODULE_VS_HVAC))
    first, rerun = find(rows, "ours-playbook", n, "first"), find(rows, "ours-playbook", n, "rerun")
    if first and rerun:
        value = ratio(rerun["seconds"], first["seconds"])
        clean = rerun["changed"] == 0 and rerun["versions_created"] == 0
        out.append(dict(id="rerun", target="rerun of `seed.yml` changes nothing, creates no versions, costs <= %gx "
                        "the first run (N=%d)" % (TARGET_RERUN_VS_FIRST, n), value=value,
                        text="changed %s, new versions %s, %s"
                        % (_num(rerun["changed"]), _num(rerun["versions_created"]), _x(value)),
                        met=bool(clean and value is not None and value <= TARGET_RERUN_VS_FIRST)))
    snapshot = snapshot_target(snapshot_rows)
    if snapshot:
        out.append(snapshot)
    return out


def _per_secret(rows, method, n, phase="first"):
    row = find(rows, method, n, phase)
    return None if row is None else row["per_secret_ms"]


def _rss(rows, method, n):
    """Peak RSS of ``method`` at ``n`` over both phases."""
    return _peak([(find(rows, method, n, phase) or {}).get("rss_mb") for phase in ("first", "rerun")])


def scale_rows(rows, n_ref):
    """Per N seeded by ours: time per secret against N=``n_ref`` (ours and raw threaded hvac), ours against hvac,
    rerun against first run, and peak RSS of the module and of ansible-playbook."""
    out = []
    for n in sorted(set(r["n"] for r in rows if r["method"] == "ours-module")):
        module, hvac = _per_secret(rows, "ours-module", n), _per_secret(rows, "hvac-threads", n)
        first, rerun = find(rows, "ours-playbook", n, "first"), find(rows, "ours-playbook", n, "rerun")
        out.append(dict(
            n=n, runs=(find(rows, "ours-module", n) or {}).get("runs"), module_ms=module, hvac_ms=hvac,
            flat=ratio(module, _per_secret(rows, "ours-module", n_ref)),
            hvac_flat=ratio(hvac, _per_secret(rows, "hvac-threads", n_ref)),
            vs_hvac_first=ratio(module, hvac),
            vs_hvac_rerun=ratio(seconds_of(rows, "ours-module", n, "rerun"), seconds_of(rows, "hvac-threads", n, "rerun")),
            rerun_vs_first=ratio((rerun or {}).get("seconds"), (first or {}).get("seconds")),
            module_rerun_vs_first=ratio(seconds_of(rows, "ours-module", n, "rerun"), seconds_of(rows, "ours-module", n)),
            rerun_clean=bool(rerun) and rerun["changed"] == 0 and rerun["versions_created"] == 0,
            module_rss_mb=_rss(rows, "ours-module", n), controller_rss_mb=_rss(rows, "ours-playbook", n)))
    return out


def _target(ident, target, value, text, met):
    return dict(id=ident, target=target, value=value, text=text, met=met)


def scale_targets(scale, n_ref):
    """The scale issue's targets at every N above ``n_ref``: flat time per secret, a rerun no slower than the first
    run, ours within TARGET_MODULE_VS_HVAC of raw threaded hvac; and the module's peak RSS at the largest N."""
    out = []
    for row in [r for r in scale if n_ref and r["n"] > n_ref]:
        n = row["n"]
        out.append(_target("flat-%d" % n, "`vault_kv_seed` time per secret at N=%d within %gx of N=%d (first run)"
                           % (n, TARGET_FLAT_PER_SECRET, n_ref), row["flat"],
                           "%s (raw threaded hvac: %s)" % (_x(row["flat"]), _x(row["hvac_flat"])),
                           None if row["flat"] is None else row["flat"] <= TARGET_FLAT_PER_SECRET))
        out.append(_target("rerun-%d" % n, "rerun of `seed.yml` at N=%d changes nothing and is no slower than the "
                           "first run" % n, row["rerun_vs_first"],
                           "%s, %s (module time: %s)" % ("nothing changed" if row["rerun_clean"] else "**changed**",
                                                         _x(row["rerun_vs_first"]), _x(row["module_rerun_vs_first"])),
                           None if row["rerun_vs_first"] is None
                           else row["rerun_clean"] and row["rerun_vs_first"] <= TARGET_RERUN_NOT_SLOWER))
        for phase in ("first", "rerun"):
            value = row["vs_hvac_%s" % phase]
            out.append(_target("module-%s-%d" % (phase, n), "`vault_kv_seed` module time within %gx of raw threaded "
                               "hvac (N=%d, %s)" % (TARGET_MODULE_VS_HVAC, n, PHASE_LABELS[phase]), value, _x(value),
                               None if value is None else value <= TARGET_MODULE_VS_HVAC))
    measured = [r for r in scale if r["module_rss_mb"] is not None]
    if measured:
        top = measured[-1]
        out.append(_target("rss", "peak RSS of the `vault_kv_seed` process under %d MB at the largest N (%d)"
                           % (TARGET_MODULE_RSS_MB, top["n"]), top["module_rss_mb"],
                           "%s MB (ansible-playbook: %s MB)" % (_num(top["module_rss_mb"]), _num(top["controller_rss_mb"])),
                           top["module_rss_mb"] < TARGET_MODULE_RSS_MB))
    return out


def summarize(results):
    rows = summarize_samples(results.get("samples", []))
    snapshot_rows = summarize_snapshot(results.get("snapshot", []))
    n = results.get("meta", {}).get("n")
    scale = scale_rows(rows, n)
    return dict(rows=rows, snapshot=snapshot_rows, up=summarize_up(results.get("up", [])), scale=scale,
                targets=targets(rows, snapshot_rows, n) + scale_targets(scale, n))


# ------------------------------------------------------------------ Markdown
def _num(value, digits=0):
    if value is None:
        return "-"
    if digits == 0:
        return "%d" % round(value)
    return "%.*f" % (digits, value)


def _secs(value):
    if value is None:
        return "-"
    if value >= 100:
        return "%.0f" % value
    if value >= 10:
        return "%.1f" % value
    return "%.2f" % value


def _ms(value):
    if value is None:
        return "-"
    return "%.1f" % value if value >= 10 else "%.2f" % value


def _x(value):
    if value is None:
        return "-"
    return "%.0fx" % value if value >= 10 else "%.2fx" % value


def met_text(value):
    return {True: "met", False: "**missed**", None: "not measured"}[value]


def _table(header, lines):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for dummy in header) + "|"]
    out += ["| " + " | ".join(str(cell) for cell in line) + " |" for line in lines]
    return out


def seeding_table(rows, n):
    """Every method at N: first run, reruns, per-secret time, changes, and the ratio to ours in the same run."""
    ours = dict((phase, seconds_of(rows, "ours-playbook", n, phase)) for phase in ("first", "rerun"))
    lines = []
    for row in [r for r in rows if r["n"] == n]:
        first = seconds_of(rows, row["method"], n, "first")
        ref = ours.get("first" if row["phase"] == "first" else "rerun")
        lines.append(["%s" % LABELS.get(row["method"], row["method"]), PHASE_LABELS.get(row["phase"], row["phase"]),
                      row["runs"], _secs(row["seconds"]), _ms(row["per_secret_ms"]),
                      _num(row["changed"]), _num(row["versions_created"]),
                      "-" if row["phase"] == "first" else _x(ratio(row["seconds"], first)),
                      _x(ratio(row["seconds"], ref))])
    return _table(["method", "phase", "runs", "seconds (median)", "ms / secret", "changed", "new KV versions",
                   "vs its first run", "vs ours (playbook)"], lines)


def sweep_table(rows):
    sizes = sorted(set(r["n"] for r in rows))
    methods = [m for m, dummy in METHODS if any(r["method"] == m and r["phase"] == "first" for r in rows)]
    lines = []
    for n in sizes:
        line = [n]
        for method in methods:
            row = find(rows, method, n, "first")
            line.append("-" if row is None else "%s (%d)" % (_ms(row["per_secret_ms"]), row["runs"]))
        lines.append(line)
    return _table(["N"] + [LABELS[m] for m in methods], lines)


def scale_section(scale, n_ref, chart=None):
    """The curve as a table: per N, time per secret against N=n_ref, ratios to raw threaded hvac, reruns, memory."""
    lines = [[r["n"], _num(r["runs"]), _ms(r["module_ms"]), _x(r["flat"]), _ms(r["hvac_ms"]), _x(r["hvac_flat"]),
              _x(r["vs_hvac_first"]), _x(r["vs_hvac_rerun"]), _x(r["rerun_vs_first"]), _num(r["module_rss_mb"]),
              _num(r["controller_rss_mb"])] for r in scale]
    out = ["## Seeding at scale", "",
           "Per N: the module's time per secret (first run) against N=%s, the same for raw threaded hvac (how much of "
           "the growth is the server's), ours against hvac in the same run, the rerun (nothing to change) against the "
           "first run (`seed.yml` wall), and the peak RSS (VmHWM, the larger of both runs) of the `vault_kv_seed` "
           "process and of ansible-playbook (its largest process: main or task worker)." % n_ref, ""]
    out += _table(["N", "runs", "module ms / secret", "vs N=%s" % n_ref, "hvac threads ms / secret", "hvac vs N=%s"
                   % n_ref, "module vs hvac (first)", "module vs hvac (rerun)", "rerun vs first", "module peak RSS MB",
                   "ansible-playbook peak RSS MB"], lines)
    if chart:
        out += ["", "![peak RSS by N](%s)" % chart]
    return out + [""]


SNAPSHOT_LABELS = dict(get="plain `GET /v1/sys/storage/raft/snapshot` (requests, streamed to a file)",
                       module="`vault_raft_snapshot` state=saved (module process: start, login, transfer, check, fsync)")


def snapshot_section(snapshot_rows, chart=None):
    """The snapshot table: each padding size, GET then module, with both ratios on the module's row."""
    ratios = dict((r["padding_mb"], r) for r in snapshot_ratios(snapshot_rows))
    lines = []
    for row in snapshot_rows:
        pair = ratios.get(row["padding_mb"]) if row["method"] == "module" else None
        lines.append([_num(row["padding_mb"]), SNAPSHOT_LABELS.get(row["method"], row["method"]), row["runs"],
                      _num(row["bytes"] / 1e6 if row["bytes"] else None, 1), _secs(row["seconds"]),
                      _num(row["mb_per_s"], 1), _secs(row["streamed_seconds"]), _num(row["streamed_mb_per_s"], 1),
                      _secs(row["cpu_seconds"]), _x(pair["end_to_end"]) if pair else "-",
                      _x(pair["streamed"]) if pair else "-"])
    out = ["## Raft snapshot save", "",
           "Seconds are medians; \"streamed\" counts from the response headers (the server has the snapshot ready) to "
           "the body written (GET) or the file checked, fsynced and renamed into place (module). The target uses the "
           "end-to-end ratio at the first size of at least %d MB. \"CPU s\" is the client's user + system time (the "
           "GET's process, the module's whole process); the load average during the runs was %s."
           % (TARGET_SNAPSHOT_MB, _num(median([r["load1"] for r in snapshot_rows]), 1)), ""]
    out += _table(["padding MB", "method", "runs", "snapshot MB", "seconds", "MB/s", "streamed s", "streamed MB/s",
                   "CPU s", "vs GET end to end", "vs GET streamed"], lines)
    costs = snapshot_costs(snapshot_rows)
    if "module_cpu_ms_per_mb" in costs and "get_cpu_ms_per_mb" in costs:
        out += ["", "Client CPU per MB of snapshot: GET %.2f ms, module %.2f ms (the module also inflates the archive, "
                "hashes the file and state.bin and fsyncs); the module's fixed cost outside the transfer (process "
                "start, imports, login, signing) is %.2f s." % (costs["get_cpu_ms_per_mb"], costs["module_cpu_ms_per_mb"],
                                                                costs.get("module_fixed_seconds") or 0)]
    if chart:
        out += ["", "![snapshot throughput by size](%s)" % chart]
    return out + [""]


def render_markdown(results, chart=None, snapshot_chart=None, rss_chart=None):
    summary = summarize(results)
    meta = results.get("meta", {})
    n = meta.get("n")
    out = ["# heracles.secrets benchmarks", ""]
    out.append("Run %s (%s mode) on %s core(s): OpenBao %s, 3-node TLS Raft on loopback; ansible-core %s, hvac %s, "
               "community.hashi_vault %s. Secrets have 3 fields, 10 per folder; each method writes to its own fresh "
               "KV v2 mount; the thread pool and `vault_kv_seed` use %s parallel requests."
               % (meta.get("started", "?"), "quick" if meta.get("quick") else "full", meta.get("cpus", "?"),
                  meta.get("openbao", "?"), meta.get("ansible_core", "?"), meta.get("hvac", "?"),
                  meta.get("community_hashi_vault", "?"), meta.get("concurrency", "?")))
    out.append("")
    out.append("Every figure is the median of `runs` runs (the community loop takes minutes per run, so it runs %s "
               "time(s)); ratios compare figures of this same run, which matters more than absolute times on a noisy "
               "machine. \"rerun\" seeds the same data again; raw hvac writes blindly (no read), so its rerun is not "
               "idempotent — it is the floor for request cost, not for behaviour."
               % meta.get("community_repeats", "?"))
    out.append("")
    out.append("## Targets")
    out.append("")
    out += _table(["target", "measured", ""], [[t["target"], t["text"], met_text(t["met"])] for t in summary["targets"]])
    out.append("")
    out.append("## Seeding N=%s secrets" % n)
    out.append("")
    out += seeding_table(summary["rows"], n)
    out.append("")
    out.append("## Time per secret by N (first run, ms; runs in brackets)")
    out.append("")
    out += sweep_table(summary["rows"])
    if chart:
        out += ["", "![time per secret by method and N](%s)" % chart]
    out.append("")
    if any(r["n"] != n for r in summary["scale"]):
        out += scale_section(summary["scale"], n, rss_chart)
    if summary["snapshot"]:
        out += snapshot_section(summary["snapshot"], snapshot_chart)
    if summary["up"]:
        up = summary["up"]
        out.append("## `make up` (playbooks/site.yml from an installed venv)")
        out.append("")
        out += _table(["step", "runs", "seconds (median)"], [
            ["start 3 nodes, init, unseal, autopilot: three unsealed voters", up["runs"], _secs(up["to_voters"])],
            ["whole `make up` (+ configure, sample seed, first backup)", up["runs"], _secs(up["total"])],
            ["`make up` again (changed=%s)" % _num(up["rerun_changed"]), up["runs"], _secs(up["rerun"])],
        ])
        out.append("")
    if meta.get("notes"):
        out.append("## Notes")
        out.append("")
        out += ["- %s" % note for note in meta["notes"]]
        out.append("")
    return "\n".join(out)
