"""Accounts isolate: two accounts made with `tapwire account create` cannot see, describe,
modify, tag or delete each other's resources in either dialect; another account's ID
answers exactly as an ID that does not exist; ClientTokens and quotas are per account."""
import json
import re

import pytest

from alibaba_clients import Legacy, Tea
from identity_support import ali_error, ec2_error
from tapwire_support import Server

MISSING = {"tmf": "tmf-0123456789abcdef0", "tmfr": "tmfr-0123456789abcdef0", "tms": "tms-0123456789abcdef0",
           "tmt": "tmt-0123456789abcdef0", "eni": "eni-0123456789abcdef0"}


def ec2_refusal(fn, **kwargs):
    """(code, status, message with the ID blanked) of a refused boto3 call."""
    import botocore.exceptions
    with pytest.raises(botocore.exceptions.ClientError) as info:
        fn(**kwargs)
    err = info.value.response
    message = re.sub(r"\b(tmfr|tmf|tms|tmt|eni)-[0-9a-f]{8,17}\b", "ID", err["Error"]["Message"])
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], message


def put(kwargs, id_):
    """kwargs with every "ID" (also inside lists) replaced by id_."""
    swap = lambda v: id_ if v == "ID" else v
    return {k: ([swap(x) for x in v] if isinstance(v, list) else swap(v)) for k, v in kwargs.items()}


def same_as_missing(fn, real, kind, **kwargs):
    """Calls fn with another account's ID and with an ID that does not exist: the answers
    must be the same, and a NotFound."""
    theirs = ec2_refusal(fn, **put(kwargs, real))
    nobody = ec2_refusal(fn, **put(kwargs, MISSING[kind]))
    assert theirs == nobody, (theirs, nobody)
    assert "NotFound" in theirs[0], theirs
    return theirs


@pytest.fixture
def two(server):
    a, b = server.create_account("team-a"), server.create_account("team-b")
    assert a.account != b.account and re.fullmatch(r"\d{12}", a.account)
    return a, b


def build(server, key, octet):
    """An EC2 lab in one account: source and sensor interfaces, filter, rule, target, session."""
    ec2 = server.ec2(key)
    src = server.register(f"198.18.{octet}.2", host=f"web-{octet}", key=key)
    dst = server.register(f"198.18.{octet}.9", host=f"sensor-{octet}", key=key)
    fid = ec2.create_traffic_mirror_filter(TagSpecifications=[
        {"ResourceType": "traffic-mirror-filter", "Tags": [{"Key": "team", "Value": str(octet)}]}])[
        "TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    rid = ec2.create_traffic_mirror_filter_rule(TrafficMirrorFilterId=fid, TrafficDirection="ingress", RuleNumber=1,
                                                RuleAction="accept", SourceCidrBlock="0.0.0.0/0",
                                                DestinationCidrBlock="0.0.0.0/0")["TrafficMirrorFilterRule"][
        "TrafficMirrorFilterRuleId"]
    tid = ec2.create_traffic_mirror_target(NetworkInterfaceId=dst)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    sid = ec2.create_traffic_mirror_session(NetworkInterfaceId=src, TrafficMirrorTargetId=tid,
                                            TrafficMirrorFilterId=fid, SessionNumber=1)["TrafficMirrorSession"][
        "TrafficMirrorSessionId"]
    return dict(src=src, dst=dst, fid=fid, rid=rid, tid=tid, sid=sid)


