"""The benchmark harness (benchmarks/) does not rot: its pure pieces on fake numbers, and a tiny real run.

No timing is asserted here: machines are noisy. The 545 MB benchmark venv (community.hashi_vault, matplotlib)
is not needed: the smoke run covers ours (seed.yml) and raw hvac only.
"""

import argparse
import json
import os
import sys

import pytest

from heracles_testlib import ROOT

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import bench  # noqa: E402
import methods  # noqa: E402
import report  # noqa: E402


def fake_results(n=1000):
    samples = []
    figures = {  # method -> phase -> seconds per repeat
        "ours-playbook": {"first": [7.0, 6.0, 8.0], "rerun": [5.0, 5.5, 4.5]},
        "ours-module": {"first": [4.0, 4.2, 3.8], "rerun": [2.0, 2.1, 1.9]},
        "community": {"first": [270.0], "rerun": [275.0], "rerun_rbw": [280.0]},
        "hvac-seq": {"first": [9.0, 9.5, 8.5], "rerun": [9.0, 9.1, 8.9]},
        "hvac-threads": {"first": [4.0, 4.4, 3.6], "rerun": [4.0, 4.1, 3.9]},
    }
    for method, phases in figures.items():
        for phase, values in phases.items():
            for repeat, seconds in enumerate(values):
                clean = method.startswith("ours") or phase == "rerun_rbw"
                changed = 0 if phase != "first" and clean else n
                samples.append(dict(method=method, n=n, phase=phase, repeat=repeat, seconds=seconds, changed=changed,
                                    versions_created=changed))
    samples.append(dict(method="ours-playbook", n=5000, phase="first", repeat=0, seconds=30.0, changed=5000,
                        versions_created=5000))
    snapshot = [dict(method="get", repeat=0, seconds=0.5, bytes=220e6),
                dict(method="module", repeat=0, seconds=1.0, bytes=220e6, module_seconds=0.6)]
    up = [dict(repeat=0, total=40.0, to_voters=15.0, rerun=20.0, rerun_changed=0)]
    return dict(meta=dict(n=n, quick=False, cpus=2, repeats=3, community_repeats=1, started="2026-01-01 00:00 UTC",
                          notes=["a note"]), samples=samples, snapshot=snapshot, up=up)


def test_summary_takes_medians_and_ratios_from_the_same_run():
    summary = report.summarize(fake_results())
    row = report.find(summary["rows"], "ours-playbook", 1000, "first")
    assert (row["runs"], row["seconds"], row["per_secret_ms"]) == (3, 7.0, 7.0)
    targets = dict((t["id"], t) for t in summary["targets"])
    assert targets["community"]["value"] == pytest.approx(270.0 / 7.0) and targets["community"]["met"] is False
    assert targets["module-first"]["value"] == pytest.approx(1.0) and targets["module-first"]["met"] is True
    assert targets["rerun"]["met"] is True and targets["rerun"]["value"] == pytest.approx(5.0 / 7.0)
    assert targets["snapshot"]["value"] == pytest.approx(0.5) and targets["snapshot"]["met"] is False


def test_rerun_target_fails_when_versions_are_created():
    results = fake_results()
    for sample in results["samples"]:
        if sample["method"] == "ours-playbook" and sample["phase"] == "rerun":
            sample["versions_created"] = 3
    targets = dict((t["id"], t) for t in report.summarize(results)["targets"])
    assert targets["rerun"]["met"] is False


def test_markdown_has_the_tables_and_the_chart():
    text = report.render_markdown(fake_results(), chart="seed_per_secret.png")
    assert "## Targets" in text and "**missed**" in text and "| met |" in text
    assert "| community.hashi_vault `vault_kv2_write` loop | rerun, `read_before_write: true` | 1 | 280 |" in text
    assert "![time per secret by method and N](seed_per_secret.png)" in text
    assert "| 5000 | 6.00 (1) |" in text  # the sweep table: ours at N=5000 only
    assert "three unsealed voters | 1 | 15.0 |" in text
    assert "- a note" in text


def test_missing_figures_render_as_not_measured():
    results = fake_results()
    results["samples"] = [s for s in results["samples"] if s["method"] != "community"]
    results["snapshot"] = []
    text = report.render_markdown(results)
    assert "not measured" in text and "Raft snapshot" not in text


