"""Every Alibaba traffic-mirror action through the Tea SDK (ACS3 signatures, action and
version in headers, parameters in the query string), with the lifecycle, error codes,
pagination and tags."""
import json
import signal

import pytest

from alibaba_support import (Server, error_of, filter_status, filters, rule, session_status, sessions,
                             wait_filter, wait_for, wait_session)


# === the service ===

def test_service_must_be_opened_per_region(server):
    tea = server.tea()
    assert tea("GetTrafficMirrorServiceStatus")["Enabled"] is False
    assert error_of(tea, "ListTrafficMirrorFilters") == ("OptInRequired.TrafficMirror", 400)
    assert error_of(tea, "CreateTrafficMirrorFilter") == ("OptInRequired.TrafficMirror", 400)
    opened = tea("OpenTrafficMirrorService")
    assert opened["Code"] == "200" and opened["RequestId"]
    assert tea("GetTrafficMirrorServiceStatus")["Enabled"] is True
    assert error_of(tea, "OpenTrafficMirrorService") == ("ORDER.OPEND", 400)
    assert filters(tea) == []
    # Another region of the same account is still closed.
    other = server.tea("cn-shanghai")
    assert other("GetTrafficMirrorServiceStatus")["Enabled"] is False
    assert error_of(other, "ListTrafficMirrorSessions") == ("OptInRequired.TrafficMirror", 400)


def test_region_is_required(tea):
    assert error_of(tea, "ListTrafficMirrorFilters", region=None) == ("MissingParameter", 400)
    assert error_of(tea, "CreateTrafficMirrorFilter", region=None) == ("MissingParameter", 400)


def test_every_answer_has_a_request_id_and_errors_have_the_envelope(server, tea):
    ids = {tea("GetTrafficMirrorServiceStatus")["RequestId"], tea("ListTrafficMirrorFilters")["RequestId"]}
    assert len(ids) == 2 and all(ids)
    # A raw legacy-style request with a form body: the error envelope as JSON.
    status, doc, _ = server.alibaba_v1({"Action": "DeleteTrafficMirrorSession", "Version": "2016-04-28",
                                         "RegionId": "cn-hangzhou", "TrafficMirrorSessionId": "tms-00000000000000000"})
    assert status == 404
    assert set(doc) == {"RequestId", "HostId", "Code", "Message"}
    assert doc["Code"] == "ResourceNotFound.TrafficMirrorSession"
    assert error_of(tea, "DeleteTrafficMirrorFilter", TrafficMirrorFilterId="tmf-00000000000000000") == \
        ("ResourceNotFound.TrafficMirrorFilter", 404)


# === filters and rules ===

def test_filter_with_inline_rules_reads_back_in_alibaba_terms(tea):
    created = tea("CreateTrafficMirrorFilter", TrafficMirrorFilterName="web", TrafficMirrorFilterDescription="d",
                  ResourceGroupId="rg-test", Tag=[{"Key": "team", "Value": "net"}],
                  IngressRules=[rule(1, "TCP", SourcePortRange="22/40", DestinationPortRange="80/80"),
                                rule(2, "ALL", "drop")],
                  EgressRules=[rule(1, "ICMP", IpVersion="IPv6", SourceCidrBlock="2001:db8::/32",
                                    DestinationCidrBlock="::/0")])
    fid = created["TrafficMirrorFilterId"]
    assert fid.startswith("tmf-") and created["ResourceGroupId"] == "rg-test"
    [f] = filters(tea, TrafficMirrorFilterIds=[fid])
    assert f["TrafficMirrorFilterStatus"] == "Creating"
    assert (f["TrafficMirrorFilterName"], f["TrafficMirrorFilterDescription"], f["ResourceGroupId"]) == \
        ("web", "d", "rg-test")
    assert f["Tags"] == [{"Key": "team", "Value": "net"}]
    assert len(f["CreationTime"]) == len("2023-09-05T15:26Z") and f["CreationTime"].endswith("Z")
    tcp, all_ = f["IngressRules"]
    assert tcp["TrafficMirrorFilterRuleId"].startswith("tmr-")
    assert (tcp["Protocol"], tcp["SourcePortRange"], tcp["DestinationPortRange"], tcp["Action"], tcp["IpVersion"],
            tcp["TrafficDirection"], tcp["TrafficMirrorFilterId"], tcp["Priority"]) == \
        ("TCP", "22/40", "80/80", "accept", "IPv4", "ingress", fid, 1)
    assert (all_["Protocol"], all_["SourcePortRange"], all_["DestinationPortRange"], all_["Action"]) == \
        ("ALL", "-1/-1", "-1/-1", "drop")
    [icmp6] = f["EgressRules"]
    assert (icmp6["Protocol"], icmp6["IpVersion"], icmp6["SourcePortRange"], icmp6["TrafficDirection"]) == \
        ("ICMP", "IPv6", "-1/-1", "egress")
    assert tcp["TrafficMirrorFilterRuleStatus"] == "Creating"
    f = wait_for(lambda: filters(tea, TrafficMirrorFilterIds=[fid])[0],
                 lambda f: f["TrafficMirrorFilterStatus"] == "Created"
                 and all(r["TrafficMirrorFilterRuleStatus"] == "Created" for r in f["IngressRules"] + f["EgressRules"]))


