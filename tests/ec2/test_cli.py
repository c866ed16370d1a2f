"""Every EC2 operation through the unmodified aws CLI, as a user would type it."""
import re


def test_every_operation_through_the_aws_cli(server):
    aws = server.aws
    assert aws("describe-traffic-mirror-sessions") == {"TrafficMirrorSessions": []}
    assert aws("describe-traffic-mirror-filters") == {"TrafficMirrorFilters": []}
    assert aws("describe-traffic-mirror-targets") == {"TrafficMirrorTargets": []}

    src = server.register("198.18.0.2", instance_id="i-web1", host="web1", extra_ips=["2001:db8::2"])
    dst = server.register("198.18.1.2", instance_id="i-sensor1", host="sensor1")
    enis = aws("describe-network-interfaces", "--filters", "Name=attachment.instance-id,Values=i-web1")
    assert [i["NetworkInterfaceId"] for i in enis["NetworkInterfaces"]] == [src]
    assert enis["NetworkInterfaces"][0]["PrivateIpAddress"] == "198.18.0.2"
    assert enis["NetworkInterfaces"][0]["Ipv6Addresses"] == [{"Ipv6Address": "2001:db8::2"}]

    f = aws("create-traffic-mirror-filter", "--description", "web",
            "--tag-specifications", "ResourceType=traffic-mirror-filter,Tags=[{Key=team,Value=sec}]")
    fid = f["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    assert re.fullmatch(r"tmf-[0-9a-f]{17}", fid)
    assert f["TrafficMirrorFilter"]["Tags"] == [{"Key": "team", "Value": "sec"}]
    assert f["ClientToken"]

    r = aws("create-traffic-mirror-filter-rule", "--traffic-mirror-filter-id", fid,
            "--traffic-direction", "ingress", "--rule-number", "100", "--rule-action", "accept",
            "--protocol", "6", "--destination-port-range", "FromPort=443,ToPort=443",
            "--source-cidr-block", "0.0.0.0/0", "--destination-cidr-block", "198.18.0.0/24")
    rid = r["TrafficMirrorFilterRule"]["TrafficMirrorFilterRuleId"]
    assert re.fullmatch(r"tmfr-[0-9a-f]{17}", rid)
    assert r["TrafficMirrorFilterRule"]["DestinationPortRange"] == {"FromPort": 443, "ToPort": 443}

    m = aws("modify-traffic-mirror-filter-rule", "--traffic-mirror-filter-rule-id", rid,
            "--rule-number", "110", "--remove-fields", "destination-port-range", "protocol")
    assert m["TrafficMirrorFilterRule"]["RuleNumber"] == 110
    assert "Protocol" not in m["TrafficMirrorFilterRule"]
    assert "DestinationPortRange" not in m["TrafficMirrorFilterRule"]

    rules = aws("describe-traffic-mirror-filter-rules", "--traffic-mirror-filter-id", fid)
    assert [x["TrafficMirrorFilterRuleId"] for x in rules["TrafficMirrorFilterRules"]] == [rid]

    ns = aws("modify-traffic-mirror-filter-network-services", "--traffic-mirror-filter-id", fid,
             "--add-network-services", "amazon-dns")
    assert ns["TrafficMirrorFilter"]["NetworkServices"] == ["amazon-dns"]

    t = aws("create-traffic-mirror-target", "--network-interface-id", dst, "--description", "ids")
    tid = t["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    assert t["TrafficMirrorTarget"]["Type"] == "network-interface"
    assert t["TrafficMirrorTarget"]["OwnerId"] == "123456789012"

    s = aws("create-traffic-mirror-session", "--network-interface-id", src, "--traffic-mirror-target-id", tid,
            "--traffic-mirror-filter-id", fid, "--session-number", "1", "--packet-length", "128",
            "--virtual-network-id", "7")
    sid = s["TrafficMirrorSession"]["TrafficMirrorSessionId"]
    assert s["TrafficMirrorSession"]["VirtualNetworkId"] == 7
    assert s["TrafficMirrorSession"]["PacketLength"] == 128

    ms = aws("modify-traffic-mirror-session", "--traffic-mirror-session-id", sid, "--remove-fields", "packet-length")
    assert "PacketLength" not in ms["TrafficMirrorSession"]

    aws("create-tags", "--resources", sid, fid, "--tags", "Key=env,Value=prod")
    got = aws("describe-traffic-mirror-sessions", "--filters", f"Name=traffic-mirror-session-id,Values={sid}")
    assert got["TrafficMirrorSessions"][0]["Tags"] == [{"Key": "env", "Value": "prod"}]
    aws("delete-tags", "--resources", sid, "--tags", "Key=env")
    got = aws("describe-traffic-mirror-sessions", "--traffic-mirror-session-ids", sid)
    assert got["TrafficMirrorSessions"][0]["Tags"] == []

    code, err = aws("delete-traffic-mirror-filter", "--traffic-mirror-filter-id", fid, check=False)
    assert code != 0 and "TrafficMirrorFilterInUse" in err

    assert aws("delete-traffic-mirror-session", "--traffic-mirror-session-id", sid) == {"TrafficMirrorSessionId": sid}
    assert aws("delete-traffic-mirror-target", "--traffic-mirror-target-id", tid) == {"TrafficMirrorTargetId": tid}
    assert aws("delete-traffic-mirror-filter-rule", "--traffic-mirror-filter-rule-id", rid) == {
        "TrafficMirrorFilterRuleId": rid}
    assert aws("delete-traffic-mirror-filter", "--traffic-mirror-filter-id", fid) == {"TrafficMirrorFilterId": fid}

    code, err = aws("describe-traffic-mirror-filters", "--traffic-mirror-filter-ids", fid, check=False)
    assert code != 0 and "InvalidTrafficMirrorFilterId.NotFound" in err


def test_cli_dry_run_reports_success_without_writing(server):
    code, err = server.aws("create-traffic-mirror-filter", "--dry-run", check=False)
    assert code != 0 and "DryRunOperation" in err
    assert server.aws("describe-traffic-mirror-filters") == {"TrafficMirrorFilters": []}
