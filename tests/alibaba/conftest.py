"""Fixtures for the Alibaba integration tests (helpers live in alibaba_support.py)."""
import pytest

from alibaba_support import Server


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "data").start()
    yield srv
    srv.stop()


@pytest.fixture
def tea(server):
    """A Tea client with the service opened in REGION."""
    client = server.tea()
    client("OpenTrafficMirrorService")
    return client


@pytest.fixture
def legacy(server):
    """A legacy client with the service opened in REGION."""
    client = server.legacy()
    client("OpenTrafficMirrorService")
    return client
