# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit report by the gigabyte: ``vault_audit_report`` vs jq over the same generated audit log.

For each size, ``audit_gen`` writes a log of that size from recorded lines (the bench's own cluster, else
``data/audit-sample.jsonl``) into the work directory; the module runs on it as Ansible runs it on a host (one
python process) and jq runs ``JQ_PROGRAM`` on it, in alternating order; each is one fresh process whose peak RSS
is its VmHWM, polled. The file is deleted before the next size. ``audit_summary`` turns the samples
into the table and the targets.

    .venv/bin/python benchmarks/audit_bench.py [--sizes 25,50] [--sample benchmarks/data/audit-sample.jsonl]

runs the measurement alone, on the committed sample, and prints the Markdown (``--out DIR``: also audit.json,
audit.md and the chart there).
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import audit_gen  # noqa: E402
import audit_record  # noqa: E402
import audit_summary  # noqa: E402
import methods  # noqa: E402
from methods import ROOT, BenchError  # noqa: E402

MODULE = "ansible_collections.heracles.secrets.plugins.modules.vault_audit_report"
FULL_SIZES_MB = [100, 250, 500, 1000]
QUICK_SIZES_MB = [50, 75, 100]

# What jq counts, as close to the module as jq reasonably gets without keeping every request id (which would not
# keep its memory flat): every ``request`` line is one request (+1 to requests, its operation, its identity --
# display_name, "(unauthenticated)" without one, plus " (entity_id)" when there is one, as the module writes it --
# and its path, as logged: jq does not redact token-looking segments); a ``response`` line whose error says
# "cannot write to readonly storage" is a standby's entry of a forwarded write: -1 to the same keys, +1 to
# forwarded; "permission denied" in a request line's error is a denied request. The module instead pairs both
# lines by request.id (a request with only a response line, or an error only on its response line, counts there
# too). On logs where every request has both lines and a denial shows on both -- what OpenBao writes, and what
# audit_gen writes -- the counts are the same. A line that is not JSON stops jq; the module counts it and goes on.
JQ_PROGRAM = r"""
reduce (inputs
        | select(.type == "request"
                 or (.type == "response" and (.error // "" | ascii_downcase | contains("cannot write to readonly storage"))))
        | [(if .type == "request" then 1 else -1 end),
           (.error // "" | ascii_downcase | contains("permission denied")),
           (.request.operation // ""),
           ((.auth.display_name // "" | if . == "" then "(unauthenticated)" else . end)
            + (.auth.entity_id // "" | if . == "" then "" else " (" + . + ")" end)),
           (.request.path // "")]) as [$by, $denied, $op, $id, $path]
  ({requests: 0, forwarded: 0, denied: 0, operations: {}, identities: {}, paths: {}};
   .requests += $by
   | if $by < 0 then .forwarded += 1 elif $denied then .denied += 1 else . end
   | .operations[$op] += $by
   | .identities[$id] += $by
   | .paths[$path] += $by)
"""


# ---------------------------------------------------------------------------------------------- jq
def find_jq():
    return shutil.which("jq") or (os.path.exists("/usr/bin/jq") and "/usr/bin/jq") or None