def snapshot_samples(figures):
    """``{padding_mb: (get seconds, get streamed, module seconds, module streamed, MB)}`` -> raw samples, 2 runs."""
    out = []
    for padding, (get, get_streamed, module, module_streamed, mb) in figures.items():
        for repeat in range(2):
            out.append(dict(method="get", repeat=repeat, padding_mb=padding, seconds=get, transfer_seconds=get_streamed,
                            bytes=mb * 1e6, cpu_seconds=0.3, load1=1.0 + repeat))
            out.append(dict(method="module", repeat=repeat, padding_mb=padding, seconds=module,
                            module_seconds=module_streamed, bytes=mb * 1e6, cpu_seconds=0.9, load1=2.0))
    return out


def test_snapshot_ratios_per_size_and_the_target_at_the_largest():
    rows = report.summarize_snapshot(snapshot_samples({32: (0.5, 0.3, 1.0, 0.4, 34), 220: (1.0, 0.8, 1.2, 0.9, 231)}))
    ratios = report.snapshot_ratios(rows)
    assert [r["padding_mb"] for r in ratios] == [32, 220]
    assert ratios[0]["end_to_end"] == pytest.approx(0.5) and ratios[0]["streamed"] == pytest.approx(0.75)
    assert ratios[1]["end_to_end"] == pytest.approx(1.0 / 1.2) and ratios[1]["streamed"] == pytest.approx(0.8 / 0.9)
    target = report.snapshot_target(rows)
    assert target["met"] is True and target["value"] == pytest.approx(1.0 / 1.2)  # end to end, at the largest size
    assert "0.83x end to end" in target["text"] and "0.89x for the streamed part" in target["text"]
    missed = report.snapshot_target(report.summarize_snapshot(snapshot_samples({220: (1.0, 0.8, 1.5, 0.8, 231),
                                                                                500: (2.0, 1.8, 2.2, 1.9, 520)})))
    assert missed["met"] is False and "1.00x for the streamed part" in missed["text"]  # at 231 MB, not at 520 MB


def test_snapshot_costs_name_the_bottleneck():
    samples = snapshot_samples({32: (0.5, 0.3, 1.0, 0.4, 34), 220: (1.0, 0.8, 1.5, 0.9, 234)})
    for sample in samples:
        big = sample["padding_mb"] == 220
        sample["cpu_seconds"] = (0.25 if big else 0.05) if sample["method"] == "get" else (1.2 if big else 0.4)
    costs = report.snapshot_costs(report.summarize_snapshot(samples))
    assert costs["get_cpu_ms_per_mb"] == pytest.approx(1.0) and costs["module_cpu_ms_per_mb"] == pytest.approx(4.0)
    assert costs["module_fixed_seconds"] == pytest.approx((1.5 - 0.9) - (1.0 - 0.8))
    assert "GET 1.00 ms, module 4.00 ms" in "\n".join(report.snapshot_section(report.summarize_snapshot(samples)))


def test_snapshot_target_needs_the_target_size():
    rows = report.summarize_snapshot(snapshot_samples({8: (0.2, 0.1, 0.2, 0.1, 9)}))
    target = report.snapshot_target(rows)
    assert target["met"] is None and "not measured at its size" in target["text"]
    assert report.snapshot_target(report.summarize_snapshot([dict(method="get", repeat=0, seconds=1, bytes=1)])) is None


def test_snapshot_table_has_every_size_both_ratios_and_the_chart():
    results = fake_results()
    results["snapshot"] = snapshot_samples({32: (0.5, 0.3, 1.0, 0.4, 34), 220: (1.0, 0.8, 1.25, 1.0, 231)})
    text = report.render_markdown(results, snapshot_chart="snapshot_throughput.png")
    assert "| 220 | `vault_raft_snapshot` state=saved" in text and "| 0.90 | 0.80x | 0.80x |" in text
    assert "load average during the runs was 1.8" in text  # median of the rows: 1.5 (GET), 2.0 (module)
    assert "| 32 | plain `GET" in text and "| 0.50x | 0.75x |" in text
    assert "![snapshot throughput by size](snapshot_throughput.png)" in text
    assert "0.80x end to end" in text and "| met |" in text


def test_arguments_quick_and_full():
    quick = bench.parse_args(["--quick"])
    assert (quick.n, quick.sizes, quick.community_sizes, quick.up_repeats) == (50, [20, 50, 200, 2000], [50], 1)
    full = bench.parse_args([])
    assert (full.n, full.sizes, full.community_sizes, full.up_repeats) == (
        1000, [100, 1000, 10000, 50000, 100000], [1000], 3)
    assert bench.parse_args(["--skip-community"]).community_sizes == []


class FakeRecorder:
    def __init__(self):
        self.runs = []

    def seed(self, method, n, repeat, secrets):
        self.runs.append((method, n, repeat, len(secrets)))


