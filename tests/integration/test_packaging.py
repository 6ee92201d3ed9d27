"""`ansible-galaxy collection build` produces a tarball that installs and works."""

import json
import os
import subprocess
import tarfile

from heracles_testlib import ROOT, env

BIN = os.path.dirname(os.sys.executable)


def test_built_tarball_installs_and_runs_a_module(cluster, tmp_path):
    out = tmp_path / "dist"
    proc = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(out), ROOT],
                          capture_output=True, text=True, env=env(), cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    tarballs = list(out.glob("heracles-secrets-*.tar.gz"))
    assert len(tarballs) == 1
    names = tarfile.open(str(tarballs[0])).getnames()
    assert "plugins/modules/vault_init.py" in names and "meta/runtime.yml" in names
    assert not [n for n in names if n.startswith((".venv", ".local", ".collections", "build/"))], names[:20]
    # what Galaxy users install, nothing of this repository's own deployment or test data
    top = sorted({n.split("/", 1)[0] for n in names})
    assert set(top) <= {"plugins", "roles", "playbooks", "meta", "docs", "tests", "changelogs", "README.md",
                        "CHANGELOG.md", "MANIFEST.json", "FILES.json", "LICENSE", "COPYING"}, top
    assert {"plugins", "roles", "playbooks", "meta", "docs", "changelogs"} <= set(top)
    assert os.path.getsize(str(tarballs[0])) < 700 * 1024, os.path.getsize(str(tarballs[0]))

    dest = tmp_path / "installed"
    proc = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", str(tarballs[0]),
                           "-p", str(dest), "--force"], capture_output=True, text=True,
                          env=env({"ANSIBLE_COLLECTIONS_PATH": str(dest)}), cwd=str(tmp_path), check=False)
    assert proc.returncode == 0, proc.stderr
    assert (dest / "ansible_collections/heracles/secrets/plugins/modules/vault_status_info.py").exists()

    args = dict(url=cluster.url, nodes=cluster.urls[1:], ca_cert=cluster.ca_cert, auth_method="init_file",
                init_file=cluster.init_file, init_file_password_file=cluster.password_file)
    run_env = env({"ANSIBLE_COLLECTIONS_PATH": str(dest), "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
                   "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal"})
    run_env.pop("PYTHONPATH", None)
    proc = subprocess.run([os.path.join(BIN, "ansible"), "localhost", "-c", "local", "-i", "localhost,",
                           "-e", "ansible_python_interpreter=" + os.sys.executable,
                           "-m", "heracles.secrets.vault_status_info", "-a", json.dumps(args)],
                          capture_output=True, text=True, env=run_env, cwd=str(tmp_path), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"voters": [' in proc.stdout and '"node1"' in proc.stdout
    assert cluster.root_token not in proc.stdout