def test_filter_lifecycle_and_busy_errors(tea):
    fid = tea("CreateTrafficMirrorFilter")["TrafficMirrorFilterId"]
    assert filter_status(tea, fid) == "Creating"
    assert error_of(tea, "UpdateTrafficMirrorFilterAttribute", TrafficMirrorFilterId=fid,
                    TrafficMirrorFilterName="x") == ("IncorrectStatus.TrafficMirrorFilter", 400)
    assert error_of(tea, "CreateTrafficMirrorFilterRules", TrafficMirrorFilterId=fid,
                    IngressRules=[rule()]) == ("IncorrectStatus.TrafficMirrorFilter", 400)
    wait_filter(tea, fid)
    tea("UpdateTrafficMirrorFilterAttribute", TrafficMirrorFilterId=fid, TrafficMirrorFilterName="renamed",
        TrafficMirrorFilterDescription="new")
    assert filter_status(tea, fid) == "Modifying"
    assert error_of(tea, "DeleteTrafficMirrorFilter", TrafficMirrorFilterId=fid) == \
        ("IncorrectStatus.TrafficMirrorFilter", 400)
    wait_filter(tea, fid)
    [f] = filters(tea, TrafficMirrorFilterIds=[fid])
    assert (f["TrafficMirrorFilterName"], f["TrafficMirrorFilterDescription"]) == ("renamed", "new")
    tea("DeleteTrafficMirrorFilter", TrafficMirrorFilterId=fid)
    assert filter_status(tea, fid) == "Deleting"
    assert error_of(tea, "DeleteTrafficMirrorFilter", TrafficMirrorFilterId=fid) == \
        ("IncorrectStatus.TrafficMirrorFilter", 400)
    wait_filter(tea, fid, None)
    assert error_of(tea, "DeleteTrafficMirrorFilter", TrafficMirrorFilterId=fid) == \
        ("ResourceNotFound.TrafficMirrorFilter", 404)


def test_rules_create_update_delete(tea):
    fid = tea("CreateTrafficMirrorFilter")["TrafficMirrorFilterId"]
    wait_filter(tea, fid)
    out = tea("CreateTrafficMirrorFilterRules", TrafficMirrorFilterId=fid,
              IngressRules=[rule(3, "UDP"), rule(1, "TCP")], EgressRules=[rule(2, "ICMP")])
    ingress = [r["InstanceId"] for r in out["IngressRules"]]
    egress = [r["InstanceId"] for r in out["EgressRules"]]
    assert len(ingress) == 2 and len(egress) == 1 and all(i.startswith("tmr-") for i in ingress + egress)
    [f] = filters(tea, TrafficMirrorFilterIds=[fid])
    by_id = {r["TrafficMirrorFilterRuleId"]: r for r in f["IngressRules"] + f["EgressRules"]}
    # Request order: the first ingress rule asked for priority 3, the second priority 1.
    assert (by_id[ingress[0]]["Priority"], by_id[ingress[1]]["Priority"]) == (3, 1)
    assert by_id[egress[0]]["Protocol"] == "ICMP"
    assert all(r["TrafficMirrorFilterRuleStatus"] == "Creating" for r in by_id.values())
    wait_for(lambda: filters(tea, TrafficMirrorFilterIds=[fid])[0]["IngressRules"],
             lambda rs: all(r["TrafficMirrorFilterRuleStatus"] == "Created" for r in rs))
    # Update: RuleAction (not Action), ports, priority.
    tea("UpdateTrafficMirrorFilterRuleAttribute", TrafficMirrorFilterRuleId=ingress[0], RuleAction="drop",
        Priority=5, DestinationPortRange="53/53")
    rule_of = lambda rid: next(r for r in (lambda f: f["IngressRules"] + f["EgressRules"])(
        filters(tea, TrafficMirrorFilterIds=[fid])[0]) if r["TrafficMirrorFilterRuleId"] == rid)
    assert rule_of(ingress[0])["TrafficMirrorFilterRuleStatus"] == "Modifying"
    assert error_of(tea, "UpdateTrafficMirrorFilterRuleAttribute", TrafficMirrorFilterRuleId=ingress[0],
                    Priority=6) == ("IncorrectStatus.TrafficMirrorRule", 400)
    r = wait_for(lambda: rule_of(ingress[0]), lambda r: r["TrafficMirrorFilterRuleStatus"] == "Created")
    assert (r["Action"], r["Priority"], r["DestinationPortRange"], r["Protocol"]) == ("drop", 5, "53/53", "UDP")
    # Changing a TCP rule to ALL drops its ports; ICMP rules refuse port ranges.
    tea("UpdateTrafficMirrorFilterRuleAttribute", TrafficMirrorFilterRuleId=ingress[0], Protocol="ALL")
    r = wait_for(lambda: rule_of(ingress[0]), lambda r: r["TrafficMirrorFilterRuleStatus"] == "Created")
    assert (r["Protocol"], r["DestinationPortRange"]) == ("ALL", "-1/-1")
    assert error_of(tea, "UpdateTrafficMirrorFilterRuleAttribute", TrafficMirrorFilterRuleId=egress[0],
                    SourcePortRange="1/2") == ("InvalidParameter", 400)
    # Delete two rules at once.
    tea("DeleteTrafficMirrorFilterRules", TrafficMirrorFilterId=fid, TrafficMirrorFilterRuleIds=ingress)
    assert rule_of(ingress[1])["TrafficMirrorFilterRuleStatus"] == "Deleting"
    wait_for(lambda: filters(tea, TrafficMirrorFilterIds=[fid])[0]["IngressRules"], lambda rs: rs == [])
    assert error_of(tea, "DeleteTrafficMirrorFilterRules", TrafficMirrorFilterId=fid,
                    TrafficMirrorFilterRuleIds=[ingress[0]]) == ("ResourceNotFound.TrafficMirrorRule", 404)
    assert error_of(tea, "UpdateTrafficMirrorFilterRuleAttribute",
                    TrafficMirrorFilterRuleId="tmr-00000000000000000", Priority=1) == \
        ("ResourceNotFound.TrafficMirrorRule", 404)