def test_large_sizes_run_fewer_times_without_sequential_hvac():
    args = bench.parse_args(["--sizes", "100,20000,60000", "--n", "100"])
    recorder = FakeRecorder()
    for n in (20000, 60000):
        bench.seed_size(recorder, args, n)
    assert sorted(set((m, n) for m, n, dummy, dummy in recorder.runs)) == [
        ("hvac-threads", 20000), ("hvac-threads", 60000), ("ours", 20000), ("ours", 60000)]
    assert [r for m, n, r, dummy in recorder.runs if n == 60000] == [0, 0] and len(recorder.runs) == 2 * 3 + 2
    notes = " ".join(bench.seed_notes(args))
    assert "N >= 50000 ran 1 time(s)" in notes and "sequential hvac ran up to N=10000" in notes


def scale_samples():
    """ours and threaded hvac at N=1000, 10000 and 100000: per-secret ms and peak RSS chosen per test below."""
    figures = {  # n -> (module first, module rerun, playbook first, playbook rerun, hvac first, hvac rerun) ms/secret
        1000: (2.0, 1.0, 4.0, 3.0, 2.0, 2.0),
        10000: (2.2, 1.1, 3.0, 2.0, 2.0, 2.0),
        100000: (2.6, 2.9, 3.0, 3.5, 2.4, 2.0),
    }
    rss = {1000: (60, 70), 10000: (90, 150), 100000: (450, 900)}  # module, ansible-playbook
    samples = []
    for n, values in figures.items():
        for index, (method, phase) in enumerate([("ours-module", "first"), ("ours-module", "rerun"),
                                                 ("ours-playbook", "first"), ("ours-playbook", "rerun"),
                                                 ("hvac-threads", "first"), ("hvac-threads", "rerun")]):
            clean = phase == "rerun" and method.startswith("ours")
            sample = dict(method=method, n=n, phase=phase, repeat=0, seconds=values[index] * n / 1000.0,
                          changed=0 if clean else n, versions_created=0 if clean else n)
            if method.startswith("ours"):
                sample["rss_mb"] = rss[n][0 if method == "ours-module" else 1] - (5 if phase == "rerun" else 0)
            samples.append(sample)
    return dict(meta=dict(n=1000, quick=False), samples=samples)


def test_scale_targets_flatness_rerun_hvac_and_rss_at_each_large_n():
    summary = report.summarize(scale_samples())
    targets = dict((t["id"], t) for t in summary["targets"])
    assert targets["flat-10000"]["value"] == pytest.approx(1.1) and targets["flat-10000"]["met"] is True
    assert targets["flat-100000"]["value"] == pytest.approx(1.3) and targets["flat-100000"]["met"] is False
    assert "raw threaded hvac: 1.20x" in targets["flat-100000"]["text"]  # the server's share of the growth
    assert targets["rerun-10000"]["met"] is True and targets["rerun-10000"]["value"] == pytest.approx(2.0 / 3.0)
    assert targets["rerun-100000"]["met"] is False and "module time: 1.12x" in targets["rerun-100000"]["text"]
    assert targets["module-first-100000"]["value"] == pytest.approx(2.6 / 2.4) and targets["module-first-100000"]["met"]
    assert targets["module-rerun-100000"]["value"] == pytest.approx(1.45)
    assert "flat-1000" not in targets and "module-first-1000" not in targets  # N=1000 is the reference
    assert targets["rss"]["value"] == 450 and targets["rss"]["met"] is True and "(ansible-playbook: 900 MB)" in targets["rss"]["text"]
    row = [r for r in summary["scale"] if r["n"] == 100000][0]
    assert (row["module_rss_mb"], row["controller_rss_mb"], row["runs"]) == (450, 900, 1)


def test_scale_rss_target_missed_and_the_markdown_section():
    results = scale_samples()
    for sample in results["samples"]:
        if sample["n"] == 100000 and sample["method"] == "ours-module" and sample["phase"] == "rerun":
            sample["rss_mb"] = 600
    targets = dict((t["id"], t) for t in report.summarize(results)["targets"])
    assert targets["rss"]["met"] is False and targets["rss"]["value"] == 600  # the larger of both runs
    text = report.render_markdown(results, chart="seed_per_secret.png", rss_chart="seed_rss.png")
    assert "## Seeding at scale" in text and "![peak RSS by N](seed_rss.png)" in text
    assert "| 100000 | 1 | 2.60 | 1.30x | 2.40 | 1.20x | 1.08x | 1.45x | 1.17x | 600 | 900 |" in text


