"""Every Alibaba traffic-mirror action through the legacy core SDK (aliyun-python-sdk-vpc:
Action, Version and the HMAC-SHA1 signature in the query string)."""
from alibaba_support import (error_of, filter_status, filters, rule, session_status, sessions,
                             wait_filter, wait_for, wait_session)


def test_service_ops(server):
    legacy = server.legacy()
    assert legacy("GetTrafficMirrorServiceStatus")["Enabled"] is False
    assert error_of(legacy, "ListTrafficMirrorFilters") == ("OptInRequired.TrafficMirror", 400)
    assert legacy("OpenTrafficMirrorService")["RequestId"]
    assert legacy("GetTrafficMirrorServiceStatus")["Enabled"] is True
    assert error_of(legacy, "OpenTrafficMirrorService") == ("ORDER.OPEND", 400)


def test_every_operation(server, legacy):
    src1 = server.register("198.18.4.2", instance_id="i-l1")
    src2 = server.register("198.18.4.3", instance_id="i-l2")
    sensor = server.register("198.18.4.9", instance_id="i-lsensor")
    out = legacy("CreateTrafficMirrorFilter", TrafficMirrorFilterName="legacy", Tag=[{"Key": "a", "Value": "b"}],
                 IngressRules=[rule(1, "UDP", DestinationPortRange="53/53")],
                 EgressRules=[rule(1, "ICMP", IpVersion="IPv6", SourceCidrBlock="2001:db8::/32",
                                   DestinationCidrBlock="::/0")])
    fid = out["TrafficMirrorFilterId"]
    assert filter_status(legacy, fid) == "Creating"
    wait_filter(legacy, fid)
    [f] = filters(legacy, TrafficMirrorFilterIds=[fid])
    assert (f["IngressRules"][0]["Protocol"], f["IngressRules"][0]["DestinationPortRange"]) == ("UDP", "53/53")
    assert (f["EgressRules"][0]["Protocol"], f["EgressRules"][0]["IpVersion"]) == ("ICMP", "IPv6")

    created = legacy("CreateTrafficMirrorFilterRules", TrafficMirrorFilterId=fid, IngressRules=[rule(2, "TCP")])
    [new_rule] = [r["InstanceId"] for r in created["IngressRules"]]
    assert new_rule.startswith("tmr-") and created["EgressRules"] == []
    wait_for(lambda: filters(legacy, TrafficMirrorFilterIds=[fid])[0]["IngressRules"],
             lambda rs: len(rs) == 2 and all(r["TrafficMirrorFilterRuleStatus"] == "Created" for r in rs))
    legacy("UpdateTrafficMirrorFilterRuleAttribute", TrafficMirrorFilterRuleId=new_rule, RuleAction="drop",
           SourcePortRange="1000/2000")
    legacy("UpdateTrafficMirrorFilterAttribute", TrafficMirrorFilterId=fid, TrafficMirrorFilterDescription="desc")
    wait_filter(legacy, fid)
    f = wait_for(lambda: filters(legacy, TrafficMirrorFilterIds=[fid])[0],
                 lambda f: all(r["TrafficMirrorFilterRuleStatus"] == "Created" for r in f["IngressRules"]))
    changed = next(r for r in f["IngressRules"] if r["TrafficMirrorFilterRuleId"] == new_rule)
    assert (changed["Action"], changed["SourcePortRange"], f["TrafficMirrorFilterDescription"]) == \
        ("drop", "1000/2000", "desc")

    sid = legacy("CreateTrafficMirrorSession", TrafficMirrorSourceIds=[src1], TrafficMirrorTargetId=sensor,
                 TrafficMirrorTargetType="NetworkInterface", TrafficMirrorFilterId=fid, Priority=10,
                 Enabled=True, TrafficMirrorSessionName="legacy-session")["TrafficMirrorSessionId"]
    assert session_status(legacy, sid) == "Creating"
    wait_session(legacy, sid)
    legacy("AddSourcesToTrafficMirrorSession", TrafficMirrorSessionId=sid, TrafficMirrorSourceIds=[src2])
    wait_session(legacy, sid)
    legacy("RemoveSourcesFromTrafficMirrorSession", TrafficMirrorSessionId=sid, TrafficMirrorSourceIds=[src1])
    wait_session(legacy, sid)
    legacy("UpdateTrafficMirrorSessionAttribute", TrafficMirrorSessionId=sid, PacketLength=256, Enabled=False)
    wait_session(legacy, sid)
    [s] = sessions(legacy, TrafficMirrorSessionIds=[sid])
    assert (s["TrafficMirrorSourceIds"], s["PacketLength"], s["Enabled"], s["TrafficMirrorSessionName"]) == \
        ([src2], 256, False, "legacy-session")

    legacy("TagResources", ResourceType="TRAFFICMIRRORSESSION", ResourceId=[sid], Tag=[{"Key": "x", "Value": "y"}])
    rows = legacy("ListTagResources", ResourceType="TRAFFICMIRRORSESSION", ResourceId=[sid])
    assert [(r["TagKey"], r["TagValue"]) for r in rows["TagResources"]["TagResource"]] == [("x", "y")]
    legacy("UnTagResources", ResourceType="TRAFFICMIRRORSESSION", ResourceId=[sid], All=True)
    assert sessions(legacy, TrafficMirrorSessionIds=[sid])[0]["Tags"] == []
    legacy("MoveResourceGroup", ResourceType="TrafficMirrorSession", ResourceId=sid, NewResourceGroupId="rg-l")
    assert sessions(legacy, TrafficMirrorSessionIds=[sid])[0]["ResourceGroupId"] == "rg-l"

    legacy("DeleteTrafficMirrorFilterRules", TrafficMirrorFilterId=fid, TrafficMirrorFilterRuleIds=[new_rule])
    legacy("DeleteTrafficMirrorSession", TrafficMirrorSessionId=sid)
    assert session_status(legacy, sid) == "Deleting"
    wait_session(legacy, sid, None)
    legacy("DeleteTrafficMirrorFilter", TrafficMirrorFilterId=fid)
    wait_filter(legacy, fid, None)
    assert filters(legacy) == [] and sessions(legacy) == []


