"""Shared code of the EC2 integration tests: a real `tapwire server` on loopback.

The binary comes from $TAPWIRE_BIN or target/debug/tapwire (the test script builds it).
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import botocore.exceptions
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("TAPWIRE_BIN", str(ROOT / "target" / "debug" / "tapwire"))
REGION = "us-east-1"
ENV = {
    **os.environ,
    "AWS_ACCESS_KEY_ID": "AKIDTAPWIRETEST",
    "AWS_SECRET_ACCESS_KEY": "secret",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_PAGER": "",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `tapwire server` process over one data directory."""

    def __init__(self, data_dir, extra_args=(), preexec_fn=None):
        self.data_dir = data_dir
        self.preexec_fn = preexec_fn
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args = list(extra_args)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [BIN, "server", "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir), *self.extra_args],
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=self.preexec_fn,
        )
        line = self.proc.stderr.readline()
        assert "listening on" in line, f"server did not start: {line!r}"
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self, sig=signal.SIGTERM):
        self.stop(sig)
        return self.start()

    def ec2(self):
        return boto3.client("ec2", endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id="AKIDTAPWIRETEST", aws_secret_access_key="secret")

    def aws(self, *args, check=True):
        """Runs the aws CLI; returns (exit code, parsed JSON or stderr text)."""
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "aws"), "ec2", "--endpoint-url", self.url, "--output", "json", *args],
            capture_output=True, text=True, env=ENV, timeout=60,
        )
        if check:
            assert proc.returncode == 0, f"aws {' '.join(args)} failed: {proc.stderr}"
            return json.loads(proc.stdout) if proc.stdout.strip() else {}
        return proc.returncode, proc.stderr

    def register(self, ip, instance_id=None, ifname="eth0", host=None, extra_ips=()):
        args = [BIN, "interface", "register", "--server", self.url, "--ip", ip, "--ifname", ifname]
        for extra in extra_ips:
            args += ["--ip", extra]
        if instance_id:
            args += ["--instance-id", instance_id]
        if host:
            args += ["--host", host]
        out = subprocess.run(args, capture_output=True, text=True, check=True)
        return json.loads(out.stdout)["NetworkInterfaceId"]

def error_code(fn, *args, **kwargs):
    """Calls fn, which must fail with a ClientError; returns (code, HTTP status)."""
    with pytest.raises(botocore.exceptions.ClientError) as info:
        fn(*args, **kwargs)
    err = info.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def rule(ec2, filter_id, number, direction="ingress", action="accept", **extra):
    args = dict(TrafficMirrorFilterId=filter_id, TrafficDirection=direction, RuleNumber=number,
                RuleAction=action, SourceCidrBlock="0.0.0.0/0", DestinationCidrBlock="0.0.0.0/0")
    args.update(extra)
    return ec2.create_traffic_mirror_filter_rule(**args)["TrafficMirrorFilterRule"]


def lab(server, ec2):
    """A source interface, a target interface, a filter and a target."""
    src = server.register("198.18.0.2", instance_id="i-source1", host="web1")
    dst = server.register("198.18.1.2", instance_id="i-sensor1", host="sensor1")
    flt = ec2.create_traffic_mirror_filter(Description="lab")["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    tgt = ec2.create_traffic_mirror_target(NetworkInterfaceId=dst)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    return src, dst, flt, tgt
