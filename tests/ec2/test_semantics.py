"""EC2 semantics through boto3: validation, quotas, in-use checks, tags, idempotency,
dry run, pagination and the interface inventory."""

import pytest

from ec2_support import error_code, lab, rule


def test_describe_on_an_empty_account_is_empty(ec2):
    assert ec2.describe_traffic_mirror_filters()["TrafficMirrorFilters"] == []
    assert ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"] == []
    assert ec2.describe_traffic_mirror_targets()["TrafficMirrorTargets"] == []
    assert ec2.describe_traffic_mirror_filter_rules()["TrafficMirrorFilterRules"] == []
    assert ec2.describe_network_interfaces()["NetworkInterfaces"] == []


def test_unknown_ids_are_not_found_in_the_dotted_form(ec2):
    missing = "tmf-0123456789abcdef0"
    assert error_code(ec2.describe_traffic_mirror_filters, TrafficMirrorFilterIds=[missing]) == (
        "InvalidTrafficMirrorFilterId.NotFound", 400)
    assert error_code(ec2.delete_traffic_mirror_filter, TrafficMirrorFilterId=missing)[0] == (
        "InvalidTrafficMirrorFilterId.NotFound")
    assert error_code(ec2.delete_traffic_mirror_filter_rule, TrafficMirrorFilterRuleId="tmfr-0123456789abcdef0")[0] == (
        "InvalidTrafficMirrorFilterRuleId.NotFound")
    assert error_code(ec2.delete_traffic_mirror_session, TrafficMirrorSessionId="tms-0123456789abcdef0")[0] == (
        "InvalidTrafficMirrorSessionId.NotFound")
    assert error_code(ec2.delete_traffic_mirror_target, TrafficMirrorTargetId="tmt-0123456789abcdef0")[0] == (
        "InvalidTrafficMirrorTargetId.NotFound")
    assert error_code(ec2.describe_traffic_mirror_sessions, TrafficMirrorSessionIds=["tms-nope"])[0] == (
        "InvalidTrafficMirrorSessionId.NotFound")
    assert error_code(ec2.create_traffic_mirror_target, NetworkInterfaceId="eni-0123456789abcdef0")[0] == (
        "InvalidNetworkInterfaceID.NotFound")
    assert error_code(ec2.create_traffic_mirror_target, NetworkInterfaceId="eni-zz")[0] == (
        "InvalidNetworkInterfaceId.Malformed")


def test_rules_validation_order_and_quota(ec2):
    fid = ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    rule(ec2, fid, 10)
    assert error_code(rule, ec2, fid, 10) == ("TrafficMirrorFilterRuleAlreadyExists", 400)
    rule(ec2, fid, 10, direction="egress")  # numbers are per direction
    assert error_code(rule, ec2, fid, 0)[0] == "InvalidParameterValue"
    assert error_code(rule, ec2, fid, 32767)[0] == "InvalidParameterValue"
    assert error_code(rule, ec2, fid, 11, SourceCidrBlock="::/0")[0] == "InvalidParameterValue"
    assert error_code(rule, ec2, fid, 11, SourceCidrBlock="not-a-cidr")[0] == "InvalidParameterValue"
    assert error_code(rule, ec2, fid, 11, DestinationPortRange={"FromPort": 80, "ToPort": 80})[0] == (
        "InvalidParameterCombination")
    assert error_code(rule, ec2, fid, 11, Protocol=1, DestinationPortRange={"FromPort": 80, "ToPort": 80})[0] == (
        "InvalidParameterCombination")
    assert error_code(rule, ec2, fid, 11, Protocol=6, DestinationPortRange={"FromPort": 90, "ToPort": 80})[0] == (
        "InvalidParameterValue")
    assert error_code(rule, ec2, fid, 11, TrafficDirection="sideways")[0] == "InvalidParameterValue"
    v6 = rule(ec2, fid, 11, SourceCidrBlock="2001:db8::/32", DestinationCidrBlock="::/0", Protocol=17,
              SourcePortRange={"FromPort": 53, "ToPort": 53})
    assert v6["SourcePortRange"] == {"FromPort": 53, "ToPort": 53}
    for n in range(12, 20):
        rule(ec2, fid, n)
    assert error_code(rule, ec2, fid, 20) == ("TrafficMirrorFilterRuleLimitExceeded", 400)
    f = ec2.describe_traffic_mirror_filters(TrafficMirrorFilterIds=[fid])["TrafficMirrorFilters"][0]
    numbers = [r["RuleNumber"] for r in f["IngressFilterRules"]]
    assert numbers == sorted(numbers) and len(numbers) == 10
    assert [r["RuleNumber"] for r in f["EgressFilterRules"]] == [10]
    # Failed attempts changed nothing.
    assert len(ec2.describe_traffic_mirror_filter_rules(TrafficMirrorFilterId=fid)["TrafficMirrorFilterRules"]) == 11


