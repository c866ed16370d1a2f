"""Helpers of the Alibaba integration tests: a real `tapwire server` on loopback, driven by
the unmodified Alibaba SDKs (the Tea SDK and the legacy core SDK) and boto3.

The binary comes from $TAPWIRE_BIN or target/debug/tapwire. The module has its own name
(not `conftest`) so that tests/ec2 and tests/alibaba can be collected in one run.
"""
import importlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from alibabacloud_tea_openapi import models as openapi_models
from alibabacloud_vpc20160428 import models as tea_models
from alibabacloud_vpc20160428.client import Client as TeaClient
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("TAPWIRE_BIN", str(ROOT / "target" / "debug" / "tapwire"))
REGION = "cn-hangzhou"
ACCESS_KEY = "LTAItapwiretest"
SECRET = "secret"
# Short enough for fast tests, long enough to see the transitional status.
TASK_DELAY_MS = 500


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class AlibabaError(Exception):
    """An error answer, whichever SDK received it."""

    def __init__(self, code, status, message):
        super().__init__(f"{code} ({status}): {message}")
        self.code, self.status, self.message = code, status, message


class Tea:
    """Calls actions through the Tea SDK with wire-named parameters; returns the body map."""

    def __init__(self, endpoint, region=REGION):
        self.region = region
        self.client = TeaClient(openapi_models.Config(
            access_key_id=ACCESS_KEY, access_key_secret=SECRET, endpoint=endpoint, protocol="http",
            region_id=region))

    def __call__(self, action, region=True, **params):
        if region is True:
            params.setdefault("RegionId", self.region)
        elif region:
            params["RegionId"] = region
        request = getattr(tea_models, f"{action}Request")().from_map(params)
        try:
            return getattr(self.client, snake(action))(request).body.to_map()
        except Exception as e:  # the Tea SDK raises its own exception types
            data = getattr(e, "data", None) or {}
            if not getattr(e, "code", None):
                raise
            raise AlibabaError(e.code, data.get("statusCode"), data.get("Message")) from e


class Legacy:
    """Calls actions through aliyun-python-sdk-vpc request classes and their setters."""

    def __init__(self, endpoint, region=REGION):
        self.endpoint = endpoint
        self.client = AcsClient(ACCESS_KEY, SECRET, region)

    def __call__(self, action, **params):
        module = importlib.import_module(f"aliyunsdkvpc.request.v20160428.{action}Request")
        request = getattr(module, f"{action}Request")()
        for key, value in params.items():
            names = [f"set_{key}s", f"set_{key}"] if isinstance(value, list) else [f"set_{key}"]
            setter = next(getattr(request, n) for n in names if hasattr(request, n))
            setter(value)
        request.set_endpoint(self.endpoint)
        request.set_protocol_type("http")
        try:
            return json.loads(self.client.do_action_with_exception(request))
        except ServerException as e:
            raise AlibabaError(e.get_error_code(), e.get_http_status(), e.get_error_msg()) from e


def error_of(call, *args, **kwargs):
    """Runs a call that must fail; returns (code, HTTP status)."""
    with pytest.raises(AlibabaError) as info:
        call(*args, **kwargs)
    return info.value.code, info.value.status


class Server:
    """One `tapwire server` process over one data directory."""

    def __init__(self, data_dir, task_delay_ms=TASK_DELAY_MS, extra_args=()):
        self.data_dir = data_dir
        self.port = free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.endpoint}"
        self.task_delay_ms = task_delay_ms
        self.extra_args = list(extra_args)
        self.proc = None

    def start(self, task_delay_ms=None):
        if task_delay_ms is not None:
            self.task_delay_ms = task_delay_ms
        self.proc = subprocess.Popen(
            [BIN, "server", "--listen", self.endpoint, "--data-dir", str(self.data_dir),
             "--alibaba-task-delay-ms", str(self.task_delay_ms), *self.extra_args],
            stderr=subprocess.PIPE, text=True,
        )
        line = self.proc.stderr.readline()
        assert "listening on" in line, f"server did not start: {line!r}"
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None

    def tea(self, region=REGION):
        return Tea(self.endpoint, region)

    def legacy(self, region=REGION):
        return Legacy(self.endpoint, region)

    def ec2(self, region=REGION):
        return boto3.client("ec2", endpoint_url=self.url, region_name=region,
                            aws_access_key_id="AKIDTAPWIRETEST", aws_secret_access_key=SECRET)

    def register(self, ip, instance_id=None, ifname="eth0"):
        """Registers an interface with the CLI; returns its eni- ID."""
        args = [BIN, "interface", "register", "--server", self.url, "--ip", ip, "--ifname", ifname]
        if instance_id:
            args += ["--instance-id", instance_id]
        out = subprocess.run(args, capture_output=True, text=True, check=True)
        return json.loads(out.stdout)["NetworkInterfaceId"]

    def register_free(self, ip):
        """Registers an interface on no host and no instance (a "free" interface)."""
        body = json.dumps({"host": None, "ifname": None, "instance_id": None, "mac": None,
                           "addresses": [ip]}).encode()
        req = urllib.request.Request(f"{self.url}/tapwire/v1/network-interfaces", data=body,
                                     headers={"content-type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())["id"]


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
