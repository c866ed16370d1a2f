"""Policies on access keys: a read-only key describes and is refused every write in both
dialects (UnauthorizedOperation / Forbidden.RAM), DryRun says which, a tag condition
allows one session and not another, an explicit Deny wins, and a bad document is refused
at `tapwire access-key create` with the part that is wrong."""
import json
import time

import pytest

from alibaba_clients import Legacy, Tea
from identity_support import ONCE, ali_error, ec2_error

READ_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["ec2:Describe*", "vpc:List*", "vpc:Get*"], "Resource": "*"}]}


def key_with(server, tmp_path, policy, account=None, name="policy.json"):
    path = tmp_path / name
    path.write_text(json.dumps(policy))
    return server.create_key(account=account, policy_file=path)


@pytest.fixture
def world(server):
    """An account with a full key and a lab made through EC2 and Alibaba."""
    owner = server.create_account("owners")
    ec2 = server.ec2(owner)
    src = server.register("198.18.50.2", host="pol-web", key=owner)
    dst = server.register("198.18.50.9", host="pol-sensor", key=owner)
    fid = ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    rid = ec2.create_traffic_mirror_filter_rule(TrafficMirrorFilterId=fid, TrafficDirection="ingress", RuleNumber=1,
                                                RuleAction="accept", SourceCidrBlock="0.0.0.0/0",
                                                DestinationCidrBlock="0.0.0.0/0")["TrafficMirrorFilterRule"][
        "TrafficMirrorFilterRuleId"]
    tid = ec2.create_traffic_mirror_target(NetworkInterfaceId=dst)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    # Unused: what deletes may take, and an interface a new target may use.
    spare_fid = ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    spare_eni = server.register("198.18.50.10", host="pol-spare", key=owner)
    spare_tid = ec2.create_traffic_mirror_target(NetworkInterfaceId=server.register(
        "198.18.50.11", host="pol-spare2", key=owner))["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    sessions = {}
    for number, team in ((1, "netsec"), (2, "web")):
        sessions[team] = ec2.create_traffic_mirror_session(
            NetworkInterfaceId=src, TrafficMirrorTargetId=tid, TrafficMirrorFilterId=fid, SessionNumber=number,
            TagSpecifications=[{"ResourceType": "traffic-mirror-session", "Tags": [{"Key": "team", "Value": team}]}])[
            "TrafficMirrorSession"]["TrafficMirrorSessionId"]
    tea = Tea(server.endpoint, owner)
    tea("OpenTrafficMirrorService")
    ali_fid = tea("CreateTrafficMirrorFilter", TrafficMirrorFilterName="ali")["TrafficMirrorFilterId"]
    deadline = time.monotonic() + 10
    while tea("ListTrafficMirrorFilters", TrafficMirrorFilterIds=[ali_fid])["TrafficMirrorFilters"][0][
            "TrafficMirrorFilterStatus"] != "Created":
        assert time.monotonic() < deadline, "the Alibaba filter never became Created"
        time.sleep(0.05)
    return dict(owner=owner, src=src, dst=dst, fid=fid, rid=rid, tid=tid, sessions=sessions, ali_fid=ali_fid,
                spare_fid=spare_fid, spare_eni=spare_eni, spare_tid=spare_tid)


def snapshot(server, key):
    ec2 = server.ec2(key)
    tea = Tea(server.endpoint, key)
    return (ec2.describe_traffic_mirror_filters()["TrafficMirrorFilters"],
            ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"],
            ec2.describe_traffic_mirror_targets()["TrafficMirrorTargets"],
            ec2.describe_tags()["Tags"],
            [{k: v for k, v in f.items() if k != "RequestId"} for f in
             tea("ListTrafficMirrorFilters")["TrafficMirrorFilters"]])


def ec2_writes(w):
    """Every EC2 write, each with parameters that would succeed for the full key."""
    s = w["sessions"]["web"]
    return [
        ("create_traffic_mirror_filter", {}),
        ("create_traffic_mirror_filter_rule", dict(TrafficMirrorFilterId=w["fid"], TrafficDirection="egress",
                                                   RuleNumber=9, RuleAction="reject", SourceCidrBlock="0.0.0.0/0",
                                                   DestinationCidrBlock="0.0.0.0/0")),
        ("create_traffic_mirror_target", dict(NetworkInterfaceId=w["spare_eni"])),
        ("create_traffic_mirror_session", dict(NetworkInterfaceId=w["src"], TrafficMirrorTargetId=w["tid"],
                                               TrafficMirrorFilterId=w["fid"], SessionNumber=3)),
        ("modify_traffic_mirror_session", dict(TrafficMirrorSessionId=s, VirtualNetworkId=7)),
        ("modify_traffic_mirror_filter_rule", dict(TrafficMirrorFilterRuleId=w["rid"], RuleNumber=2)),
        ("modify_traffic_mirror_filter_network_services", dict(TrafficMirrorFilterId=w["fid"],
                                                               AddNetworkServices=["amazon-dns"])),
        ("create_tags", dict(Resources=[s], Tags=[{"Key": "x", "Value": "y"}])),
        ("delete_tags", dict(Resources=[s], Tags=[{"Key": "team"}])),
        ("delete_traffic_mirror_session", dict(TrafficMirrorSessionId=s)),
        ("delete_traffic_mirror_filter_rule", dict(TrafficMirrorFilterRuleId=w["rid"])),
        ("delete_traffic_mirror_target", dict(TrafficMirrorTargetId=w["spare_tid"])),
        ("delete_traffic_mirror_filter", dict(TrafficMirrorFilterId=w["spare_fid"])),
    ]


def alibaba_writes(w):
    return [
        ("CreateTrafficMirrorFilter", dict(TrafficMirrorFilterName="x")),
        ("UpdateTrafficMirrorFilterAttribute", dict(TrafficMirrorFilterId=w["ali_fid"], TrafficMirrorFilterName="y")),
        ("CreateTrafficMirrorFilterRules", dict(TrafficMirrorFilterId=w["ali_fid"], IngressRules=[
            {"Action": "accept", "Priority": 1, "Protocol": "ALL", "SourceCidrBlock": "0.0.0.0/0",
             "DestinationCidrBlock": "0.0.0.0/0"}])),
        ("DeleteTrafficMirrorFilter", dict(TrafficMirrorFilterId=w["ali_fid"])),
        ("TagResources", dict(ResourceType="TrafficMirrorFilter", ResourceId=[w["ali_fid"]],
                              Tag=[{"Key": "k", "Value": "v"}])),
    ]


def test_a_read_only_key_describes_and_is_refused_every_write(server, world, tmp_path):
    ro = key_with(server, tmp_path, READ_ONLY, account=world["owner"].account)
    before = snapshot(server, world["owner"])
    assert snapshot(server, ro) == before
    ec2 = server.ec2(ro, config=ONCE)
    for name, params in ec2_writes(world):
        assert ec2_error(getattr(ec2, name), **params) == ("UnauthorizedOperation", 403), name
        # DryRun says the same, and writes nothing either.
        assert ec2_error(getattr(ec2, name), DryRun=True, **params) == ("UnauthorizedOperation", 403), name
    code, err = server.aws("create-traffic-mirror-filter", key=ro, check=False)
    assert code != 0 and "UnauthorizedOperation" in err
    for client in (Tea(server.endpoint, ro), Legacy(server.endpoint, ro)):
        for action, params in alibaba_writes(world):
            assert ali_error(client, action, **params) == ("Forbidden.RAM", 403), action
        assert client("ListTrafficMirrorFilters")["TrafficMirrorFilters"]
    assert snapshot(server, world["owner"]) == before
    # The full key's DryRun: permitted, so DryRunOperation, and nothing written.
    full = server.ec2(world["owner"], config=ONCE)
    for name, params in ec2_writes(world):
        assert ec2_error(getattr(full, name), DryRun=True, **params) == ("DryRunOperation", 412), name
    assert snapshot(server, world["owner"]) == before
    # Nor can it administer: accounts and keys need the root account.
    refused = server.cli("account", "create", "--name", "sneaky", key=ro, check=False)
    assert refused.returncode != 0 and "UnauthorizedOperation" in refused.stderr
    refused = server.cli("access-key", "create", key=world["owner"], check=False)
    assert refused.returncode != 0 and "UnauthorizedOperation" in refused.stderr


def test_a_tag_condition_allows_one_session_and_not_the_other(server, world, tmp_path):
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ec2:Describe*", "vpc:List*"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["ec2:ModifyTrafficMirrorSession", "vpc:UpdateTrafficMirrorSessionAttribute"],
         "Resource": ["arn:aws:ec2:*:*:traffic-mirror-session/*", "acs:vpc:*:*:trafficmirrorsession/*"],
         "Condition": {"StringEquals": {"aws:ResourceTag/team": "netsec"}}}]}
    key = key_with(server, tmp_path, policy, account=world["owner"].account)
    ec2 = server.ec2(key, config=ONCE)
    netsec, web = world["sessions"]["netsec"], world["sessions"]["web"]
    ec2.modify_traffic_mirror_session(TrafficMirrorSessionId=netsec, VirtualNetworkId=100)
    assert ec2_error(ec2.modify_traffic_mirror_session, TrafficMirrorSessionId=web, VirtualNetworkId=100) == \
        ("UnauthorizedOperation", 403)
    assert ec2_error(ec2.modify_traffic_mirror_session, TrafficMirrorSessionId=web, VirtualNetworkId=100,
                     DryRun=True) == ("UnauthorizedOperation", 403)
    assert ec2_error(ec2.modify_traffic_mirror_session, TrafficMirrorSessionId=netsec, VirtualNetworkId=101,
                     DryRun=True) == ("DryRunOperation", 412)
    vnis = {s["TrafficMirrorSessionId"]: s.get("VirtualNetworkId")
            for s in ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]}
    assert vnis[netsec] == 100 and vnis[web] != 100
    # Nothing else is allowed: not even tagging the other session into the condition.
    assert ec2_error(ec2.create_tags, Resources=[web], Tags=[{"Key": "team", "Value": "netsec"}]) == \
        ("UnauthorizedOperation", 403)
    Tea(server.endpoint, world["owner"], region="us-east-1")("OpenTrafficMirrorService")
    tea = Tea(server.endpoint, key)
    tea("UpdateTrafficMirrorSessionAttribute", RegionId="us-east-1", TrafficMirrorSessionId=netsec,
        TrafficMirrorSessionName="allowed")
    assert ali_error(tea, "UpdateTrafficMirrorSessionAttribute", RegionId="us-east-1", TrafficMirrorSessionId=web,
                     TrafficMirrorSessionName="refused") == ("Forbidden.RAM", 403)