def test_modify_rule_and_remove_fields(ec2):
    fid = ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    r = rule(ec2, fid, 1, Protocol=6, SourcePortRange={"FromPort": 32000, "ToPort": 64000},
             DestinationPortRange={"FromPort": 10000, "ToPort": 10001}, Description="web",
             TagSpecifications=[{"ResourceType": "traffic-mirror-filter-rule", "Tags": [{"Key": "k", "Value": "v"}]}])
    rid = r["TrafficMirrorFilterRuleId"]
    assert r["Tags"] == [{"Key": "k", "Value": "v"}]
    # A port range needs the protocol in the same call.
    assert error_code(ec2.modify_traffic_mirror_filter_rule, TrafficMirrorFilterRuleId=rid,
                      DestinationPortRange={"FromPort": 1, "ToPort": 2})[0] == "InvalidParameterCombination"
    m = ec2.modify_traffic_mirror_filter_rule(TrafficMirrorFilterRuleId=rid, RuleNumber=2, TrafficDirection="egress",
                                              RuleAction="reject")["TrafficMirrorFilterRule"]
    assert (m["RuleNumber"], m["TrafficDirection"], m["RuleAction"]) == (2, "egress", "reject")
    assert "Tags" not in m  # ModifyTrafficMirrorFilterRule returns no tags
    # Removing the protocol while port ranges remain is refused; removing all works.
    assert error_code(ec2.modify_traffic_mirror_filter_rule, TrafficMirrorFilterRuleId=rid,
                      RemoveFields=["protocol"])[0] == "InvalidParameterCombination"
    m = ec2.modify_traffic_mirror_filter_rule(
        TrafficMirrorFilterRuleId=rid,
        RemoveFields=["protocol", "source-port-range", "destination-port-range", "description"],
    )["TrafficMirrorFilterRule"]
    for gone in ("Protocol", "SourcePortRange", "DestinationPortRange", "Description"):
        assert gone not in m
    assert error_code(ec2.modify_traffic_mirror_filter_rule, TrafficMirrorFilterRuleId=rid,
                      Description="x", RemoveFields=["description"])[0] == "InvalidParameterCombination"
    rules = ec2.describe_traffic_mirror_filter_rules(
        Filters=[{"Name": "traffic-direction", "Values": ["egress"]}, {"Name": "rule-action", "Values": ["reject"]}]
    )["TrafficMirrorFilterRules"]
    assert [x["TrafficMirrorFilterRuleId"] for x in rules] == [rid]
    assert rules[0]["Tags"] == [{"Key": "k", "Value": "v"}]


def test_network_services_are_a_set(ec2):
    fid = ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    for _ in range(2):
        f = ec2.modify_traffic_mirror_filter_network_services(TrafficMirrorFilterId=fid,
                                                              AddNetworkServices=["amazon-dns"])
        assert f["TrafficMirrorFilter"]["NetworkServices"] == ["amazon-dns"]
    f = ec2.modify_traffic_mirror_filter_network_services(TrafficMirrorFilterId=fid, RemoveNetworkServices=["amazon-dns"])
    assert f["TrafficMirrorFilter"]["NetworkServices"] == []


