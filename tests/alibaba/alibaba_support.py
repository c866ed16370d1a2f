"""Helpers of the Alibaba integration tests: a real `tapwire server` on loopback
(tapwire_support.Server), driven by the unmodified Alibaba SDKs (the Tea SDK and the legacy
core SDK) and boto3, all signing with a real key (the root key unless told otherwise; the
same pair is AccessKeyId / AccessKeySecret here and an AWS key pair for boto3).

The module has its own name (not `conftest`) so that tests/ec2 and tests/alibaba can be
collected in one run.
"""
import time

import tapwire_support
from alibaba_clients import REGION, AlibabaError, Legacy, Tea, error_of  # noqa: F401
from tapwire_support import BIN, Key  # noqa: F401

# Short enough for fast tests, long enough to see the transitional status.
TASK_DELAY_MS = 500


class Server(tapwire_support.Server):
    """`tapwire server` with a short Alibaba task delay, and the Alibaba clients."""

    def __init__(self, data_dir, task_delay_ms=TASK_DELAY_MS, extra_args=()):
        super().__init__(data_dir, extra_args)
        self.task_delay_ms = task_delay_ms

    def start(self, task_delay_ms=None):
        if task_delay_ms is not None:
            self.task_delay_ms = task_delay_ms
        return super().start()

    def argv(self):
        return [*super().argv(), "--alibaba-task-delay-ms", str(self.task_delay_ms)]

    def tea(self, region=REGION, key=None):
        return Tea(self.endpoint, self.key(key), region)

    def legacy(self, region=REGION, key=None):
        return Legacy(self.endpoint, self.key(key), region)

    def ec2(self, key=None, region=REGION, config=None):
        return super().ec2(key=key, region=region, config=config)

    def register_free(self, ip, key=None):
        """Registers an interface on no host and no instance (a "free" interface)."""
        status, body = self.v1("POST", "/tapwire/v1/network-interfaces", key=key,
                               body={"host": None, "ifname": None, "instance_id": None, "mac": None,
                                     "addresses": [ip]})
        assert status == 200, body
        return body["id"]


def wait_for(fetch, predicate, timeout=10.0):
    """Polls fetch() until predicate(value) holds; returns the value."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if predicate(value):
            return value
        assert time.monotonic() < deadline, f"timed out; last value: {value!r}"
        time.sleep(0.05)


def filters(client, **params):
    return client("ListTrafficMirrorFilters", **params)["TrafficMirrorFilters"]


def sessions(client, **params):
    return client("ListTrafficMirrorSessions", **params)["TrafficMirrorSessions"]


def filter_status(client, filter_id):
    found = filters(client, TrafficMirrorFilterIds=[filter_id])
    return found[0]["TrafficMirrorFilterStatus"] if found else None


def session_status(client, session_id):
    found = sessions(client, TrafficMirrorSessionIds=[session_id])
    return found[0]["TrafficMirrorSessionStatus"] if found else None


def wait_filter(client, filter_id, status="Created"):
    return wait_for(lambda: filter_status(client, filter_id), lambda s: s == status)


def wait_session(client, session_id, status="Created"):
    return wait_for(lambda: session_status(client, session_id), lambda s: s == status)


def rule(priority=1, protocol="TCP", action="accept", **extra):
    r = {"Action": action, "Priority": priority, "Protocol": protocol,
         "SourceCidrBlock": "10.0.0.0/8", "DestinationCidrBlock": "0.0.0.0/0"}
    r.update(extra)
    return r
