"""Fixtures of the operations tests (what an operator sees: logs, /metrics, the CLI's
times and completions): a server with JSON log lines, and its root key."""
import pytest

from tapwire_support import Server


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "data", extra_args=["--log-format", "json"]).start()
    yield srv
    srv.stop()