@pytest.mark.parametrize("bad", [
    rule(11),  # rule priorities are 1-10
    rule(0),
    rule(1, "GRE"),
    rule(1, "ICMP", SourcePortRange="1/2"),
    rule(1, "TCP", SourcePortRange="0/10"),
    rule(1, "TCP", SourcePortRange="10/9"),
    rule(1, "TCP", SourcePortRange="1/65536"),
    rule(1, action="reject"),
    rule(1, IpVersion="IPv6"),  # IPv4 CIDRs
    rule(1, IpVersion="IPv5"),
    rule(1, SourceCidrBlock="10.0.0.0/33"),
])
def test_rule_values_are_checked(tea, bad):
    assert error_of(tea, "CreateTrafficMirrorFilter", IngressRules=[bad]) == ("InvalidParameter", 400)
    assert filters(tea) == []


def test_rule_priorities_are_unique_per_direction(tea):
    assert error_of(tea, "CreateTrafficMirrorFilter", IngressRules=[rule(1), rule(1, "UDP")]) == \
        ("DuplicatedParam.Priority", 400)
    fid = tea("CreateTrafficMirrorFilter", IngressRules=[rule(1)], EgressRules=[rule(1)])["TrafficMirrorFilterId"]
    wait_filter(tea, fid)
    assert error_of(tea, "CreateTrafficMirrorFilterRules", TrafficMirrorFilterId=fid,
                    IngressRules=[rule(1, "UDP")]) == ("DuplicatedParam.Priority", 400)
    assert error_of(tea, "CreateTrafficMirrorFilterRules", TrafficMirrorFilterId=fid) == ("MissingParameter", 400)


def test_rule_quota_exceeded_with_a_lower_quota(tmp_path):
    quotas = tmp_path / "quotas.json"
    quotas.write_text(json.dumps({"rules_per_filter_direction": 2, "sources_per_session": 2}))
    srv = Server(tmp_path / "data", extra_args=["--quotas", str(quotas)]).start()
    try:
        tea = srv.tea()
        tea("OpenTrafficMirrorService")
        assert error_of(tea, "CreateTrafficMirrorFilter", EgressRules=[rule(1), rule(2), rule(3)]) == \
            ("QuotaExceeded.RulesPerDirection", 400)
        # Sources per session.
        fid = tea("CreateTrafficMirrorFilter")["TrafficMirrorFilterId"]
        enis = [srv.register(f"198.18.3.{n}", instance_id=f"i-q{n}") for n in range(1, 5)]
        assert error_of(tea, "CreateTrafficMirrorSession", TrafficMirrorSourceIds=enis[:3],
                        TrafficMirrorTargetId=enis[3], TrafficMirrorTargetType="NetworkInterface",
                        TrafficMirrorFilterId=fid, Priority=1) == ("QuotaExceeded.SourcesPerSession", 400)
        sid = tea("CreateTrafficMirrorSession", TrafficMirrorSourceIds=enis[:2], TrafficMirrorTargetId=enis[3],
                  TrafficMirrorTargetType="NetworkInterface", TrafficMirrorFilterId=fid,
                  Priority=1)["TrafficMirrorSessionId"]
        wait_session(tea, sid)
        assert error_of(tea, "AddSourcesToTrafficMirrorSession", TrafficMirrorSessionId=sid,
                        TrafficMirrorSourceIds=[enis[2]]) == ("QuotaExceeded.SourcesPerSession", 400)
    finally:
        srv.stop()


# === sessions ===

@pytest.fixture
def lab(server, tea):
    """Three source interfaces, a sensor interface and an idle filter."""
    srcs = [server.register(f"198.18.0.{n}", instance_id=f"i-src{n}") for n in range(2, 5)]
    sensor = server.register("198.18.1.2", instance_id="i-sensor")
    fid = tea("CreateTrafficMirrorFilter", IngressRules=[rule()])["TrafficMirrorFilterId"]
    wait_filter(tea, fid)
    return srcs, sensor, fid


