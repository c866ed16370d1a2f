"""A real PostgreSQL for the tests: Debian's server binaries, a cluster made in a temporary
directory and run as the unprivileged `postgres` user on a loopback port, removed
afterwards. Each test gets a database of its own. The server speaks TLS too, with a
certificate of a CA made here: `database(tls=True)` asks for it, verified."""
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
        self.ca = self.make_certificates()
        self.start()

    def make_certificates(self):
        """A CA and the server's certificate for 127.0.0.1 (key readable by postgres only)."""
        tls = self.dir / "tls"
        tls.mkdir()

        def openssl(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tls, timeout=60)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=tapwire test CA")
        openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
        (tls / "san.ext").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
        for name in ("server.key", "server.pem"):
            os.chown(tls / name, self.user.pw_uid, self.user.pw_gid)
        os.chmod(tls / "server.key", 0o600)
        os.chmod(self.dir, 0o755)
        return tls / "ca.pem"

    def as_postgres(self, *argv, check=True):
        cmd = ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}", "--init-groups",
               *map(str, argv)]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120, cwd=self.dir)

    def start(self):
        tls = self.dir / "tls"
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c max_connections=300 -c ssl=on "
                   f"-c ssl_cert_file={tls / 'server.pem'} -c ssl_key_file={tls / 'server.key'}")
        self.as_postgres(self.bin / "pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "start")

    def stop(self, mode="fast"):
        self.as_postgres(self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)

    def sql(self, statement, database="postgres"):
        return self.as_postgres(self.bin / "psql", "-h", "127.0.0.1", "-p", self.port, "-U", "tapwire", "-d",
                                database, "-v", "ON_ERROR_STOP=1", "-At", "-c", statement).stdout

    def database(self, tls=False):
        """A new, empty database's URL; with `tls`, over TLS verified against the CA."""
        name = f"tapwire_{next(_databases)}"
        self.sql(f"CREATE DATABASE {name}")
        url = f"postgres://tapwire@127.0.0.1:{self.port}/{name}"
        return f"{url}?sslmode=verify-full&sslrootcert={self.ca}" if tls else url

    def connections(self, url):
        """(encrypted, plain) counts of the sessions open on `url`'s database."""
        name = url.split("?")[0].rsplit("/", 1)[1]
        rows = self.sql("SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                        f"WHERE a.datname = '{name}'").split()
        return rows.count("t"), rows.count("f")

    def close(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
