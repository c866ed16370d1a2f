"""A real PostgreSQL for the tests: Debian's server binaries, a cluster made in a temporary
directory and run as the unprivileged `postgres` user on a loopback port, removed
afterwards. Each test gets a database of its own."""
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tapwire_support import free_port

_databases = itertools.count(1)


def bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    assert found, "PostgreSQL's server is not installed (scripts/test installs the postgresql package)"
    return Path(found[-1]).parent


class Postgres:
    """One cluster; `database()` makes a fresh database and returns its URL."""

    def __init__(self):
        self.user = pwd.getpwnam("postgres")
        self.bin = bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="tw-pg-"))
        os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.data = self.dir / "data"
        self.port = free_port()
        self.log = self.dir / "server.log"
        self.as_postgres(self.bin / "initdb", "-D", self.data, "-U", "tapwire", "-A", "trust", "--no-sync")
        self.start()

    def as_postgres(self, *argv, check=True):
        cmd = ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}", "--init-groups",
               *map(str, argv)]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120, cwd=self.dir)

    def start(self):
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c max_connections=200"
        self.as_postgres(self.bin / "pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "start")

    def stop(self, mode="fast"):
        self.as_postgres(self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)

    def sql(self, statement, database="postgres"):
        return self.as_postgres(self.bin / "psql", "-h", "127.0.0.1", "-p", self.port, "-U", "tapwire", "-d",
                                database, "-v", "ON_ERROR_STOP=1", "-At", "-c", statement).stdout

    def database(self):
        """A new, empty database's URL."""
        name = f"tapwire_{next(_databases)}"
        self.sql(f"CREATE DATABASE {name}")
        return f"postgres://tapwire@127.0.0.1:{self.port}/{name}"

    def close(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