def test_ec2_resources_are_invisible_and_untouchable_across_accounts(server, two):
    a, b = two
    mine = build(server, a, 10)
    ec2_a, ec2_b = server.ec2(a), server.ec2(b)
    # OwnerId is the real account.
    [session] = ec2_a.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
    assert session["OwnerId"] == a.account
    assert ec2_a.describe_traffic_mirror_targets()["TrafficMirrorTargets"][0]["OwnerId"] == a.account
    assert {i["OwnerId"] for i in ec2_a.describe_network_interfaces()["NetworkInterfaces"]} == {a.account}
    # B sees nothing: not in lists, not in tags, not by ID.
    assert ec2_b.describe_traffic_mirror_filters()["TrafficMirrorFilters"] == []
    assert ec2_b.describe_traffic_mirror_sessions()["TrafficMirrorSessions"] == []
    assert ec2_b.describe_traffic_mirror_targets()["TrafficMirrorTargets"] == []
    assert ec2_b.describe_network_interfaces()["NetworkInterfaces"] == []
    assert ec2_b.describe_tags()["Tags"] == []
    same_as_missing(ec2_b.describe_traffic_mirror_filters, mine["fid"], "tmf", TrafficMirrorFilterIds=["ID"])
    same_as_missing(ec2_b.describe_traffic_mirror_sessions, mine["sid"], "tms", TrafficMirrorSessionIds=["ID"])
    same_as_missing(ec2_b.describe_traffic_mirror_targets, mine["tid"], "tmt", TrafficMirrorTargetIds=["ID"])
    same_as_missing(ec2_b.describe_network_interfaces, mine["src"], "eni", NetworkInterfaceIds=["ID"])
    # Nor modify, tag or delete them.
    same_as_missing(ec2_b.modify_traffic_mirror_session, mine["sid"], "tms", TrafficMirrorSessionId="ID",
                    VirtualNetworkId=9)
    same_as_missing(ec2_b.modify_traffic_mirror_filter_rule, mine["rid"], "tmfr", TrafficMirrorFilterRuleId="ID",
                    RuleNumber=5)
    same_as_missing(ec2_b.modify_traffic_mirror_filter_network_services, mine["fid"], "tmf",
                    TrafficMirrorFilterId="ID", AddNetworkServices=["amazon-dns"])
    same_as_missing(ec2_b.create_traffic_mirror_filter_rule, mine["fid"], "tmf", TrafficMirrorFilterId="ID",
                    TrafficDirection="egress", RuleNumber=2, RuleAction="accept", SourceCidrBlock="0.0.0.0/0",
                    DestinationCidrBlock="0.0.0.0/0")
    same_as_missing(ec2_b.create_tags, mine["sid"], "tms", Resources=["ID"], Tags=[{"Key": "k", "Value": "v"}])
    same_as_missing(ec2_b.delete_tags, mine["fid"], "tmf", Resources=["ID"], Tags=[{"Key": "team"}])
    same_as_missing(ec2_b.delete_traffic_mirror_session, mine["sid"], "tms", TrafficMirrorSessionId="ID")
    same_as_missing(ec2_b.delete_traffic_mirror_filter_rule, mine["rid"], "tmfr", TrafficMirrorFilterRuleId="ID")
    same_as_missing(ec2_b.delete_traffic_mirror_target, mine["tid"], "tmt", TrafficMirrorTargetId="ID")
    same_as_missing(ec2_b.delete_traffic_mirror_filter, mine["fid"], "tmf", TrafficMirrorFilterId="ID")
    # Nor build on them: B's own session cannot use A's filter, target or interface.
    theirs = build(server, b, 20)
    same_as_missing(ec2_b.create_traffic_mirror_session, mine["fid"], "tmf", NetworkInterfaceId=theirs["src"],
                    TrafficMirrorTargetId=theirs["tid"], TrafficMirrorFilterId="ID", SessionNumber=2)
    same_as_missing(ec2_b.create_traffic_mirror_session, mine["tid"], "tmt", NetworkInterfaceId=theirs["src"],
                    TrafficMirrorTargetId="ID", TrafficMirrorFilterId=theirs["fid"], SessionNumber=2)
    same_as_missing(ec2_b.create_traffic_mirror_session, mine["src"], "eni", NetworkInterfaceId="ID",
                    TrafficMirrorTargetId=theirs["tid"], TrafficMirrorFilterId=theirs["fid"], SessionNumber=2)
    same_as_missing(ec2_b.create_traffic_mirror_target, mine["dst"], "eni", NetworkInterfaceId="ID")
    # A's world is as A left it.
    [f] = ec2_a.describe_traffic_mirror_filters()["TrafficMirrorFilters"]
    assert f["TrafficMirrorFilterId"] == mine["fid"] and f["Tags"] == [{"Key": "team", "Value": "10"}]
    assert len(f["IngressFilterRules"]) == 1 and f["NetworkServices"] == []
    [s] = ec2_a.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
    assert s["TrafficMirrorSessionId"] == mine["sid"] and s.get("VirtualNetworkId") != 9 and not s.get("Tags")
    assert [t["ResourceId"] for t in ec2_a.describe_tags()["Tags"]] == [mine["fid"]]
    # The inventory and the agents' endpoints are per account too.
    assert {i["NetworkInterfaceId"] for i in server.cli("interface", "list", key=b)} == {theirs["src"], theirs["dst"]}
    assert server.v1("GET", f"/tapwire/v1/network-interfaces/{mine['src']}/config", key=b)[0] == 404
    assert server.v1("GET", f"/tapwire/v1/network-interfaces/{mine['src']}/config", key=a)[0] == 200
    refused = server.cli("interface", "deregister", mine["src"], key=b, check=False)
    assert refused.returncode != 0 and "NotFound" in refused.stderr
    assert len(ec2_a.describe_network_interfaces()["NetworkInterfaces"]) == 2


