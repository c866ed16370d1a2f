"""Fixtures for the EC2 integration tests (shared code lives in ec2_support)."""
import pytest

from ec2_support import Server


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "data").start()
    yield srv
    srv.stop()


@pytest.fixture
def ec2(server):
    return server.ec2()