def new_session(tea, sources, target, fid, priority, **extra):
    return tea("CreateTrafficMirrorSession", TrafficMirrorSourceIds=sources, TrafficMirrorTargetId=target,
               TrafficMirrorTargetType=extra.pop("TrafficMirrorTargetType", "NetworkInterface"),
               TrafficMirrorFilterId=fid, Priority=priority, **extra)["TrafficMirrorSessionId"]


def test_session_defaults_lifecycle_and_sources(tea, lab):
    (a, b, c), sensor, fid = lab
    out = tea("CreateTrafficMirrorSession", TrafficMirrorSourceIds=[a], TrafficMirrorTargetId=sensor,
              TrafficMirrorTargetType="NetworkInterface", TrafficMirrorFilterId=fid, Priority=1,
              TrafficMirrorSessionName="s1", ResourceGroupId="rg-1", Tag=[{"Key": "k", "Value": "v"}])
    sid = out["TrafficMirrorSessionId"]
    assert sid.startswith("tms-") and out["ResourceGroupId"] == "rg-1"
    [s] = sessions(tea, TrafficMirrorSessionIds=[sid])
    assert s["TrafficMirrorSessionStatus"] == "Creating"
    assert s["Enabled"] is False and s["PacketLength"] == 1500
    assert 0 <= s["VirtualNetworkId"] <= 16777215
    assert (s["TrafficMirrorTargetId"], s["TrafficMirrorTargetType"], s["TrafficMirrorSourceIds"]) == \
        (sensor, "NetworkInterface", [a])
    assert (s["TrafficMirrorSessionName"], s["ResourceGroupId"], s["Tags"], s["Priority"]) == \
        ("s1", "rg-1", [{"Key": "k", "Value": "v"}], 1)
    assert s["TrafficMirrorSessionBusinessStatus"] == "Normal"
    assert error_of(tea, "AddSourcesToTrafficMirrorSession", TrafficMirrorSessionId=sid,
                    TrafficMirrorSourceIds=[b]) == ("IncorrectStatus.TrafficMirrorSession", 400)
    wait_session(tea, sid)
    tea("AddSourcesToTrafficMirrorSession", TrafficMirrorSessionId=sid, TrafficMirrorSourceIds=[b, c])
    assert session_status(tea, sid) == "Modifying"
    wait_session(tea, sid)
    assert sessions(tea, TrafficMirrorSessionIds=[sid])[0]["TrafficMirrorSourceIds"] == [a, b, c]
    assert error_of(tea, "AddSourcesToTrafficMirrorSession", TrafficMirrorSessionId=sid,
                    TrafficMirrorSourceIds=[b]) == ("ResourceAlreadyAssociated.TrafficMirrorSource", 400)
    tea("RemoveSourcesFromTrafficMirrorSession", TrafficMirrorSessionId=sid, TrafficMirrorSourceIds=[a, c])
    assert session_status(tea, sid) == "Modifying"
    wait_session(tea, sid)
    assert sessions(tea, TrafficMirrorSessionIds=[sid])[0]["TrafficMirrorSourceIds"] == [b]
    assert error_of(tea, "RemoveSourcesFromTrafficMirrorSession", TrafficMirrorSessionId=sid,
                    TrafficMirrorSourceIds=[a]) == ("ResourceNotFound.TrafficMirrorSource", 404)
    # Filter in use by the session.
    assert error_of(tea, "DeleteTrafficMirrorFilter", TrafficMirrorFilterId=fid) == \
        ("IncorrectStatus.TrafficMirrorFilter", 400)
    tea("DeleteTrafficMirrorSession", TrafficMirrorSessionId=sid)
    assert session_status(tea, sid) == "Deleting"
    assert error_of(tea, "UpdateTrafficMirrorSessionAttribute", TrafficMirrorSessionId=sid, Enabled=True) == \
        ("IncorrectStatus.TrafficMirrorSession", 400)
    wait_session(tea, sid, None)
    assert error_of(tea, "DeleteTrafficMirrorSession", TrafficMirrorSessionId=sid) == \
        ("ResourceNotFound.TrafficMirrorSession", 404)
    tea("DeleteTrafficMirrorFilter", TrafficMirrorFilterId=fid)
    wait_filter(tea, fid, None)


