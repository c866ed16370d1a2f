"""Helpers of the identity tests: error codes from each client, and what the store holds."""
import botocore.exceptions
import pytest
from botocore.config import Config

from alibaba_clients import AlibabaError

# One attempt per call: a refused signature must be seen as the server answered it.
ONCE = Config(retries={"total_max_attempts": 1})


def ec2_error(fn, *args, **kwargs):
    """(code, HTTP status) of a boto3 call that must fail."""
    with pytest.raises(botocore.exceptions.ClientError) as info:
        fn(*args, **kwargs)
    err = info.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def ali_error(call, *args, **kwargs):
    """(code, HTTP status) of an Alibaba SDK call that must fail."""
    with pytest.raises(AlibabaError) as info:
        call(*args, **kwargs)
    return info.value.code, info.value.status


def everything(server):
    """All the root account sees in both dialects: to show a refusal changed nothing."""
    ec2 = server.ec2()
    return (ec2.describe_traffic_mirror_filters()["TrafficMirrorFilters"],
            ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"],
            ec2.describe_traffic_mirror_targets()["TrafficMirrorTargets"],
            ec2.describe_network_interfaces()["NetworkInterfaces"])
