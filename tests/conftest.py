"""Puts tests/ on the import path, so every suite shares tapwire_support; the one
PostgreSQL cluster of a run, started the first time a test asks for it."""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def postgres():
    from postgres_support import Postgres
    pg = Postgres()
    yield pg
    pg.close()


def pytest_configure(config):
    config.addinivalue_line("markers", "one_process: what it checks is a single process's (not run on replicas)")
    # TAPWIRE_TEST_REPLICAS=1: the client suites again, each server two replicas on one
    # PostgreSQL behind a balancer (tapwire_support.Server).
    if os.environ.get("TAPWIRE_TEST_REPLICAS") == "1":
        import tapwire_support
        from postgres_support import Postgres
        tapwire_support.REPLICA_CLUSTER = Postgres()
        config.add_cleanup(tapwire_support.REPLICA_CLUSTER.close)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("TAPWIRE_TEST_REPLICAS") == "1":
        kept = [item for item in items if "one_process" not in item.keywords]
        config.hook.pytest_deselected(items=[item for item in items if "one_process" in item.keywords])
        items[:] = kept