def test_an_explicit_deny_wins(server, world, tmp_path):
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ec2:Delete*", "Resource": "*"}]}
    ec2 = server.ec2(key_with(server, tmp_path, policy, account=world["owner"].account), config=ONCE)
    fid = ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    assert ec2_error(ec2.delete_traffic_mirror_filter, TrafficMirrorFilterId=fid) == ("UnauthorizedOperation", 403)
    assert fid in [f["TrafficMirrorFilterId"] for f in ec2.describe_traffic_mirror_filters()["TrafficMirrorFilters"]]


def test_a_policy_naming_one_session_allows_only_that_one(server, world, tmp_path):
    owner, netsec, web = world["owner"].account, world["sessions"]["netsec"], world["sessions"]["web"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:DeleteTrafficMirrorSession",
                                                      "Resource": f"arn:aws:ec2:us-east-1:{owner}:traffic-mirror-session/{web}"}]}
    ec2 = server.ec2(key_with(server, tmp_path, policy, account=owner), config=ONCE)
    assert ec2_error(ec2.delete_traffic_mirror_session, TrafficMirrorSessionId=netsec) == ("UnauthorizedOperation", 403)
    ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=web)
    left = server.ec2(world["owner"]).describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
    assert [s["TrafficMirrorSessionId"] for s in left] == [netsec]