def test_update_session_attributes(tea, lab):
    (a, b, _), sensor, fid = lab
    fid2 = tea("CreateTrafficMirrorFilter")["TrafficMirrorFilterId"]
    sid = new_session(tea, [a], sensor, fid, 7, VirtualNetworkId=42, PacketLength=128, Enabled=True)
    wait_session(tea, sid)
    [s] = sessions(tea, TrafficMirrorSessionIds=[sid])
    assert (s["VirtualNetworkId"], s["PacketLength"], s["Enabled"]) == (42, 128, True)
    wait_filter(tea, fid2)
    tea("UpdateTrafficMirrorSessionAttribute", TrafficMirrorSessionId=sid, TrafficMirrorSessionName="n",
        TrafficMirrorSessionDescription="d", TrafficMirrorTargetId="lb-sensor", TrafficMirrorTargetType="SLB",
        TrafficMirrorFilterId=fid2, VirtualNetworkId=0, Priority=8, Enabled=False, PacketLength=8500)
    assert session_status(tea, sid) == "Modifying"
    wait_session(tea, sid)
    [s] = sessions(tea, TrafficMirrorSessionIds=[sid])
    assert (s["TrafficMirrorSessionName"], s["TrafficMirrorSessionDescription"], s["TrafficMirrorTargetId"],
            s["TrafficMirrorTargetType"], s["TrafficMirrorFilterId"], s["VirtualNetworkId"], s["Priority"],
            s["Enabled"], s["PacketLength"]) == ("n", "d", "lb-sensor", "SLB", fid2, 0, 8, False, 8500)
    for bad in ({"PacketLength": 63}, {"PacketLength": 8501}, {"VirtualNetworkId": 16777216},
                {"Priority": 0}, {"Priority": 32767}, {"TrafficMirrorSessionName": "http://x"},
                {"TrafficMirrorTargetId": sensor, "TrafficMirrorTargetType": "Instance"}):
        assert error_of(tea, "UpdateTrafficMirrorSessionAttribute", TrafficMirrorSessionId=sid, **bad) == \
            ("InvalidParameter", 400), bad
    assert error_of(tea, "UpdateTrafficMirrorSessionAttribute", TrafficMirrorSessionId=sid,
                    TrafficMirrorTargetId=sensor) == ("MissingParameter", 400)


def test_session_checks(server, tea, lab):
    (a, b, c), sensor, fid = lab
    free = server.register_free("198.18.2.9")
    unknown = "eni-00000000000000000"
    cases = [
        (dict(sources=[a], target=a), "OperationDenied.DuplicateRole"),
        (dict(sources=[a, a], target=sensor), "DuplicatedParam.SourceInstanceIds"),
        (dict(sources=[free], target=sensor), "OperationDenied.FreeNetworkInterface"),
        (dict(sources=[unknown], target=sensor), "ResourceNotFound.NetworkInterface"),
        (dict(sources=[a], target=unknown), "ResourceNotFound.NetworkInterface"),
        (dict(sources=[a], target=sensor, fid="tmf-00000000000000000"), "ResourceNotFound.TrafficMirrorFilter"),
    ]
    for case, code in cases:
        got = error_of(new_session, tea, case["sources"], case["target"], case.get("fid", fid), 1)
        assert got[0] == code, (case, got)
    assert sessions(tea) == []
    sid = new_session(tea, [a], sensor, fid, 1)
    # Priorities are unique per account and region.
    assert error_of(new_session, tea, [b], sensor, fid, 1) == ("InvalidParameter", 400)
    # An interface that is a source cannot be a target, and the reverse.
    assert error_of(new_session, tea, [b], a, fid, 2) == ("OperationDenied.DuplicateRole", 400)
    assert error_of(new_session, tea, [sensor], b, fid, 2) == ("OperationDenied.DuplicateRole", 400)
    wait_session(tea, sid)
    assert error_of(tea, "AddSourcesToTrafficMirrorSession", TrafficMirrorSessionId=sid,
                    TrafficMirrorSourceIds=[b, b]) == ("DuplicatedParam.SourceInstanceIds", 400)
    assert error_of(tea, "AddSourcesToTrafficMirrorSession", TrafficMirrorSessionId=sid,
                    TrafficMirrorSourceIds=[sensor]) == ("OperationDenied.DuplicateRole", 400)
    assert error_of(tea, "AddSourcesToTrafficMirrorSession", TrafficMirrorSessionId=sid,
                    TrafficMirrorSourceIds=[free]) == ("OperationDenied.FreeNetworkInterface", 400)
    # Three sessions per source interface (the default quota); the fourth fails.
    for priority in (2, 3):
        new_session(tea, [a], sensor, fid, priority)
    assert error_of(new_session, tea, [a], sensor, fid, 4) == ("QuotaExceeded.SessionsPerSource", 400)
    assert error_of(tea, "CreateTrafficMirrorSession", TrafficMirrorSourceIds=[a], TrafficMirrorFilterId=fid,
                    Priority=9) == ("MissingParameter", 400)


# === lifecycle across a restart ===

def test_pending_tasks_finish_after_a_restart(tmp_path):
    # A delay far longer than the test: nothing finishes before the crash.
    srv = Server(tmp_path / "data", task_delay_ms=600_000).start()
    try:
        tea = srv.tea()
        tea("OpenTrafficMirrorService")
        fid = tea("CreateTrafficMirrorFilter", IngressRules=[rule()])["TrafficMirrorFilterId"]
        doomed = tea("CreateTrafficMirrorFilter")["TrafficMirrorFilterId"]
        assert filter_status(tea, fid) == "Creating"
        srv.stop(signal.SIGKILL)
        srv.start(task_delay_ms=600_000)
        assert filter_status(tea, fid) == "Creating"  # durable, still pending
        srv.stop(signal.SIGKILL)
        srv.start(task_delay_ms=50)
        wait_filter(tea, fid)
        wait_filter(tea, doomed)
        tea("DeleteTrafficMirrorFilter", TrafficMirrorFilterId=doomed)
        srv.stop(signal.SIGKILL)
        srv.start(task_delay_ms=50)
        wait_filter(tea, doomed, None)
        assert filters(tea, TrafficMirrorFilterIds=[fid])[0]["IngressRules"][0][
            "TrafficMirrorFilterRuleStatus"] == "Created"
    finally:
        srv.stop()


