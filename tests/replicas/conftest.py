"""Fixtures of the replica tests: per test two `tapwire server` replicas on a fresh
database of the run's PostgreSQL (tests/conftest.py), sharing one master key."""
import pytest

from replica_support import Replicas


@pytest.fixture
def replicas(postgres, tmp_path):
    r = Replicas(postgres, tmp_path).start()
    yield r
    r.stop()
