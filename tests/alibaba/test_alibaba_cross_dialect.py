"""How resources made through one dialect appear in the other (docs/dialects.md)."""
import botocore.exceptions
import pytest

from alibaba_support import filters, rule, sessions, wait_filter, wait_for, wait_session


def ec2_error(fn, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as info:
        fn(**kwargs)
    return info.value.response["Error"]["Code"]


def test_ec2_resources_in_alibaba(server, tea):
    ec2 = server.ec2()
    src = server.register("198.18.6.2", instance_id="i-x1")
    dst = server.register("198.18.6.9", instance_id="i-xsensor")
    fid = ec2.create_traffic_mirror_filter(Description="from ec2")["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    ec2.create_traffic_mirror_filter_rule(TrafficMirrorFilterId=fid, TrafficDirection="ingress", RuleNumber=1,
                                          RuleAction="reject", Protocol=6, SourceCidrBlock="0.0.0.0/0",
                                          DestinationCidrBlock="0.0.0.0/0",
                                          DestinationPortRange={"FromPort": 443, "ToPort": 443})
    tgt = ec2.create_traffic_mirror_target(NetworkInterfaceId=dst)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    sid = ec2.create_traffic_mirror_session(NetworkInterfaceId=src, TrafficMirrorTargetId=tgt,
                                            TrafficMirrorFilterId=fid, SessionNumber=5,
                                            VirtualNetworkId=77)["TrafficMirrorSession"]["TrafficMirrorSessionId"]
    # Made through EC2: Created at once; the target shows as its interface.
    [f] = filters(tea, TrafficMirrorFilterIds=[fid])
    assert f["TrafficMirrorFilterStatus"] == "Created" and f["TrafficMirrorFilterDescription"] == "from ec2"
    [r] = f["IngressRules"]
    assert r["TrafficMirrorFilterRuleId"].startswith("tmr-") and (r["Action"], r["Protocol"], r["DestinationPortRange"]) \
        == ("drop", "TCP", "443/443")
    [s] = sessions(tea, TrafficMirrorSessionIds=[sid])
    assert (s["TrafficMirrorSessionStatus"], s["TrafficMirrorTargetType"], s["TrafficMirrorTargetId"],
            s["TrafficMirrorSourceIds"], s["Priority"], s["VirtualNetworkId"], s["Enabled"]) == \
        ("Created", "NetworkInterface", dst, [src], 5, 77, True)
    assert "PacketLength" not in s  # EC2: the whole frame
    # The Alibaba rule ID spelling reaches the same rule.
    tea("UpdateTrafficMirrorFilterRuleAttribute", TrafficMirrorFilterRuleId=r["TrafficMirrorFilterRuleId"],
        RuleAction="accept")
    wait_for(lambda: filters(tea, TrafficMirrorFilterIds=[fid])[0]["IngressRules"][0],
             lambda r: r["TrafficMirrorFilterRuleStatus"] == "Created")
    [ec2_rule] = ec2.describe_traffic_mirror_filters(TrafficMirrorFilterIds=[fid])["TrafficMirrorFilters"][0][
        "IngressFilterRules"]
    assert ec2_rule["RuleAction"] == "accept"


def test_alibaba_sessions_in_ec2(server, tea):
    ec2 = server.ec2()
    a = server.register("198.18.7.2", instance_id="i-y1")
    b = server.register("198.18.7.3", instance_id="i-y2")
    sensor = server.register("198.18.7.9", instance_id="i-ysensor")
    fid = tea("CreateTrafficMirrorFilter", IngressRules=[rule()])["TrafficMirrorFilterId"]
    wait_filter(tea, fid)
    # One source, enabled, to an interface that has an EC2 target: EC2 shows it with that target.
    tgt = ec2.create_traffic_mirror_target(NetworkInterfaceId=sensor)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    shown = tea("CreateTrafficMirrorSession", TrafficMirrorSourceIds=[a], TrafficMirrorTargetId=sensor,
                TrafficMirrorTargetType="NetworkInterface", TrafficMirrorFilterId=fid, Priority=1,
                Enabled=True)["TrafficMirrorSessionId"]
    # Several sources: EC2 cannot show it.
    hidden = tea("CreateTrafficMirrorSession", TrafficMirrorSourceIds=[a, b], TrafficMirrorTargetId=sensor,
                 TrafficMirrorTargetType="NetworkInterface", TrafficMirrorFilterId=fid, Priority=2,
                 Enabled=True)["TrafficMirrorSessionId"]
    # Disabled: EC2 has no disabled sessions.
    disabled = tea("CreateTrafficMirrorSession", TrafficMirrorSourceIds=[b], TrafficMirrorTargetId=sensor,
                   TrafficMirrorTargetType="NetworkInterface", TrafficMirrorFilterId=fid,
                   Priority=3)["TrafficMirrorSessionId"]
    for sid in (shown, hidden, disabled):
        wait_session(tea, sid)
    listed = ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
    assert [s["TrafficMirrorSessionId"] for s in listed] == [shown]
    [s] = listed
    assert (s["NetworkInterfaceId"], s["TrafficMirrorTargetId"], s["SessionNumber"]) == (a, tgt, 1)
    for sid in (hidden, disabled):
        assert ec2_error(ec2.describe_traffic_mirror_sessions, TrafficMirrorSessionIds=[sid]) == \
            "UnsupportedOperation"
        assert ec2_error(ec2.modify_traffic_mirror_session, TrafficMirrorSessionId=sid, Description="x") == \
            "UnsupportedOperation"
    # Alibaba's busy status is an error in EC2 too.
    tea("UpdateTrafficMirrorSessionAttribute", TrafficMirrorSessionId=shown, TrafficMirrorSessionDescription="d")
    assert ec2_error(ec2.modify_traffic_mirror_session, TrafficMirrorSessionId=shown, Description="x") == \
        "IncorrectState"
    wait_session(tea, shown)
    # An EC2 delete works on any session and is immediate.
    ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=hidden)
    assert sessions(tea, TrafficMirrorSessionIds=[hidden]) == []
    # A session to an interface without an EC2 target is hidden from EC2 as well.
    ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=shown)
    ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=disabled)
    ec2.delete_traffic_mirror_target(TrafficMirrorTargetId=tgt)
    direct = tea("CreateTrafficMirrorSession", TrafficMirrorSourceIds=[a], TrafficMirrorTargetId=sensor,
                 TrafficMirrorTargetType="NetworkInterface", TrafficMirrorFilterId=fid, Priority=4,
                 Enabled=True)["TrafficMirrorSessionId"]
    assert ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"] == []
    assert ec2_error(ec2.describe_traffic_mirror_sessions, TrafficMirrorSessionIds=[direct]) == \
        "UnsupportedOperation"