def test_sessions_validation_and_quotas(server, ec2):
    src, dst, fid, tid = lab(server, ec2)

    def session(number, source=src, **extra):
        args = dict(NetworkInterfaceId=source, TrafficMirrorTargetId=tid, TrafficMirrorFilterId=fid,
                    SessionNumber=number)
        args.update(extra)
        return ec2.create_traffic_mirror_session(**args)["TrafficMirrorSession"]

    assert error_code(session, 0)[0] == "InvalidParameterValue"
    assert error_code(session, 32767)[0] == "InvalidParameterValue"
    assert error_code(session, 1, PacketLength=8501)[0] == "InvalidParameterValue"
    assert error_code(session, 1, VirtualNetworkId=1 << 24)[0] == "InvalidParameterValue"
    assert error_code(session, 1, source=dst)[0] == "InterfaceInUseByTrafficMirrorTarget"
    free = server.register("198.18.2.9")  # no instance, no host: free
    assert error_code(session, 1, source=free)[0] == "NetworkInterfaceNotSupported"
    assert error_code(session, 1, TrafficMirrorFilterId="tmf-0123456789abcdef0")[0] == (
        "InvalidTrafficMirrorFilterId.NotFound")
    assert error_code(session, 1, TrafficMirrorTargetId="tmt-0123456789abcdef0")[0] == (
        "InvalidTrafficMirrorTargetId.NotFound")

    a = session(1, PacketLength=8500)
    assert a["PacketLength"] == 8500 and a["OwnerId"] == "123456789012"
    assert error_code(session, 1)[0] == "InvalidParameterValue"  # session number taken on this interface
    b = session(2)
    c = session(3)
    assert "PacketLength" not in b
    vnis = {a["VirtualNetworkId"], b["VirtualNetworkId"], c["VirtualNetworkId"]}
    assert len(vnis) == 3 and all(0 < v < 1 << 24 for v in vnis)
    assert error_code(session, 4) == ("TrafficMirrorSessionsPerInterfaceLimitExceeded", 400)
    # The source interface cannot now become a target.
    assert error_code(ec2.create_traffic_mirror_target, NetworkInterfaceId=src)[0] == (
        "InterfaceInUseByTrafficMirrorSession")
    assert len(ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]) == 3


def test_modify_session_keeps_its_id(server, ec2):
    src, dst, fid, tid = lab(server, ec2)
    other = server.register("198.18.1.3", instance_id="i-sensor2", host="sensor2")
    tid2 = ec2.create_traffic_mirror_target(NetworkInterfaceId=other)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    s = ec2.create_traffic_mirror_session(NetworkInterfaceId=src, TrafficMirrorTargetId=tid, TrafficMirrorFilterId=fid,
                                          SessionNumber=5, PacketLength=200, VirtualNetworkId=42,
                                          Description="d")["TrafficMirrorSession"]
    sid = s["TrafficMirrorSessionId"]
    m = ec2.modify_traffic_mirror_session(TrafficMirrorSessionId=sid, TrafficMirrorTargetId=tid2, SessionNumber=6,
                                          RemoveFields=["packet-length", "description", "virtual-network-id"])
    m = m["TrafficMirrorSession"]
    assert m["TrafficMirrorSessionId"] == sid and m["TrafficMirrorTargetId"] == tid2 and m["SessionNumber"] == 6
    assert "PacketLength" not in m and "Description" not in m
    assert m["VirtualNetworkId"] != 42 and 0 < m["VirtualNetworkId"] < 1 << 24
    assert error_code(ec2.modify_traffic_mirror_session, TrafficMirrorSessionId=sid, PacketLength=0)[0] == (
        "InvalidParameterValue")
    got = ec2.describe_traffic_mirror_sessions(
        Filters=[{"Name": "traffic-mirror-target-id", "Values": [tid2]}])["TrafficMirrorSessions"]
    assert [x["TrafficMirrorSessionId"] for x in got] == [sid]