@pytest.mark.parametrize("document, named", [
    ({"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "ec2:*", "Resource": "*"}]},
     "Statement[0].Effect"),
    ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "Describe*", "Resource": "*"}]},
     "Statement[0].Action[0]"),
    ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:*"}]}, "Statement[0].Resource"),
    ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*",
                                              "Condition": {"IpAddress": {"aws:SourceIp": "198.18.0.0/15"}}}]},
     "Statement[0].Condition.IpAddress"),
    ({"Version": "2008-10-17", "Statement": []}, "Version"),
    ({"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}], "Principal": "*"}, "Principal"),
])
def test_a_bad_policy_is_refused_at_creation_naming_the_part(server, tmp_path, document, named):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    before = server.cli("access-key", "list")
    refused = server.cli("access-key", "create", "--policy", str(path), check=False)
    assert refused.returncode != 0 and named in refused.stderr and "InvalidParameterValue" in refused.stderr, \
        refused.stderr
    assert server.cli("access-key", "list") == before
    path.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": [f"ec2:Describe{n}" for n in range(700)], "Resource": "*"}]}))
    refused = server.cli("access-key", "create", "--policy", str(path), check=False)
    assert refused.returncode != 0 and "longer than 6144 characters" in refused.stderr, refused.stderr
    path.write_text("{not json")
    refused = server.cli("access-key", "create", "--policy", str(path), check=False)
    assert refused.returncode != 0 and "is not JSON" in refused.stderr
