"""The EC2 calls automation makes around traffic mirroring: DescribeTags, tags on network
interfaces, DescribeNetworkInterfaces' filters, the request-ID header, and tag filters on
the traffic-mirror Describe calls. boto3 and the aws CLI, unmodified; the AWS SDK for
JavaScript v3 for the request ID."""
import http.client
import json
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ec2_support import env, error_code, lab, rule

JS = Path(__file__).resolve().parents[1] / "js"


def tag(ec2, resource, key, value):
    ec2.create_tags(Resources=[resource], Tags=[{"Key": key, "Value": value}])


def all_tags(ec2, **kwargs):
    out = []
    for page in ec2.get_paginator("describe_tags").paginate(**kwargs):
        out += page["Tags"]
    return out


def test_describe_tags_covers_every_resource_kind(server, ec2):
    src, dst, flt, tgt = lab(server, ec2)
    rid = rule(ec2, flt, 1)["TrafficMirrorFilterRuleId"]
    sid = ec2.create_traffic_mirror_session(NetworkInterfaceId=src, TrafficMirrorTargetId=tgt,
                                            TrafficMirrorFilterId=flt, SessionNumber=1)["TrafficMirrorSession"]["TrafficMirrorSessionId"]
    for resource in (flt, rid, sid, tgt, src):
        tag(ec2, resource, "team", "netsec")
    tag(ec2, sid, "env", "prod")
    tags = all_tags(ec2)
    assert {(t["ResourceId"], t["ResourceType"]) for t in tags} == {
        (flt, "traffic-mirror-filter"), (rid, "traffic-mirror-filter-rule"), (sid, "traffic-mirror-session"),
        (tgt, "traffic-mirror-target"), (src, "network-interface")}
    assert len(tags) == 6
    # Ordered by resource ID, then key.
    assert [(t["ResourceId"], t["Key"]) for t in tags] == sorted((t["ResourceId"], t["Key"]) for t in tags)
    by = lambda name, *values: all_tags(ec2, Filters=[{"Name": name, "Values": list(values)}])
    assert [t["Key"] for t in by("resource-id", sid)] == ["env", "team"]
    assert [t["ResourceId"] for t in by("resource-type", "network-interface")] == [src]
    assert {t["ResourceId"] for t in by("key", "te*")} == {flt, rid, sid, tgt, src}
    assert [t["Key"] for t in by("value", "p?od")] == ["env"]
    assert {t["ResourceId"] for t in by("tag:env", "prod")} == {sid}
    # Pages of 5 walk all 6 exactly once.
    first = ec2.describe_tags(MaxResults=5)
    assert len(first["Tags"]) == 5 and first["NextToken"]
    rest = ec2.describe_tags(MaxResults=5, NextToken=first["NextToken"])
    assert len(rest["Tags"]) == 1 and not rest.get("NextToken")
    # The aws CLI paginates it itself.
    cli = server.aws("describe-tags", "--filters", "Name=resource-type,Values=traffic-mirror-session")
    assert [t["Key"] for t in cli["Tags"]] == ["env", "team"]
    code, _ = error_code(ec2.describe_tags, Filters=[{"Name": "owner", "Values": ["x"]}])
    assert code == "InvalidFilter"


def test_terraform_aws_ec2_tag_on_a_session_and_an_interface(server, ec2):
    """The calls terraform-provider-aws makes for aws_ec2_tag: CreateTags, then DescribeTags
    filtered by resource-id and key (read after create, on refresh, on import), CreateTags
    with a new value (update), DeleteTags with key and value (destroy)."""
    src, _, flt, tgt = lab(server, ec2)
    sid = ec2.create_traffic_mirror_session(NetworkInterfaceId=src, TrafficMirrorTargetId=tgt,
                                            TrafficMirrorFilterId=flt, SessionNumber=1)["TrafficMirrorSession"]["TrafficMirrorSessionId"]
    for resource in (sid, src):
        def find():
            return all_tags(ec2, Filters=[{"Name": "resource-id", "Values": [resource]},
                                          {"Name": "key", "Values": ["Name"]}])
        ec2.create_tags(Resources=[resource], Tags=[{"Key": "Name", "Value": "mirror"}])
        assert [(t["ResourceId"], t["Key"], t["Value"]) for t in find()] == [(resource, "Name", "mirror")]
        ec2.create_tags(Resources=[resource], Tags=[{"Key": "Name", "Value": "mirror-2"}])
        assert [t["Value"] for t in find()] == ["mirror-2"]
        # A stale value does not delete; the current one does.
        ec2.delete_tags(Resources=[resource], Tags=[{"Key": "Name", "Value": "mirror"}])
        assert len(find()) == 1
        ec2.delete_tags(Resources=[resource], Tags=[{"Key": "Name", "Value": "mirror-2"}])
        assert find() == []


