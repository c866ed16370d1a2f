"""Fixtures of the identity tests: a server with authentication on (the default), its root
key, and helpers shared by the files here (identity_support)."""
import pytest

from tapwire_support import Server


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "data").start()
    yield srv
    srv.stop()