def ensure_jq(log):
    """jq, installed with apt-get (Debian's package) when missing; None when that is not possible."""
    jq = find_jq()
    if jq:
        return jq
    apt = ["apt-get", "install", "-y", "-q", "jq"]
    if os.geteuid() != 0:
        apt = ["sudo", "-n"] + apt
    log("jq is missing: %s" % " ".join(apt))
    try:
        proc = subprocess.run(apt, capture_output=True, text=True, timeout=600, check=False,
                              env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if proc.returncode != 0:
            log("jq not installed: %s" % proc.stderr.strip()[-500:])
    except (OSError, subprocess.TimeoutExpired) as exc:
        log("jq not installed: %s" % exc)
    return find_jq()


# ---------------------------------------------------------------------------------------------- one process
def _hwm_mb(pid, cmdline):
    """VmHWM of ``pid`` once it runs ``cmdline`` (before its exec the numbers are the parent's), else None."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            if handle.read() != cmdline:
                return None
        with open("/proc/%d/status" % pid) as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return None


def measure(cmd, stdin_path=None, env=None, timeout=3600):
    """Run ``cmd`` (stdin from a file); wall and CPU seconds, peak RSS in MB, stdout. The peak is VmHWM polled every
    10 ms (``ru_maxrss`` would include the forking parent's)."""
    cmdline = b"".join(part.encode() + b"\0" for part in cmd)
    rss = 0.0
    with open(stdin_path or os.devnull, "rb") as stdin, tempfile.TemporaryFile() as out, \
            tempfile.TemporaryFile() as err:
        started = time.time()
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=out, stderr=err, cwd=ROOT, env=env)  # pylint: disable=consider-using-with
        while True:
            rss = max(rss, _hwm_mb(proc.pid, cmdline) or 0.0)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.time() > started + timeout:
                proc.kill()
            time.sleep(0.01)
        seconds = time.time() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return dict(seconds=seconds, cpu_seconds=usage.ru_utime + usage.ru_stime, rss_mb=rss, rc=proc.returncode,
                    stdout=out.read().decode("utf-8", "replace"), stderr=err.read().decode("utf-8", "replace")[-2000:])


def run_module(ours_bin, log_path, workdir, max_entries=100):
    """The module over ``log_path`` (one python process, as Ansible runs it); the measurement and its report."""
    args_file = os.path.join(workdir, "audit-args.json")
    with open(args_file, "w") as handle:
        json.dump(dict(ANSIBLE_MODULE_ARGS=dict(paths=[log_path], max_entries=max_entries, _ansible_check_mode=False,
                                                _ansible_diff=False)), handle)
    out = measure([os.path.join(ours_bin, "python"), "-m", MODULE], args_file, methods.subprocess_env())
    lines = out["stdout"].strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    if out["rc"] != 0 or result.get("failed"):
        raise BenchError("vault_audit_report failed: %s %s" % (result.get("msg"), out["stderr"]))
    out["report"] = result["report"]
    return out


def run_jq(jq, log_path):
    out = measure([jq, "-n", "-c", JQ_PROGRAM, log_path])
    if out["rc"] != 0:
        raise BenchError("jq failed: %s" % out["stderr"])
    out["counts"] = json.loads(out["stdout"])
    return out


def jq_counts(counts):
    """jq's counts without the keys whose requests cancelled out (a forwarded write's standby entry)."""
    return dict(counts, identities=dict((k, v) for k, v in counts["identities"].items() if v),
                paths=dict((k, v) for k, v in counts["paths"].items() if v))


def module_counts(report):
    """The module's report as jq's counts (identities and paths: only those listed)."""
    return dict(requests=report["requests"], forwarded=report["forwarded"], denied=report["denied"]["count"],
                operations=report["operations"], identities=dict((r["identity"], r["requests"]) for r in report["identities"]),
                paths=dict((r["path"], r["requests"]) for r in report["paths"]))


def totals(counts):
    return dict((key, counts[key]) for key in ("requests", "forwarded", "denied", "operations"))


# ---------------------------------------------------------------------------------------------- the run
def recorded_lines(cluster, log):
    """Lines recorded on the bench's own cluster (``cluster``: a bench.UpCluster), else the committed sample."""
    if cluster is not None:
        try:
            target = cluster.target
            lines = audit_record.record(target.urls, target.leader(), target.ca_cert, target.token, cluster.base_dir)
            if lines:
                return lines, "recorded on the bench cluster (%d lines)" % len(lines)
        except Exception as exc:  # noqa: BLE001  pylint: disable=broad-except
            log("audit lines not recorded (%s): the committed sample is used" % exc)
    return audit_record.load_sample(), "benchmarks/data/audit-sample.jsonl"


def measure_size(workdir, ours_bin, jq, lines, size_mb, order, log):
    path = os.path.join(workdir, "audit-%dmb.log" % size_mb)
    try:
        written, requests, nlines = audit_gen.generate(path, int(size_mb * 1e6), lines)
        samples = []
        for tool in order:
            if tool == "jq" and not jq:
                continue
            try:
                out = run_module(ours_bin, path, workdir) if tool == "module" else run_jq(jq, path)
            except BenchError as exc:
                if tool == "module":
                    raise
                log("audit        jq failed, not measured: %s" % exc)
                continue
            counts = totals(module_counts(out["report"]) if tool == "module" else out["counts"])
            samples.append(dict(tool=tool, size_mb=round(written / 1e6, 1), lines=nlines, requests=requests,
                                seconds=round(out["seconds"], 3), cpu_seconds=round(out["cpu_seconds"], 3),
                                rss_mb=round(out["rss_mb"], 1), counts=counts,
                                bounds=out["report"].get("bounds") if tool == "module" else None))
            log("audit        %-6s %6.0f MB in %6.2f s (%5.1f MB/s, cpu %.2f s), peak RSS %.0f MB"
                % (tool, written / 1e6, out["seconds"], written / 1e6 / out["seconds"], out["cpu_seconds"],
                   out["rss_mb"]))
        return samples
    finally:
        if os.path.exists(path):
            os.unlink(path)


def measure_audit(workdir, ours_bin, sizes_mb, lines, log, jq=None):
    """Module and jq at every size (order alternating per size); the samples."""
    samples = []
    for index, size_mb in enumerate(sizes_mb):
        order = ["module", "jq"] if index % 2 == 0 else ["jq", "module"]
        samples.extend(measure_size(workdir, ours_bin, jq, lines, size_mb, order, log))
    return samples


def run_audit(cluster, workdir, ours_bin, sizes_mb, log):
    """bench.py's audit block: jq (installed when missing), recorded lines, the samples and notes."""
    if not sizes_mb:
        return dict(samples=[], notes=[])
    jq = ensure_jq(log)
    lines, source = recorded_lines(cluster, log)
    notes = ["audit lines: %s" % source]
    if not jq:
        notes.append("jq is missing and could not be installed (apt-get install -y jq): only the module was measured")
    return dict(samples=measure_audit(workdir, ours_bin, sizes_mb, lines, log, jq=jq), notes=notes,
                jq=_jq_version(jq), openbao=recorded_version(lines))


def recorded_version(lines):
    """The OpenBao version that wrote the recorded lines (``mount_running_version``), or None."""
    for line in lines:
        match = re.search(r'"mount_running(?:_plugin)?_version":"v(\d+\.\d+\.\d+)', line)
        if match:
            return match.group(1)
    return None


def _jq_version(jq):
    if not jq:
        return None
    return subprocess.run([jq, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout.strip()


def draw_chart(json_path, out_dir, bench_bin, log, name="audit_report.png"):
    """chart_audit.py with the benchmark venv's python (matplotlib); the PNG's name, or None."""
    python = os.path.join(bench_bin, "python")
    if not os.path.exists(python):
        return None
    proc = subprocess.run([python, os.path.join(HERE, "chart_audit.py"), json_path, os.path.join(out_dir, name)],
                          capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        log("audit chart not drawn: %s" % proc.stderr[-2000:])
        return None
    return name


def write_results(audit, out_dir, bench_bin, log):
    """audit.json, the chart and audit.md in ``out_dir`` (a run of this file alone)."""
    os.makedirs(out_dir, exist_ok=True)
    meta = dict(started=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), cpus=os.cpu_count(), quick=False)
    json_path = os.path.join(out_dir, "audit.json")
    with open(json_path, "w") as handle:
        json.dump(dict(meta=meta, audit=audit, summary=audit_summary.summarize(audit)), handle, indent=1, sort_keys=True)
        handle.write("\n")
    chart = draw_chart(json_path, out_dir, bench_bin, log)
    text = audit_summary.markdown(audit, chart=chart)
    with open(os.path.join(out_dir, "audit.md"), "w") as handle:
        handle.write(text.lstrip("\n").replace("## ", "# ", 1))
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--sizes", default="25,50", help="comma-separated sizes in MB")
    parser.add_argument("--sample", default=audit_record.SAMPLE)
    parser.add_argument("--ours-bin", default=os.path.join(ROOT, ".venv", "bin"))
    parser.add_argument("--bench-bin", default=os.path.join(ROOT, ".venv-bench", "bin"))
    parser.add_argument("--out", help="also write audit.json, audit.md and audit_report.png here")
    args = parser.parse_args(argv)
    sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    jq = find_jq()
    workdir = tempfile.mkdtemp(prefix="heracles-audit-bench-")

    def log(message):
        sys.stderr.write(message + "\n")

    lines = audit_record.load_sample(args.sample)
    try:
        samples = measure_audit(workdir, args.ours_bin, sizes, lines, log, jq=jq)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    audit = dict(samples=samples, notes=["audit lines: %s" % os.path.relpath(args.sample, ROOT)], jq=_jq_version(jq),
                 openbao=recorded_version(lines))
    print(write_results(audit, args.out, args.bench_bin, log) if args.out else audit_summary.markdown(audit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