# === dry run and idempotency ===

def test_dry_run_checks_and_writes_nothing(server, tea, lab):
    (a, b, _), sensor, fid = lab
    sid = new_session(tea, [a], sensor, fid, 1)
    unused = tea("CreateTrafficMirrorFilter")["TrafficMirrorFilterId"]
    wait_session(tea, sid)
    wait_filter(tea, unused)
    rid = filters(tea, TrafficMirrorFilterIds=[fid])[0]["IngressRules"][0]["TrafficMirrorFilterRuleId"]
    before = (filters(tea), sessions(tea))
    calls = [
        ("CreateTrafficMirrorFilter", dict(IngressRules=[rule()])),
        ("DeleteTrafficMirrorFilter", dict(TrafficMirrorFilterId=unused)),
        ("CreateTrafficMirrorFilterRules", dict(TrafficMirrorFilterId=fid, EgressRules=[rule()])),
        ("DeleteTrafficMirrorFilterRules", dict(TrafficMirrorFilterId=fid, TrafficMirrorFilterRuleIds=[rid])),
        ("UpdateTrafficMirrorFilterAttribute", dict(TrafficMirrorFilterId=fid, TrafficMirrorFilterName="x")),
        ("UpdateTrafficMirrorFilterRuleAttribute", dict(TrafficMirrorFilterRuleId=rid, Priority=2)),
        ("CreateTrafficMirrorSession", dict(TrafficMirrorSourceIds=[b], TrafficMirrorTargetId=sensor,
                                            TrafficMirrorTargetType="NetworkInterface",
                                            TrafficMirrorFilterId=fid, Priority=2)),
        ("UpdateTrafficMirrorSessionAttribute", dict(TrafficMirrorSessionId=sid, Enabled=True)),
        ("AddSourcesToTrafficMirrorSession", dict(TrafficMirrorSessionId=sid, TrafficMirrorSourceIds=[b])),
        ("RemoveSourcesFromTrafficMirrorSession", dict(TrafficMirrorSessionId=sid, TrafficMirrorSourceIds=[a])),
        ("DeleteTrafficMirrorSession", dict(TrafficMirrorSessionId=sid)),
    ]
    for action, params in calls:
        assert error_of(tea, action, DryRun=True, **params) == ("DryRunOperation", 400), action
    assert (filters(tea), sessions(tea)) == before
    # Dry run still runs every check.
    assert error_of(tea, "DeleteTrafficMirrorSession", DryRun=True,
                    TrafficMirrorSessionId="tms-00000000000000000")[0] == "ResourceNotFound.TrafficMirrorSession"
    assert error_of(tea, "CreateTrafficMirrorFilter", DryRun=True, IngressRules=[rule(11)])[0] == "InvalidParameter"


def test_client_token_replays_and_mismatches(tea):
    first = tea("CreateTrafficMirrorFilter", ClientToken="tok-1", TrafficMirrorFilterName="a")
    again = tea("CreateTrafficMirrorFilter", ClientToken="tok-1", TrafficMirrorFilterName="a")
    assert first["TrafficMirrorFilterId"] == again["TrafficMirrorFilterId"]
    assert len(filters(tea)) == 1
    assert error_of(tea, "CreateTrafficMirrorFilter", ClientToken="tok-1", TrafficMirrorFilterName="b") == \
        ("IdempotentParameterMismatch", 400)
    assert error_of(tea, "CreateTrafficMirrorFilter", ClientToken="x" * 65)[0] == "InvalidParameter"


# === pagination ===

def test_pagination_and_unknown_ids(tea):
    made = sorted(tea("CreateTrafficMirrorFilter", TrafficMirrorFilterName=f"f{n}")["TrafficMirrorFilterId"]
                  for n in range(23))
    first = tea("ListTrafficMirrorFilters")
    assert (first["TotalCount"], first["Count"], first["MaxResults"]) == ("23", 10, 10)
    seen, token, pages = [], None, 0
    while True:
        params = {"MaxResults": 7}
        if token:
            params["NextToken"] = token
        page = tea("ListTrafficMirrorFilters", **params)
        assert page["TotalCount"] == "23" and page["MaxResults"] == 7
        assert page["Count"] == len(page["TrafficMirrorFilters"]) <= 7
        seen += [f["TrafficMirrorFilterId"] for f in page["TrafficMirrorFilters"]]
        pages += 1
        token = page["NextToken"]
        if not token:
            break
    assert seen == made and pages == 4
    for bad in (0, 101):
        assert error_of(tea, "ListTrafficMirrorFilters", MaxResults=bad) == ("InvalidParameter", 400)
    assert error_of(tea, "ListTrafficMirrorFilters", NextToken="not-a-token") == ("InvalidNextToken", 400)
    unknown = tea("ListTrafficMirrorFilters", TrafficMirrorFilterIds=["tmf-00000000000000000", "bogus"])
    assert unknown["TrafficMirrorFilters"] == [] and unknown["TotalCount"] == "0"
    assert sessions(tea, TrafficMirrorSessionIds=["tms-00000000000000000"]) == []
    both = filters(tea, TrafficMirrorFilterIds=[made[3], made[0], "tmf-00000000000000000"])
    assert [f["TrafficMirrorFilterId"] for f in both] == [made[0], made[3]]
    assert [f["TrafficMirrorFilterName"] for f in filters(tea, TrafficMirrorFilterName="f5")] == ["f5"]


