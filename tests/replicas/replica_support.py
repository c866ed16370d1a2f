"""Two `tapwire server` replicas on a fresh database of the run's PostgreSQL
(tests/conftest.py) reached over verified TLS, sharing one master key."""
import time

from tapwire_support import Server


class Replicas:
    def __init__(self, postgres, tmp_path):
        self.postgres = postgres
        self.url = postgres.database(tls=True)
        self.database = self.url.split("?")[0].rsplit("/", 1)[1]
        self.master_key = tmp_path / "master.key"
        self.servers = [self.make(tmp_path / name, name) for name in ("a", "b")]
        self.a, self.b = self.servers

    def make(self, data_dir, name):
        # Each replica's sessions carry its name, so a test can find them in pg_stat_activity.
        url = f"{self.url}&application_name=tapwire-{name}"
        return Server(data_dir, extra_args=["--store", url, "--master-key", str(self.master_key)])

    def deafen(self, name):
        """Ends replica `name`'s LISTEN session: for the next second or so (until it opens a
        new one and its wait for word runs out) it hears of no other replica's commit, so
        only a request of its own catches it up."""
        listener = ("SELECT pid FROM pg_stat_activity WHERE application_name = 'tapwire-{}' "
                    "AND (query LIKE 'LISTEN%' OR query LIKE '%pg_try_advisory_lock%')").format(name)
        deadline = time.monotonic() + 10
        while not (pids := self.postgres.sql(listener, database=self.database).split()):
            assert time.monotonic() < deadline, f"replica {name} has no LISTEN session"
            time.sleep(0.05)
        assert len(pids) == 1, pids
        self.postgres.sql(f"SELECT pg_terminate_backend({pids[0]})", database=self.database)

    def start(self):
        self.a.start()
        # The first replica made the root key; the second serves the same accounts.
        self.b.start()
        self.b.root = self.a.root
        return self

    def stop(self):
        for s in self.servers:
            s.stop()
