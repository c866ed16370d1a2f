"""The audit trail: every write, refused authentication and denied action, with who, when,
from where, what and the request ID the client saw; newest first, filterable, as JSON or a
table; a write's record survives kill -9 with the write; bounded retention."""
import json
import re
import signal

import botocore.exceptions
import pytest

from alibaba_clients import AlibabaError, Tea
from identity_support import ONCE
from tapwire_support import Key, Server


def request_id_of_error(fn, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as info:
        fn(**kwargs)
    return info.value.response["ResponseMetadata"]["RequestId"], info.value.response["Error"]["Code"]


def test_each_write_and_each_refusal_is_listed_with_its_request_id(server, tmp_path):
    root = server.root
    ec2 = server.ec2(config=ONCE)
    made = ec2.create_traffic_mirror_filter(Description="audited")
    fid, create_id = made["TrafficMirrorFilter"]["TrafficMirrorFilterId"], made["ResponseMetadata"]["RequestId"]
    tea = Tea(server.endpoint, root)
    tea("OpenTrafficMirrorService")
    ali = tea("CreateTrafficMirrorFilter", TrafficMirrorFilterName="audited")
    team = server.create_account("audited-team")
    wrong = Key(root.key_id, "z" * 40)
    bad_sig_id, bad_sig = request_id_of_error(server.ec2(wrong, config=ONCE).create_traffic_mirror_filter)
    invalid_id, invalid = request_id_of_error(ec2.create_traffic_mirror_filter_rule, TrafficMirrorFilterId=fid,
                                              TrafficDirection="ingress", RuleNumber=40000, RuleAction="accept",
                                              SourceCidrBlock="0.0.0.0/0", DestinationCidrBlock="0.0.0.0/0")
    policy = tmp_path / "ro.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}))
    ro = server.create_key(account=team.account, policy_file=policy)
    denied_id, denied = request_id_of_error(server.ec2(ro, config=ONCE).create_traffic_mirror_filter)
    with pytest.raises(AlibabaError):
        Tea(server.endpoint, ro)("CreateTrafficMirrorFilter")
    assert (bad_sig, invalid, denied) == ("SignatureDoesNotMatch", "InvalidParameterValue", "UnauthorizedOperation")

    records = server.audit("--limit", "1000")
    by_id = {}
    for r in records:
        by_id.setdefault(r["RequestId"], []).append(r)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["EventTime"]) and r["SourceIPAddress"] == "127.0.0.1"
    times = [r["EventTime"] for r in records]
    assert times == sorted(times, reverse=True), "newest first"
    [w] = by_id[create_id]
    assert (w["EventName"], w["Dialect"], w["Result"], w["Resources"], w["AccountId"], w["AccessKeyId"]) == \
        ("CreateTrafficMirrorFilter", "ec2", "OK", [fid], "123456789012", root.key_id)
    [a] = by_id[ali["RequestId"]]
    assert (a["EventName"], a["Dialect"], a["Resources"]) == ("CreateTrafficMirrorFilter", "alibaba",
                                                              [ali["TrafficMirrorFilterId"]])
    [s] = by_id[bad_sig_id]
    # A refused signature: the claimed key and its account, so an operator sees who was tried.
    assert (s["Result"], s["AccessKeyId"], s["AccountId"], s["EventName"]) == \
        ("SignatureDoesNotMatch", root.key_id, "123456789012", "CreateTrafficMirrorFilter")
    [i] = by_id[invalid_id]
    assert (i["Result"], i["EventName"]) == ("InvalidParameterValue", "CreateTrafficMirrorFilterRule")
    [d] = by_id[denied_id]
    assert (d["Result"], d["AccountId"], d["AccessKeyId"]) == ("UnauthorizedOperation", team.account, ro.key_id)
    names = [(r["Dialect"], r["EventName"], r["Result"]) for r in records]
    assert ("tapwire", "CreateAccount", "OK") in names and ("tapwire", "CreateAccessKey", "OK") in names
    assert ("alibaba", "CreateTrafficMirrorFilter", "Forbidden.RAM") in names
    assert ("alibaba", "OpenTrafficMirrorService", "OK") in names
    # Reads are not writes: no Describe appears.
    assert not [r for r in records if r["EventName"].startswith("Describe") and r["Result"] == "OK"]
    assert root.secret not in json.dumps(records) and team.secret not in json.dumps(records)

    # Filters: action patterns, accounts, age; another account reads only its own trail.
    creates = server.audit("--action", "Create*")
    assert creates and all(r["EventName"].startswith("Create") for r in creates)
    mine = server.audit("--account", team.account)
    assert mine and {r["AccountId"] for r in mine} == {team.account}
    assert server.audit("--since", "1h") == server.audit()
    own = server.audit(key=team)
    assert own and {r["AccountId"] for r in own} == {team.account}
    refused = server.cli("audit", "--account", "123456789012", key=team, check=False)
    assert refused.returncode != 0 and "UnauthorizedOperation" in refused.stderr
    table = server.cli("audit", "--limit", "3", output="table")
    header, *rows = table.splitlines()
    assert header.split()[:3] == ["TIME", "ACCOUNT", "ACCESS"] and len(rows) == 3


def test_a_writes_record_survives_kill_9_with_the_write(tmp_path):
    srv = Server(tmp_path / "data").start()
    try:
        made = srv.ec2().create_traffic_mirror_filter()
        rid = made["ResponseMetadata"]["RequestId"]
        srv.restart(signal.SIGKILL)
        [record] = [r for r in srv.audit() if r["RequestId"] == rid]
        assert record["Resources"] == [made["TrafficMirrorFilter"]["TrafficMirrorFilterId"]]
    finally:
        srv.stop()


def test_retention_is_bounded(tmp_path):
    srv = Server(tmp_path / "data", ["--audit-max-records", "5"]).start()
    try:
        ec2 = srv.ec2()
        for _ in range(12):
            ec2.create_traffic_mirror_filter()
        assert len(srv.audit("--limit", "1000")) > 5
        srv.restart()  # pruning runs at start, then hourly
        kept = srv.audit("--limit", "1000")
        assert len(kept) == 5 and all(r["EventName"] == "CreateTrafficMirrorFilter" for r in kept)
    finally:
        srv.stop()