def test_session_list_filters_and_pages(tea, lab):
    (a, b, c), sensor, fid = lab
    ids = [new_session(tea, [src], sensor, fid, p, Enabled=(p % 2 == 0), VirtualNetworkId=100 + p)
           for p, src in zip(range(1, 4), (a, b, c))]
    page = tea("ListTrafficMirrorSessions", MaxResults=2)
    assert page["TotalCount"] == "3" and len(page["TrafficMirrorSessions"]) == 2 and page["NextToken"]
    rest = tea("ListTrafficMirrorSessions", MaxResults=2, NextToken=page["NextToken"])
    assert rest["NextToken"] == "" and len(rest["TrafficMirrorSessions"]) == 1
    assert sorted(s["TrafficMirrorSessionId"] for s in page["TrafficMirrorSessions"] + rest["TrafficMirrorSessions"]) \
        == sorted(ids)
    pick = lambda **kw: [s["TrafficMirrorSessionId"] for s in sessions(tea, **kw)]
    assert pick(TrafficMirrorSourceId=b) == [ids[1]]
    assert pick(Enabled=True) == [ids[1]]
    assert pick(Priority=3) == [ids[2]]
    assert pick(VirtualNetworkId=101) == [ids[0]]
    assert sorted(pick(TrafficMirrorTargetId=sensor)) == sorted(ids)
    assert sorted(pick(TrafficMirrorFilterId=fid)) == sorted(ids)
    assert pick(TrafficMirrorFilterId="tmf-00000000000000000") == []


# === tags and resource groups ===

