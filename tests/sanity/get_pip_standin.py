"""Offline stand-in for ansible-test's cached get-pip script (see ../shared/TOOLING.md).

ansible-test bootstraps pip in each sanity venv by downloading get-pip; it first looks for
~/.ansible/test/cache/get_pip_24_2.py.  `make sanity` installs this file there, next to a
pip 24.2 wheel fetched from PyPI, so the bootstrap needs no other host.
"""
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
WHEEL = sorted(glob.glob(os.path.join(HERE, "pip-24.2-*.whl")))[-1]
sys.path.insert(0, WHEEL)

from pip._internal.cli.main import main  # noqa: E402

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--find-links", HERE] + (args or ["pip==24.2"])))