def test_alibaba_resources_are_invisible_and_untouchable_across_accounts(server, two):
    a, b = two
    tea_a, tea_b, legacy_b = Tea(server.endpoint, a), Tea(server.endpoint, b), Legacy(server.endpoint, b)
    for client in (tea_a, tea_b):
        client("OpenTrafficMirrorService")
    src = server.register("198.18.30.2", host="ali-web", key=a)
    dst = server.register("198.18.30.9", host="ali-sensor", key=a)
    fid = tea_a("CreateTrafficMirrorFilter", TrafficMirrorFilterName="a-only")["TrafficMirrorFilterId"]
    sid = tea_a("CreateTrafficMirrorSession", TrafficMirrorSessionName="a-session", TrafficMirrorSourceIds=[src],
                TrafficMirrorTargetId=dst, TrafficMirrorTargetType="NetworkInterface", TrafficMirrorFilterId=fid,
                Priority=1)["TrafficMirrorSessionId"]
    assert tea_b("ListTrafficMirrorFilters")["TrafficMirrorFilters"] == []
    assert tea_b("ListTrafficMirrorSessions")["TrafficMirrorSessions"] == []
    assert tea_b("ListTrafficMirrorFilters", TrafficMirrorFilterIds=[fid])["TrafficMirrorFilters"] == []
    assert legacy_b("ListTrafficMirrorSessions", TrafficMirrorSessionIds=[sid])["TrafficMirrorSessions"] == []

    def same(call, action, real, missing, **kw):
        theirs = ali_error(call, action, **put(kw, real))
        nobody = ali_error(call, action, **put(kw, missing))
        assert theirs == nobody and "NotFound" in theirs[0], (theirs, nobody)

    for client in (tea_b, legacy_b):
        same(client, "DeleteTrafficMirrorFilter", fid, MISSING["tmf"], TrafficMirrorFilterId="ID")
        same(client, "DeleteTrafficMirrorSession", sid, MISSING["tms"], TrafficMirrorSessionId="ID")
        same(client, "UpdateTrafficMirrorSessionAttribute", sid, MISSING["tms"], TrafficMirrorSessionId="ID",
             TrafficMirrorSessionName="stolen")
        same(client, "UpdateTrafficMirrorFilterAttribute", fid, MISSING["tmf"], TrafficMirrorFilterId="ID",
             TrafficMirrorFilterName="stolen")
    same(tea_b, "TagResources", sid, MISSING["tms"], ResourceType="TrafficMirrorSession", ResourceId=["ID"],
         Tag=[{"Key": "k", "Value": "v"}])
    tea_a("TagResources", ResourceType="TrafficMirrorFilter", ResourceId=[fid], Tag=[{"Key": "owner", "Value": "a"}])
    listed_b = tea_b("ListTagResources", ResourceType="TrafficMirrorFilter", Tag=[{"Key": "owner", "Value": "a"}])
    assert listed_b["TagResources"]["TagResource"] == [], listed_b
    [f] = tea_a("ListTrafficMirrorFilters", TrafficMirrorFilterIds=[fid])["TrafficMirrorFilters"]
    assert f["TrafficMirrorFilterName"] == "a-only"
    [s] = tea_a("ListTrafficMirrorSessions", TrafficMirrorSessionIds=[sid])["TrafficMirrorSessions"]
    assert s["TrafficMirrorSessionName"] == "a-session"


def test_client_tokens_are_per_account(server, two):
    a, b = two
    made_a = server.ec2(a).create_traffic_mirror_filter(ClientToken="shared-token")["TrafficMirrorFilter"]
    made_b = server.ec2(b).create_traffic_mirror_filter(ClientToken="shared-token")["TrafficMirrorFilter"]
    assert made_a["TrafficMirrorFilterId"] != made_b["TrafficMirrorFilterId"]
    again = server.ec2(a).create_traffic_mirror_filter(ClientToken="shared-token")["TrafficMirrorFilter"]
    assert again["TrafficMirrorFilterId"] == made_a["TrafficMirrorFilterId"]
    assert len(server.ec2(b).describe_traffic_mirror_filters()["TrafficMirrorFilters"]) == 1
    tea_a, tea_b = Tea(server.endpoint, a), Tea(server.endpoint, b)
    for c in (tea_a, tea_b):
        c("OpenTrafficMirrorService")
    fa = tea_a("CreateTrafficMirrorFilter", ClientToken="ali-token")["TrafficMirrorFilterId"]
    fb = tea_b("CreateTrafficMirrorFilter", ClientToken="ali-token")["TrafficMirrorFilterId"]
    assert fa != fb and tea_a("CreateTrafficMirrorFilter", ClientToken="ali-token")["TrafficMirrorFilterId"] == fa


def test_quotas_are_per_account(tmp_path):
    quotas = tmp_path / "quotas.json"
    quotas.write_text(json.dumps({"filters_per_account": 2, "interfaces_per_account": 1}))
    srv = Server(tmp_path / "data", ["--quotas", str(quotas)]).start()
    try:
        a, b = srv.create_account("qa"), srv.create_account("qb")
        for key in (a, b):
            ec2 = srv.ec2(key)
            ec2.create_traffic_mirror_filter()
            ec2.create_traffic_mirror_filter()
            assert ec2_error(ec2.create_traffic_mirror_filter) == ("TrafficMirrorFilterLimitExceeded", 400)
            srv.register("198.18.40.2", host=f"h-{key.account}", key=key)
        refused = srv.cli("interface", "register", "--ip", "198.18.40.3", "--host", "more", key=a, check=False)
        assert refused.returncode != 0 and "NetworkInterfaceLimitExceeded" in refused.stderr
    finally:
        srv.stop()