def test_reserved_tapwire_tags_set_a_sessions_limits_and_bad_ones_change_nothing(server, ec2):
    src, _, flt, tgt = lab(server, ec2)
    sid = ec2.create_traffic_mirror_session(
        NetworkInterfaceId=src, TrafficMirrorTargetId=tgt, TrafficMirrorFilterId=flt, SessionNumber=1,
        TagSpecifications=[{"ResourceType": "traffic-mirror-session",
                            "Tags": [{"Key": "tapwire:max-bps", "Value": "1000000"}]}])["TrafficMirrorSession"]
    sid = sid["TrafficMirrorSessionId"]
    server.aws("create-tags", "--resources", sid, "--tags", "Key=tapwire:sample-flows,Value=0.25")
    for key, value in (("tapwire:sample-flows", "2"), ("tapwire:max-pps", "-1"), ("tapwire:sampleflows", "0.1")):
        code, err = server.aws("create-tags", "--resources", sid, "--tags", f"Key={key},Value={value}", check=False)
        assert code != 0 and "InvalidParameterValue" in err and key in err, (key, err)
    code, err = server.aws("create-tags", "--resources", flt, "--tags", "Key=tapwire:max-pps,Value=5", check=False)
    assert code != 0 and "traffic mirror sessions only" in err, err
    tags = {t["Key"]: t["Value"] for t in ec2.describe_traffic_mirror_sessions(
        TrafficMirrorSessionIds=[sid])["TrafficMirrorSessions"][0]["Tags"]}
    assert tags == {"tapwire:max-bps": "1000000", "tapwire:sample-flows": "0.25"}
    (status,) = server.cli("session", "status", sid)
    assert status["Limits"] == {"SampleFlows": 0.25, "MaxBps": 1000000}
    with pytest.raises(ClientError) as e:
        ec2.create_traffic_mirror_session(
            NetworkInterfaceId=src, TrafficMirrorTargetId=tgt, TrafficMirrorFilterId=flt, SessionNumber=2,
            TagSpecifications=[{"ResourceType": "traffic-mirror-session",
                                "Tags": [{"Key": "tapwire:sample-packets", "Value": "0"}]}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert len(ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]) == 1


def test_interfaces_take_tags_and_filters(server, ec2):
    a = server.register("198.18.0.10", instance_id="i-a", host="a")
    b = server.register("198.18.0.11", host="b")
    free = server.register("198.18.0.12")
    server.aws("create-tags", "--resources", a, "--tags", "Key=role,Value=sensor", "Key=site,Value=lab")
    ec2.create_tags(Resources=[b], Tags=[{"Key": "role", "Value": "web"}])
    got = ec2.describe_network_interfaces(NetworkInterfaceIds=[a])["NetworkInterfaces"][0]
    assert {(t["Key"], t["Value"]) for t in got["TagSet"]} == {("role", "sensor"), ("site", "lab")}

    def ids(*filters, **kwargs):
        flt = [{"Name": n, "Values": v} for n, v in filters]
        return {i["NetworkInterfaceId"] for i in ec2.describe_network_interfaces(Filters=flt, **kwargs)["NetworkInterfaces"]}
    assert ids(("tag:role", ["sens*"])) == {a}
    assert ids(("tag-key", ["site"])) == {a}
    assert ids(("tag-key", ["role"])) == {a, b}
    assert ids(("status", ["available"])) == {free}
    assert ids(("status", ["in-use"])) == {a, b}
    assert ids(("attachment.status", ["attached"])) == {a}
    assert ids(("attachment.instance-id", ["i-a"])) == {a}
    assert ids(("description", ["b/eth0"])) == {b}
    assert ids(("interface-type", ["interface"]), ("requester-managed", ["false"]), ("source-dest-check", ["true"])) == {a, b, free}
    assert ids(("owner-id", ["123456789012"])) == {a, b, free}
    assert ids(("private-ip-address", ["198.18.0.1?"])) == {a, b, free}
    # What tapwire does not model matches nothing rather than failing the call.
    assert ids(("vpc-id", ["vpc-123"])) == set()
    assert ids(IncludeManagedResources=True) == {a, b, free}
    # Untagging shows too.
    ec2.delete_tags(Resources=[a], Tags=[{"Key": "site"}])
    assert ids(("tag-key", ["site"])) == set()


def test_tag_filters_on_the_traffic_mirror_describe_calls(server, ec2):
    src, dst, flt, tgt = lab(server, ec2)
    other = ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    tag(ec2, flt, "team", "netsec")
    tag(ec2, tgt, "team", "netsec")
    rid = rule(ec2, other, 1)["TrafficMirrorFilterRuleId"]
    tag(ec2, rid, "team", "netsec")
    sid = ec2.create_traffic_mirror_session(NetworkInterfaceId=src, TrafficMirrorTargetId=tgt, TrafficMirrorFilterId=flt,
                                            SessionNumber=1, TagSpecifications=[{"ResourceType": "traffic-mirror-session",
                                                                                 "Tags": [{"Key": "team", "Value": "netsec"}]}])["TrafficMirrorSession"]["TrafficMirrorSessionId"]
    f = [{"Name": "tag:team", "Values": ["net*"]}]
    assert [x["TrafficMirrorFilterId"] for x in ec2.describe_traffic_mirror_filters(Filters=f)["TrafficMirrorFilters"]] == [flt]
    assert [x["TrafficMirrorTargetId"] for x in ec2.describe_traffic_mirror_targets(Filters=f)["TrafficMirrorTargets"]] == [tgt]
    assert [x["TrafficMirrorSessionId"] for x in ec2.describe_traffic_mirror_sessions(Filters=f)["TrafficMirrorSessions"]] == [sid]
    assert [x["TrafficMirrorFilterRuleId"] for x in ec2.describe_traffic_mirror_filter_rules(Filters=f)["TrafficMirrorFilterRules"]] == [rid]
    k = [{"Name": "tag-key", "Values": ["nothing"]}]
    assert ec2.describe_traffic_mirror_filters(Filters=k)["TrafficMirrorFilters"] == []


def test_every_response_carries_the_request_id_header(server):
    def check(status, text, headers, expected):
        assert status == expected, text
        header = headers["x-amzn-RequestId"]
        assert header and (f"<requestId>{header}</requestId>" in text or f"<RequestID>{header}</RequestID>" in text), text

    base = {"Version": "2016-11-15"}
    for params, status in [({"Action": "DescribeTrafficMirrorFilters"}, 200),
                           ({"Action": "DeleteTrafficMirrorFilter", "TrafficMirrorFilterId": "tmf-0123456789abcdef0"}, 400),
                           ({"Action": "Nope"}, 400),
                           ({"Action": "DescribeTrafficMirrorFilters", "Description": "\x01"}, 400)]:
        check(*server.query({**base, **params}), status)
    # Refused before the signature is read, or for the want of one: the header too.
    check(*server.query({**base, "Action": "DescribeTrafficMirrorFilters"}, sign=False), 401)
    status, doc, headers = server.alibaba_v1({"Version": "2016-04-28", "Action": "GetTrafficMirrorServiceStatus",
                                              "RegionId": "cn-hangzhou"})
    assert status == 200 and doc["RequestId"] == headers["x-acs-request-id"]


def test_the_javascript_sdk_reports_the_request_id_of_the_body(server):
    node = shutil.which("node")
    assert node, "node is needed for the JavaScript SDK test (scripts/test installs it)"
    assert (JS / "node_modules" / "@aws-sdk" / "client-ec2").is_dir(), "run npm ci in tests/js (scripts/test does)"
    out = subprocess.run([node, str(JS / "request_id.mjs"), server.url], capture_output=True, text=True, env=env(server),
                         cwd=JS, timeout=60)
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert [r["call"] for r in results] == ["describe", "error"]
    assert results[1]["code"] == "InvalidTrafficMirrorFilterId.NotFound"
    for r in results:
        assert r["sdk"] and r["sdk"] == r["body"], r
