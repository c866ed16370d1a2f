"""Shared code of the EC2 integration tests: a real `tapwire server` on loopback
(tapwire_support.Server), with the root key every client signs with unless told otherwise.
"""
import botocore.exceptions
import pytest

from tapwire_support import BIN, EC2_REGION as REGION, Key, Server, free_port  # noqa: F401


def env(server, key=None, **extra):
    """The environment of a CLI that signs with `key` (default: the server's root key)."""
    return server.key(key).env(REGION, **extra)


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
