"""Two `tapwire server` replicas on a fresh database of the run's PostgreSQL
(tests/conftest.py) reached over verified TLS, sharing one master key."""
from tapwire_support import Server


class Replicas:
    def __init__(self, postgres, tmp_path):
        self.url = postgres.database(tls=True)
        self.master_key = tmp_path / "master.key"
        self.servers = [self.make(tmp_path / name) for name in ("a", "b")]
        self.a, self.b = self.servers

    def make(self, data_dir):
        return Server(data_dir, extra_args=["--store", self.url, "--master-key", str(self.master_key)])

    def start(self):
        self.a.start()
        # The first replica made the root key; the second serves the same accounts.
        self.b.start()
        self.b.root = self.a.root
        return self

    def stop(self):
        for s in self.servers:
            s.stop()