def test_peak_rss_of_a_process_tree():
    """run_measured finds a child's peak by role (polled) and the tree's (wait4), here a 64 MB allocation."""
    code = "import time; block = bytearray(64 * 2 ** 20); time.sleep(0.5)"
    proc, seconds, peaks = methods.run_measured([sys.executable, "-c", code], methods.subprocess_env(), 60, "allocate",
                                                dict(child="bytearray"))
    assert proc.returncode == 0 and seconds > 0
    assert peaks["child"] >= 64 and peaks["tree"] >= 64
    with pytest.raises(methods.BenchError):
        methods.run_measured([sys.executable, "-c", "raise SystemExit(3)"], methods.subprocess_env(), 60, "exit 3", {})


def test_snapshot_sizes_and_only():
    assert bench.parse_args([]).snapshot_mb == [32, 100, 220, 500] and bench.parse_args(["--quick"]).snapshot_mb == [4, 8, 16]
    assert bench.parse_args(["--snapshot-mb", "250,10"]).snapshot_mb == [10, 250]
    only = bench.parse_args(["--only", "snapshot"])
    assert only.only == {"snapshot"} and only.community_sizes == []  # no seeding, so no community venv needed
    assert "seed" not in bench.parse_args(["--no-seed"]).only and bench.parse_args([]).only == set(bench.PARTS)
    with pytest.raises(SystemExit):
        bench.parse_args(["--only", "snapshots"])


def test_secrets_layout():
    secrets = methods.make_secrets(25, seed=1)
    assert len(secrets) == 25 and sorted(secrets)[0] == "apps/app-0000/s00" and "apps/app-0002/s04" in secrets
    assert all(sorted(fields) == ["password", "url", "username"] for fields in secrets.values())
    assert methods.make_secrets(25, seed=2) != secrets


@pytest.mark.slow
def test_smoke_ours_and_raw_hvac_on_a_real_cluster(cluster, tmp_path):
    """N=5 through the real harness: seed.yml (first run + rerun) and raw hvac, then the report."""
    target = methods.Target(cluster.urls, cluster.ca_cert, cluster.init_file, cluster.password_file)
    recorder = methods.Recorder(target, str(tmp_path), os.path.join(ROOT, ".venv", "bin"))
    secrets = methods.make_secrets(5, seed=3)
    for method in ("ours", "hvac-threads"):
        recorder.seed(method, 5, 0, secrets)
    by = dict(((s["method"], s["phase"]), s) for s in recorder.samples)
    assert by[("ours-playbook", "first")]["changed"] == 5 and by[("ours-playbook", "first")]["versions_created"] == 5
    assert by[("ours-playbook", "rerun")]["changed"] == 0 and by[("ours-playbook", "rerun")]["versions_created"] == 0
    assert by[("ours-module", "rerun")]["seconds"] > 0
    assert by[("ours-module", "first")]["rss_mb"] > 0 and by[("ours-playbook", "first")]["rss_mb"] > 0  # memory too
    assert by[("hvac-threads", "rerun")]["versions_created"] == 5  # blind writes: the floor, not idempotent
    snap = methods.snapshot_get(target, str(tmp_path / "get.snap"))
    assert snap["bytes"] > 0
    results = dict(meta=dict(n=5, quick=True), samples=recorder.samples, snapshot=[dict(snap, method="get", repeat=0)])
    text = report.render_markdown(results)
    assert "raw hvac, thread pool" in text and "| rerun | 1 |" in text


# -- the audit report by the gigabyte (benchmarks/audit_*.py) ---------------------------------------------------
import audit_bench  # noqa: E402
import audit_gen  # noqa: E402
import audit_record  # noqa: E402
import audit_summary  # noqa: E402


def fake_audit():
    counts = dict(requests=10, forwarded=1, denied=2, operations={"read": 10})
    samples = []
    for size, module, jq, rss in ((100.0, 2.0, 10.0, 30.0), (1000.0, 20.0, 110.0, 33.0)):
        samples.append(dict(tool="module", size_mb=size, seconds=module, cpu_seconds=module / 2, rss_mb=rss,
                            counts=counts, bounds=dict(evicted=dict(access=5, paths=0))))
        samples.append(dict(tool="jq", size_mb=size, seconds=jq, cpu_seconds=jq, rss_mb=4.0,
                            counts=dict(counts, denied=3 if size > 500 else 2)))
    return dict(samples=samples, notes=["audit lines: sample"], jq="jq-1.6")