def test_errors_through_the_legacy_sdk(server, legacy):
    assert error_of(legacy, "DeleteTrafficMirrorSession", TrafficMirrorSessionId="tms-00000000000000000") == \
        ("ResourceNotFound.TrafficMirrorSession", 404)
    assert error_of(legacy, "CreateTrafficMirrorFilter", DryRun=True) == ("DryRunOperation", 400)
    assert filters(legacy) == []
    assert error_of(legacy, "CreateTrafficMirrorFilter", IngressRules=[rule(1, "TCP", SourcePortRange="9/1")]) == \
        ("InvalidParameter", 400)
    fid = legacy("CreateTrafficMirrorFilter", ClientToken="legacy-token")["TrafficMirrorFilterId"]
    assert legacy("CreateTrafficMirrorFilter", ClientToken="legacy-token")["TrafficMirrorFilterId"] == fid
    assert error_of(legacy, "CreateTrafficMirrorFilter", ClientToken="legacy-token",
                    TrafficMirrorFilterName="other") == ("IdempotentParameterMismatch", 400)
    assert error_of(legacy, "UpdateTrafficMirrorFilterAttribute", TrafficMirrorFilterId=fid,
                    TrafficMirrorFilterName="n") == ("IncorrectStatus.TrafficMirrorFilter", 400)
    src = server.register("198.18.5.2", instance_id="i-e1")
    assert error_of(legacy, "CreateTrafficMirrorSession", TrafficMirrorSourceIds=[src, src],
                    TrafficMirrorTargetId="lb-x", TrafficMirrorTargetType="SLB", TrafficMirrorFilterId=fid,
                    Priority=1) == ("DuplicatedParam.SourceInstanceIds", 400)


def test_parameters_in_a_form_body_are_read(server, legacy):
    """Terraform's generic RPC client sends the parameters as a form body, not a query."""
    status, body, headers = server.alibaba_v1({
        "Action": "CreateTrafficMirrorFilter", "Version": "2016-04-28", "RegionId": "cn-hangzhou",
        "TrafficMirrorFilterName": "from-form", "IngressRules.1.Action": "accept", "IngressRules.1.Priority": "1",
        "IngressRules.1.Protocol": "ALL", "IngressRules.1.SourceCidrBlock": "0.0.0.0/0",
        "IngressRules.1.DestinationCidrBlock": "0.0.0.0/0"})
    assert status == 200, body
    assert headers["content-type"].startswith("application/json")
    fid = body["TrafficMirrorFilterId"]
    [f] = filters(legacy, TrafficMirrorFilterIds=[fid])
    assert f["TrafficMirrorFilterName"] == "from-form" and f["IngressRules"][0]["Protocol"] == "ALL"