def test_tags_and_resource_groups(tea, lab):
    (a, _, _), sensor, fid = lab
    sid = new_session(tea, [a], sensor, fid, 1)
    tea("TagResources", ResourceType="TRAFFICMIRRORFILTER", ResourceId=[fid],
        Tag=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "net"}])
    tea("TagResources", ResourceType="trafficmirrorsession", ResourceId=[sid], Tag=[{"Key": "env", "Value": "dev"}])
    listed = tea("ListTagResources", ResourceType="TRAFFICMIRRORFILTER", ResourceId=[fid])
    rows = listed["TagResources"]["TagResource"]
    assert sorted((r["ResourceId"], r["ResourceType"], r["TagKey"], r["TagValue"]) for r in rows) == [
        (fid, "TRAFFICMIRRORFILTER", "env", "prod"), (fid, "TRAFFICMIRRORFILTER", "team", "net")]
    first = tea("ListTagResources", ResourceType="TRAFFICMIRRORFILTER", ResourceId=[fid], MaxResults=1)
    assert len(first["TagResources"]["TagResource"]) == 1 and first["NextToken"]
    second = tea("ListTagResources", ResourceType="TRAFFICMIRRORFILTER", ResourceId=[fid], MaxResults=1,
                 NextToken=first["NextToken"])
    assert second["NextToken"] == "" and \
        first["TagResources"]["TagResource"][0]["TagKey"] != second["TagResources"]["TagResource"][0]["TagKey"]
    by_tag = tea("ListTagResources", ResourceType="TRAFFICMIRRORSESSION", Tag=[{"Key": "env", "Value": "dev"}])
    assert [r["ResourceId"] for r in by_tag["TagResources"]["TagResource"]] == [sid]
    assert [f["TrafficMirrorFilterId"] for f in filters(tea, Tags=[{"Key": "env", "Value": "prod"}])] == [fid]
    assert filters(tea, Tags=[{"Key": "env", "Value": "dev"}]) == []
    assert [s["TrafficMirrorSessionId"] for s in sessions(tea, Tags=[{"Key": "env"}])] == [sid]
    tea("UnTagResources", ResourceType="TRAFFICMIRRORFILTER", ResourceId=[fid], TagKey=["env"])
    assert filters(tea, TrafficMirrorFilterIds=[fid])[0]["Tags"] == [{"Key": "team", "Value": "net"}]
    tea("UnTagResources", ResourceType="TRAFFICMIRRORFILTER", ResourceId=[fid], All=True)
    assert filters(tea, TrafficMirrorFilterIds=[fid])[0]["Tags"] == []
    assert error_of(tea, "UnTagResources", ResourceType="TRAFFICMIRRORFILTER", ResourceId=[fid]) == \
        ("MissingParameter", 400)
    assert error_of(tea, "TagResources", ResourceType="TRAFFICMIRRORFILTER", ResourceId=[sid],
                    Tag=[{"Key": "k", "Value": "v"}]) == ("ResourceNotFound.TrafficMirrorFilter", 404)
    assert error_of(tea, "TagResources", ResourceType="VPC", ResourceId=[fid],
                    Tag=[{"Key": "k", "Value": "v"}]) == ("InvalidParameter", 400)
    assert error_of(tea, "TagResources", ResourceType="TRAFFICMIRRORFILTER", ResourceId=[fid],
                    Tag=[{"Key": "acs:reserved", "Value": "v"}]) == ("InvalidTagKey", 400)
    assert error_of(tea, "TagResources", ResourceType="TRAFFICMIRRORFILTER", ResourceId=[fid],
                    Tag=[{"Key": f"k{n}", "Value": "v"} for n in range(21)])[0] == "InvalidParameter"
    # tapwire's reserved keys: a session's sampling and caps, checked (Alibaba's code for a
    # bad value is InvalidParameter); refused elsewhere.
    tea("TagResources", ResourceType="TRAFFICMIRRORSESSION", ResourceId=[sid],
        Tag=[{"Key": "tapwire:sample-packets", "Value": "4"}])
    assert error_of(tea, "TagResources", ResourceType="TRAFFICMIRRORSESSION", ResourceId=[sid],
                    Tag=[{"Key": "tapwire:max-pps", "Value": "lots"}]) == ("InvalidParameter", 400)
    assert error_of(tea, "TagResources", ResourceType="TRAFFICMIRRORFILTER", ResourceId=[fid],
                    Tag=[{"Key": "tapwire:max-pps", "Value": "10"}]) == ("InvalidParameter", 400)
    keys = {t["Key"] for t in sessions(tea, TrafficMirrorSessionIds=[sid])[0]["Tags"]}
    assert "tapwire:sample-packets" in keys and "tapwire:max-pps" not in keys
    # Resource groups.
    tea("MoveResourceGroup", ResourceType="TrafficMirrorFilter", ResourceId=fid, NewResourceGroupId="rg-new")
    tea("MoveResourceGroup", ResourceType="TrafficMirrorSession", ResourceId=sid, NewResourceGroupId="rg-new")
    assert filters(tea, TrafficMirrorFilterIds=[fid])[0]["ResourceGroupId"] == "rg-new"
    assert [f["TrafficMirrorFilterId"] for f in filters(tea, ResourceGroupId="rg-new")] == [fid]
    assert [s["TrafficMirrorSessionId"] for s in sessions(tea, ResourceGroupId="rg-new")] == [sid]
    assert sessions(tea, ResourceGroupId="rg-other") == []
    assert error_of(tea, "MoveResourceGroup", ResourceType="TrafficMirrorSession",
                    ResourceId="tms-00000000000000000", NewResourceGroupId="rg-x") == \
        ("ResourceNotFound.TrafficMirrorSession", 404)


def test_unknown_action_is_rejected(server):
    status, doc, _ = server.alibaba_v1({"Action": "DescribeVpcs", "Version": "2016-04-28", "RegionId": "cn-hangzhou"},
                                in_body=False)
    assert doc["Code"] == "InvalidAction.NotFound", (status, doc)


def test_a_session_to_an_slb_reaches_the_sensor_group_of_that_name(server, tea, lab):
    (a, _, _), sensor, fid = lab
    other = server.register("198.18.1.3", instance_id="i-sensor2")
    made = server.cli("sensor-group", "create", "--name", "ids", "--member", sensor, "--member", other,
                      "--mode", "replicate")
    slb = made["SlbInstanceId"]
    sid = new_session(tea, [a], slb, fid, 1, TrafficMirrorTargetType="SLB")
    [s] = sessions(tea, TrafficMirrorSessionIds=[sid])
    assert (s["TrafficMirrorTargetId"], s["TrafficMirrorTargetType"]) == (slb, "SLB")
    status, config = server.v1("GET", f"/tapwire/v1/network-interfaces/{a}/config")
    assert status == 200
    (rendered,) = [x for x in config["sessions"] if x["session_id"] == sid]
    assert rendered["group"]["mode"] == "replicate"
    assert {m["network_interface_id"] for m in rendered["group"]["members"]} == {sensor, other}
    refused = server.cli("sensor-group", "delete", made["SensorGroupId"], check=False)
    assert refused.returncode != 0 and "in use" in refused.stderr, refused.stderr
    # An SLB that names no group is set aside with why, not mirrored silently.
    lone = new_session(tea, [a], "lb-00000000000000000", fid, 2, TrafficMirrorTargetType="SLB")
    status, config = server.v1("GET", f"/tapwire/v1/network-interfaces/{a}/config")
    (aside,) = [x for x in config["unsupported"] if x["session_id"] == lone]
    assert "names no sensor group" in aside["reason"], aside