def test_targets(server, ec2):
    dst = server.register("198.18.1.2", instance_id="i-sensor1", host="sensor1")
    assert error_code(ec2.create_traffic_mirror_target) == ("InvalidInput", 400)
    nlb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/ids/50dc6c495c0c9188"
    assert error_code(ec2.create_traffic_mirror_target, NetworkInterfaceId=dst, NetworkLoadBalancerArn=nlb)[0] == (
        "InvalidInput")
    t = ec2.create_traffic_mirror_target(NetworkInterfaceId=dst)["TrafficMirrorTarget"]
    assert error_code(ec2.create_traffic_mirror_target, NetworkInterfaceId=dst)[0] == (
        "InterfaceInUseByTrafficMirrorTarget")
    n = ec2.create_traffic_mirror_target(NetworkLoadBalancerArn=nlb)["TrafficMirrorTarget"]
    assert n["Type"] == "network-load-balancer" and n["NetworkLoadBalancerArn"] == nlb
    assert error_code(ec2.create_traffic_mirror_target, NetworkLoadBalancerArn=nlb)[0] == (
        "NlbInUseByTrafficMirrorTargetException")
    assert error_code(ec2.create_traffic_mirror_target, NetworkLoadBalancerArn="arn:bogus")[0] == (
        "InvalidNetworkLoadBalancerArn.Malformed")
    g = ec2.create_traffic_mirror_target(GatewayLoadBalancerEndpointId="vpce-0123456789abcdef0")["TrafficMirrorTarget"]
    assert g["Type"] == "gateway-load-balancer-endpoint"
    assert g["GatewayLoadBalancerEndpointId"] == "vpce-0123456789abcdef0"
    by_eni = ec2.describe_traffic_mirror_targets(Filters=[{"Name": "network-interface-id", "Values": [dst]}])
    assert [x["TrafficMirrorTargetId"] for x in by_eni["TrafficMirrorTargets"]] == [t["TrafficMirrorTargetId"]]

    # A session to a load balancer without a packet length reports 8500, as EC2 does.
    src = server.register("198.18.0.2", instance_id="i-web1", host="web1")
    fid = ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    s = ec2.create_traffic_mirror_session(NetworkInterfaceId=src, TrafficMirrorTargetId=n["TrafficMirrorTargetId"],
                                          TrafficMirrorFilterId=fid, SessionNumber=1)["TrafficMirrorSession"]
    assert s["PacketLength"] == 8500


def test_in_use_filter_and_target_cannot_be_deleted(server, ec2):
    src, dst, fid, tid = lab(server, ec2)
    sid = ec2.create_traffic_mirror_session(NetworkInterfaceId=src, TrafficMirrorTargetId=tid,
                                            TrafficMirrorFilterId=fid, SessionNumber=1)["TrafficMirrorSession"][
        "TrafficMirrorSessionId"]
    assert error_code(ec2.delete_traffic_mirror_filter, TrafficMirrorFilterId=fid)[0] == "TrafficMirrorFilterInUse"
    assert error_code(ec2.delete_traffic_mirror_target, TrafficMirrorTargetId=tid)[0] == (
        "TrafficMirrorTargetInUseException")
    ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=sid)
    ec2.delete_traffic_mirror_filter(TrafficMirrorFilterId=fid)
    ec2.delete_traffic_mirror_target(TrafficMirrorTargetId=tid)
    assert error_code(ec2.delete_traffic_mirror_target, TrafficMirrorTargetId=tid)[0] == (
        "InvalidTrafficMirrorTargetId.NotFound")


def test_deleting_a_filter_removes_its_rules(ec2):
    fid = ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    rid = rule(ec2, fid, 1)["TrafficMirrorFilterRuleId"]
    ec2.delete_traffic_mirror_filter(TrafficMirrorFilterId=fid)
    assert error_code(ec2.describe_traffic_mirror_filter_rules, TrafficMirrorFilterRuleIds=[rid])[0] == (
        "InvalidTrafficMirrorFilterRuleId.NotFound")