def test_audit_summary_ratios_targets_and_markdown():
    summary = audit_summary.summarize(fake_audit())
    small, large = summary["rows"]
    assert small["ratio"] == pytest.approx(5.0) and large["ratio"] == pytest.approx(5.5)
    assert large["cpu_ratio"] == pytest.approx(11.0) and large["module"]["evicted"] == 5
    assert (small["agree"], large["agree"]) == (True, False)
    targets = dict((t["id"], t) for t in summary["targets"])
    assert targets["audit-vs-jq"]["met"] is True and targets["audit-vs-jq"]["value"] == pytest.approx(5.5)
    assert targets["audit-memory"]["met"] is True and targets["audit-memory"]["value"] == pytest.approx(1.1)
    text = audit_summary.markdown(fake_audit(), chart="audit_report.png")
    assert "| 1000 | 50.0 (100.0) | 9.1 (9.1) | 5.5x | 33 | 4 | 5 | **no** |" in text
    assert "![audit report throughput and peak RSS by file size](audit_report.png)" in text


def test_audit_summary_without_jq_or_samples():
    audit = fake_audit()
    audit["samples"] = [s for s in audit["samples"] if s["tool"] == "module"]
    audit["samples"][1]["rss_mb"] = 60.0
    targets = dict((t["id"], t) for t in audit_summary.summarize(audit)["targets"])
    assert targets["audit-vs-jq"]["met"] is None and targets["audit-memory"]["met"] is False
    assert "no table was full yet" not in targets["audit-memory"]["text"]  # rows were evicted at 100 MB already
    audit["samples"][0]["bounds"] = None
    targets = dict((t["id"], t) for t in audit_summary.summarize(audit)["targets"])
    assert "at 100 MB no table was full yet" in targets["audit-memory"]["text"]
    assert audit_summary.markdown(dict(samples=[])) == ""


def test_audit_arguments():
    assert bench.parse_args(["--quick"]).audit_mb == audit_bench.QUICK_SIZES_MB
    assert bench.parse_args([]).audit_mb == audit_bench.FULL_SIZES_MB
    assert bench.parse_args(["--audit-mb", "0"]).audit_mb == []


def test_generated_log_keeps_the_recorded_format_and_pairing(tmp_path):
    path = str(tmp_path / "audit.log")
    written, requests, lines = audit_gen.generate(path, 300000, audit_record.load_sample())
    assert written >= 300000 and lines == 2 * requests
    with open(path) as handle:
        entries = [json.loads(text) for text in handle]
    ids = {}
    for entry in entries:
        ids.setdefault(entry["request"]["id"], []).append(entry["type"])
    assert len(ids) == requests and all(kinds == ["request", "response"] for kinds in ids.values())
    assert [e["time"] for e in entries] == sorted(e["time"] for e in entries)
    assert len(set(e["auth"].get("display_name") for e in entries)) > 20
    assert any("readonly storage" in e.get("error", "") for e in entries)


@pytest.mark.skipif(not audit_bench.find_jq(), reason="jq is not installed")
def test_jq_and_the_module_count_the_same(tmp_path):
    """A 3 MB generated log: the module (a process, as the bench runs it) and JQ_PROGRAM agree on every count."""
    path = str(tmp_path / "audit.log")
    audit_gen.generate(path, 3e6, audit_record.load_sample())
    module = audit_bench.module_counts(audit_bench.run_module(os.path.join(ROOT, ".venv", "bin"), path, str(tmp_path),
                                                              max_entries=100000)["report"])
    jq = audit_bench.jq_counts(audit_bench.run_jq(audit_bench.find_jq(), path)["counts"])
    assert module["denied"] > 0 and module["forwarded"] > 0 and len(module["identities"]) > 50
    assert module == jq


def test_jq_that_cannot_be_installed_is_reported_and_the_module_measured_alone(monkeypatch, tmp_path):
    monkeypatch.setattr(audit_bench, "find_jq", lambda: None)
    calls, messages = [], []
    monkeypatch.setattr(audit_bench.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or argparse.Namespace(
        returncode=100, stderr="E: Unable to locate package jq"))
    audit = audit_bench.run_audit(None, str(tmp_path), os.path.join(ROOT, ".venv", "bin"), [0.2], messages.append)
    assert calls[0][-4:] == ["install", "-y", "-q", "jq"] and any("jq not installed" in m for m in messages)
    assert [s["tool"] for s in audit["samples"]] == ["module"] and audit["jq"] is None
    assert any("jq is missing" in note for note in audit["notes"]) and os.listdir(str(tmp_path)) == ["audit-args.json"]