def test_tags(ec2):
    spec = [{"ResourceType": "traffic-mirror-filter", "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": ""}]}]
    fid = ec2.create_traffic_mirror_filter(TagSpecifications=spec)["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    wrong = [{"ResourceType": "traffic-mirror-session", "Tags": [{"Key": "a", "Value": "1"}]}]
    assert error_code(ec2.create_traffic_mirror_filter, TagSpecifications=wrong)[0] == "InvalidParameterValue"

    def tags():
        f = ec2.describe_traffic_mirror_filters(TrafficMirrorFilterIds=[fid])["TrafficMirrorFilters"][0]
        return {t["Key"]: t["Value"] for t in f["Tags"]}

    ec2.create_tags(Resources=[fid], Tags=[{"Key": "a", "Value": "2"}, {"Key": "c", "Value": "3"}])
    assert tags() == {"a": "2", "b": "", "c": "3"}
    ec2.delete_tags(Resources=[fid], Tags=[{"Key": "a", "Value": "1"}])  # value differs: kept
    assert tags() == {"a": "2", "b": "", "c": "3"}
    ec2.delete_tags(Resources=[fid], Tags=[{"Key": "b", "Value": ""}, {"Key": "c"}])
    assert tags() == {"a": "2"}
    ec2.delete_tags(Resources=[fid])
    assert tags() == {}
    assert error_code(ec2.create_tags, Resources=[fid], Tags=[{"Key": "aws:x", "Value": "1"}])[0] == (
        "InvalidTagKey.Malformed")
    many = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    assert error_code(ec2.create_tags, Resources=[fid], Tags=many)[0] == "TagLimitExceeded"
    assert error_code(ec2.create_tags, Resources=["i-12345"], Tags=[{"Key": "a", "Value": "1"}])[0] == "InvalidID"
    assert error_code(ec2.create_tags, Resources=["tms-0123456789abcdef0"], Tags=[{"Key": "a", "Value": "1"}])[0] == (
        "InvalidTrafficMirrorSessionId.NotFound")
    assert tags() == {}


def test_client_token_replays_and_mismatches(server, ec2):
    a = ec2.create_traffic_mirror_filter(Description="x", ClientToken="tok-1")["TrafficMirrorFilter"]
    b = ec2.create_traffic_mirror_filter(Description="x", ClientToken="tok-1")["TrafficMirrorFilter"]
    assert a["TrafficMirrorFilterId"] == b["TrafficMirrorFilterId"]
    assert error_code(ec2.create_traffic_mirror_filter, Description="y", ClientToken="tok-1") == (
        "IdempotentParameterMismatch", 400)
    assert len(ec2.describe_traffic_mirror_filters()["TrafficMirrorFilters"]) == 1
    # The replay survives a restart.
    server.restart()
    c = server.ec2().create_traffic_mirror_filter(Description="x", ClientToken="tok-1")["TrafficMirrorFilter"]
    assert c["TrafficMirrorFilterId"] == a["TrafficMirrorFilterId"]


def test_dry_run_on_every_operation_writes_nothing(server, ec2):
    src, dst, fid, tid = lab(server, ec2)
    rid = rule(ec2, fid, 1)["TrafficMirrorFilterRuleId"]
    sid = ec2.create_traffic_mirror_session(NetworkInterfaceId=src, TrafficMirrorTargetId=tid,
                                            TrafficMirrorFilterId=fid, SessionNumber=1)["TrafficMirrorSession"][
        "TrafficMirrorSessionId"]
    other = server.register("198.18.1.9", instance_id="i-s9", host="s9")
    # A filter and a target no session uses, so their deletes would succeed.
    spare = server.register("198.18.1.10", instance_id="i-s10", host="s10")
    unused_filter = ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    unused_target = ec2.create_traffic_mirror_target(NetworkInterfaceId=spare)["TrafficMirrorTarget"][
        "TrafficMirrorTargetId"]
    before = snapshot(ec2)
    calls = [
        (ec2.create_traffic_mirror_filter, {}),
        (ec2.create_traffic_mirror_filter_rule, dict(TrafficMirrorFilterId=fid, TrafficDirection="egress",
                                                     RuleNumber=5, RuleAction="accept", SourceCidrBlock="0.0.0.0/0",
                                                     DestinationCidrBlock="0.0.0.0/0")),
        (ec2.create_traffic_mirror_target, dict(NetworkInterfaceId=other)),
        (ec2.create_traffic_mirror_session, dict(NetworkInterfaceId=src, TrafficMirrorTargetId=tid,
                                                 TrafficMirrorFilterId=fid, SessionNumber=2)),
        (ec2.delete_traffic_mirror_session, dict(TrafficMirrorSessionId=sid)),
        (ec2.delete_traffic_mirror_filter_rule, dict(TrafficMirrorFilterRuleId=rid)),
        (ec2.delete_traffic_mirror_filter, dict(TrafficMirrorFilterId=unused_filter)),
        (ec2.delete_traffic_mirror_target, dict(TrafficMirrorTargetId=unused_target)),
        (ec2.modify_traffic_mirror_filter_rule, dict(TrafficMirrorFilterRuleId=rid, RuleNumber=9)),
        (ec2.modify_traffic_mirror_session, dict(TrafficMirrorSessionId=sid, SessionNumber=9)),
        (ec2.modify_traffic_mirror_filter_network_services, dict(TrafficMirrorFilterId=fid,
                                                                 AddNetworkServices=["amazon-dns"])),
        (ec2.create_tags, dict(Resources=[fid], Tags=[{"Key": "k", "Value": "v"}])),
        (ec2.delete_tags, dict(Resources=[fid])),
        (ec2.describe_traffic_mirror_filters, {}),
        (ec2.describe_traffic_mirror_filter_rules, {}),
        (ec2.describe_traffic_mirror_sessions, {}),
        (ec2.describe_traffic_mirror_targets, {}),
        (ec2.describe_network_interfaces, {}),
    ]
    assert len({fn.__name__ for fn, _ in calls}) == 18  # every EC2 operation tapwire serves
    for fn, kwargs in calls:
        assert error_code(fn, DryRun=True, **kwargs) == ("DryRunOperation", 412), fn.__name__
    # A dry run still runs the checks: a bad request gets its real error.
    assert error_code(ec2.delete_traffic_mirror_filter, TrafficMirrorFilterId=fid, DryRun=True)[0] == (
        "TrafficMirrorFilterInUse")
    assert snapshot(ec2) == before


def snapshot(ec2):
    return (ec2.describe_traffic_mirror_filters()["TrafficMirrorFilters"],
            ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"],
            ec2.describe_traffic_mirror_targets()["TrafficMirrorTargets"],
            ec2.describe_traffic_mirror_filter_rules()["TrafficMirrorFilterRules"])


def test_pagination_walks_every_item_once_while_rows_are_inserted(ec2):
    created = {ec2.create_traffic_mirror_filter(Description=f"f{i}")["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
               for i in range(23)}
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"MaxResults": 5}
        if token:
            kwargs["NextToken"] = token
        page = ec2.describe_traffic_mirror_filters(**kwargs)
        assert len(page["TrafficMirrorFilters"]) <= 5
        seen += [f["TrafficMirrorFilterId"] for f in page["TrafficMirrorFilters"]]
        ec2.create_traffic_mirror_filter(Description="inserted during the walk")
        pages += 1
        token = page.get("NextToken")
        if not token:
            break
    assert created <= set(seen)
    assert len(seen) == len(set(seen))
    assert pages >= 5
    paginator = ec2.get_paginator("describe_traffic_mirror_filters")
    total = sum(len(p["TrafficMirrorFilters"]) for p in paginator.paginate(PaginationConfig={"PageSize": 7}))
    assert total == len(ec2.describe_traffic_mirror_filters()["TrafficMirrorFilters"])
    assert error_code(ec2.describe_traffic_mirror_filters, MaxResults=5, NextToken="garbage")[0] == "InvalidNextToken"


def test_describe_filters_are_and_across_names_or_across_values(ec2):
    ids = [ec2.create_traffic_mirror_filter(Description=d)["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
           for d in ("web-a", "web-b", "db")]
    got = ec2.describe_traffic_mirror_filters(Filters=[{"Name": "description", "Values": ["web-a", "db"]}])
    assert sorted(f["TrafficMirrorFilterId"] for f in got["TrafficMirrorFilters"]) == sorted([ids[0], ids[2]])
    got = ec2.describe_traffic_mirror_filters(Filters=[{"Name": "description", "Values": ["web-*"]},
                                                       {"Name": "traffic-mirror-filter-id", "Values": [ids[1]]}])
    assert [f["TrafficMirrorFilterId"] for f in got["TrafficMirrorFilters"]] == [ids[1]]
    assert ec2.describe_traffic_mirror_filters(
        Filters=[{"Name": "description", "Values": ["WEB-A"]}])["TrafficMirrorFilters"] == []
    assert error_code(ec2.describe_traffic_mirror_filters, Filters=[{"Name": "colour", "Values": ["x"]}])[0] == (
        "InvalidFilter")


def test_interface_inventory(server, ec2):
    a = server.register("198.18.0.2", instance_id="i-web1", host="web1", ifname="eth0")
    again = server.register("198.18.0.3", instance_id="i-web1", host="web1", ifname="eth0")
    assert a == again
    b = server.register("198.18.0.4", instance_id="i-web1", host="web1", ifname="eth1")
    assert b != a
    got = ec2.describe_network_interfaces(Filters=[{"Name": "private-ip-address", "Values": ["198.18.0.3"]}])
    assert [i["NetworkInterfaceId"] for i in got["NetworkInterfaces"]] == [a]
    got = ec2.describe_network_interfaces(Filters=[{"Name": "addresses.private-ip-address", "Values": ["198.18.0.4"]}])
    assert [i["NetworkInterfaceId"] for i in got["NetworkInterfaces"]] == [b]
    got = ec2.describe_network_interfaces(NetworkInterfaceIds=[a])["NetworkInterfaces"][0]
    assert got["Attachment"]["InstanceId"] == "i-web1" and got["Status"] == "in-use"
    assert error_code(ec2.describe_network_interfaces, NetworkInterfaceIds=["eni-0123456789abcdef0"])[0] == (
        "InvalidNetworkInterfaceID.NotFound")
    # Deregistering a source interface deletes its sessions, as deleting an ENI does in EC2.
    dst = server.register("198.18.1.2", instance_id="i-sensor1", host="sensor1")
    fid = ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    tid = ec2.create_traffic_mirror_target(NetworkInterfaceId=dst)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    ec2.create_traffic_mirror_session(NetworkInterfaceId=a, TrafficMirrorTargetId=tid, TrafficMirrorFilterId=fid,
                                      SessionNumber=1)
    out = server.cli("interface", "deregister", dst, check=False)
    assert out.returncode != 0 and "InterfaceInUseByTrafficMirrorTarget" in out.stderr
    server.cli("interface", "deregister", a)
    assert ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"] == []
    listed = [i["NetworkInterfaceId"] for i in server.cli("interface", "list")]
    assert a not in listed and b in listed


@pytest.mark.parametrize("quota_file", [{"sessions_per_interface": 1}])
def test_quotas_are_configurable(tmp_path, quota_file):
    import json
    from ec2_support import Server
    path = tmp_path / "quotas.json"
    path.write_text(json.dumps(quota_file))
    srv = Server(tmp_path / "data", ["--quotas", str(path)]).start()
    try:
        ec2 = srv.ec2()
        src, dst, fid, tid = lab(srv, ec2)
        ec2.create_traffic_mirror_session(NetworkInterfaceId=src, TrafficMirrorTargetId=tid,
                                          TrafficMirrorFilterId=fid, SessionNumber=1)
        assert error_code(ec2.create_traffic_mirror_session, NetworkInterfaceId=src, TrafficMirrorTargetId=tid,
                          TrafficMirrorFilterId=fid, SessionNumber=2)[0] == (
            "TrafficMirrorSessionsPerInterfaceLimitExceeded")
    finally:
        srv.stop()


def test_sessions_refuse_interfaces_that_do_not_exist(server, ec2):
    src, dst, fid, tid = lab(server, ec2)
    for eni, code in (("eni-0123456789abcdef0", "InvalidNetworkInterfaceID.NotFound"),
                      ("eni-nope", "InvalidNetworkInterfaceId.Malformed")):
        assert error_code(ec2.create_traffic_mirror_session, NetworkInterfaceId=eni, TrafficMirrorTargetId=tid,
                          TrafficMirrorFilterId=fid, SessionNumber=1)[0] == code
    assert ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"] == []
