"""The server under hostile input: each finding of the hostile-input issue, reproduced as
an attacker would, then shown refused at its root. Client-visible symptoms go through the
aws CLI or boto3; the server's own (connections, methods, encodings) through raw HTTP."""
import http.client
import json
import resource
import socket
import time
import urllib.parse

import botocore.exceptions
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ec2_support import Server, error_code, rule

VERSION = "2016-11-15"


def post(server, body, headers=None, method="POST", path="/", timeout=10, sign=True):
    """One raw request on a fresh connection, signed with the root key by botocore's SigV4
    over exactly these bytes (the door's refusals come before the signature check, so
    signing never hides one); returns (status, headers, body text)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
    hdrs.update(headers or {})
    if isinstance(body, str):
        body = body.encode()
    if sign:
        hdrs = sigv4_headers(server, method, path, body, hdrs)
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    out = resp.status, dict(resp.getheaders()), resp.read().decode("utf-8", "replace")
    conn.close()
    return out


def sigv4_headers(server, method, path, body, headers):
    request = AWSRequest(method=method, url=f"{server.url}{path}", data=body, headers=headers)
    SigV4Auth(Credentials(server.root.key_id, server.root.secret), "ec2", "us-east-1").add_auth(request)
    return dict(request.headers)


def form(**params):
    return urllib.parse.urlencode({"Version": VERSION, **params})


def code_of(xml_text):
    a = xml_text.find("<Code>")
    return xml_text[a + 6:xml_text.find("</Code>")] if a >= 0 else None


def count_filters(ec2):
    return len(ec2.describe_traffic_mirror_filters()["TrafficMirrorFilters"])


# === 1. characters XML 1.0 cannot carry ===

BAD_CHARS = ["\x01", "\x00", "\x0b", "\x1b", "\ufffe"]


@pytest.mark.parametrize("char", BAD_CHARS, ids=lambda c: f"U+{ord(c):04X}")
def test_unstorable_characters_are_refused_and_describe_keeps_working(server, ec2, char):
    code, status = error_code(ec2.create_traffic_mirror_filter, Description=f"a{char}b")
    assert (code, status) == ("InvalidParameterValue", 400)
    flt = ec2.create_traffic_mirror_filter(Description="ok")["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    code, _ = error_code(rule, ec2, flt, 1, Description=f"x{char}")
    assert code == "InvalidParameterValue"
    code, _ = error_code(ec2.create_tags, Resources=[flt], Tags=[{"Key": f"k{char}", "Value": "v"}])
    assert code == "InvalidParameterValue"
    code, _ = error_code(ec2.create_tags, Resources=[flt], Tags=[{"Key": "k", "Value": f"v{char}"}])
    assert code == "InvalidParameterValue"
    # Every caller's Describe still parses (boto3 and the aws CLI both parse the XML).
    assert [f["Description"] for f in ec2.describe_traffic_mirror_filters()["TrafficMirrorFilters"]] == ["ok"]
    assert len(server.aws("describe-traffic-mirror-filters")["TrafficMirrorFilters"]) == 1


def test_the_cli_refuses_a_control_character_in_a_description(server):
    code, err = server.aws("create-traffic-mirror-filter", "--description", "a\x01b", check=False)
    assert code != 0 and "InvalidParameterValue" in err
    assert server.aws("describe-traffic-mirror-filters")["TrafficMirrorFilters"] == []


def test_the_alibaba_door_refuses_them_too(server):
    status, doc, _ = server.alibaba_v1({
        "Version": "2016-04-28", "Action": "CreateTrafficMirrorFilter", "RegionId": "cn-hangzhou",
        "TrafficMirrorFilterName": "a\x1bb"})
    assert (status, doc["Code"]) == (400, "InvalidParameter")


# === 2. Describe filters: bounded, linear ===

def test_describe_filters_are_bounded_as_ec2_bounds_them(server, ec2):
    ec2.create_traffic_mirror_filter(Description="d" * 255)
    status, _, body = post(server, form(Action="DescribeTrafficMirrorFilters", **{
        "Filter.1.Name": "description", "Filter.1.Value.1": "*" + "a?" * 5000}))
    assert (status, code_of(body)) == (400, "InvalidParameterValue")
    many = {f"Filter.{n}.Name": "description" for n in range(1, 10_001)}
    many.update({f"Filter.{n}.Value.1": "x" for n in range(1, 10_001)})
    status, _, body = post(server, form(Action="DescribeTrafficMirrorFilters", **many))
    assert status == 400 and code_of(body) in ("FilterLimitExceeded", "MalformedQueryString")
    values = {"Filter.1.Name": "description", **{f"Filter.1.Value.{m}": f"v{m}*" for m in range(1, 202)}}
    status, _, body = post(server, form(Action="DescribeTrafficMirrorFilters", **values))
    assert (status, code_of(body)) == (400, "FilterLimitExceeded")
    # Within the bounds, wildcards still work.
    got = ec2.describe_traffic_mirror_filters(Filters=[{"Name": "description", "Values": ["d*d", "?" * 255]}])
    assert len(got["TrafficMirrorFilters"]) == 1


# === 3. timeouts and the connection cap ===

@pytest.fixture
def tight(tmp_path):
    srv = Server(tmp_path / "tight", ["--max-connections", "40", "--idle-timeout", "2s",
                                       "--header-timeout", "1s", "--body-timeout", "1s"]).start()
    yield srv
    srv.stop()


def test_a_half_sent_body_is_cut_off(tight):
    s = socket.create_connection(("127.0.0.1", tight.port), timeout=10)
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              b"Content-Length: 1000\r\n\r\nVersion=2016-11-15&Action=DescribeTrafficMirrorFilters")
    started = time.monotonic()
    reply = s.recv(4096)
    s.close()
    assert reply.startswith(b"HTTP/1.1 400"), reply[:80]
    assert b"MalformedQueryString" in reply
    assert time.monotonic() - started < 8, "the server waited for the rest of the body"


def read_until_closed(sock):
    """Reads until the server closes (an answer such as 408 before the close is fine);
    the socket's timeout fails the test if it never does."""
    data = sock.recv(4096)
    while data:
        data = sock.recv(4096)


def test_idle_and_slow_connections_are_closed(tight):
    idle = socket.create_connection(("127.0.0.1", tight.port), timeout=10)
    slow = socket.create_connection(("127.0.0.1", tight.port), timeout=10)
    slow.sendall(b"POST / HTTP/1.1\r\nHo")
    read_until_closed(slow)
    read_until_closed(idle)
    idle.close()
    slow.close()


@pytest.mark.one_process  # a connection cap is per process; behind a balancer it is per replica
def test_over_the_cap_answers_503_and_recovers(tight):
    held = [socket.create_connection(("127.0.0.1", tight.port), timeout=10) for _ in range(40)]
    time.sleep(0.3)
    status, headers, _ = post(tight, form(Action="DescribeTrafficMirrorFilters"), timeout=5)
    assert status == 503 and headers.get("Retry-After") == "1"
    for s in held:
        s.close()
    time.sleep(0.3)
    status, _, _ = post(tight, form(Action="DescribeTrafficMirrorFilters"), timeout=5)
    assert status == 200


def test_the_open_file_limit_is_raised(tmp_path):
    """Started with the usual soft limit of 1024, the server lifts it to the hard limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard <= 1024:
        pytest.skip(f"the hard open-file limit here is {hard}; nothing to raise it to")
    srv = Server(tmp_path / "fd", preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))).start()
    try:
        limits = open(f"/proc/{srv.proc.pid}/limits").read()
        line = next(l for l in limits.splitlines() if l.startswith("Max open files"))
        soft, now_hard = line.split()[3:5]
        assert int(soft) == int(now_hard) == hard
    finally:
        srv.stop()


# === 4. sizes ===

def test_sizes_are_the_clouds(server, ec2):
    code, err = server.aws("create-traffic-mirror-filter", "--description", "d" * 256, check=False)
    assert code != 0 and "InvalidParameterValue" in err
    ec2.create_traffic_mirror_filter(Description="d" * 255)
    code, _ = error_code(ec2.create_traffic_mirror_filter, ClientToken="t" * 65)
    assert code == "InvalidParameterValue"
    code, _ = error_code(ec2.create_traffic_mirror_filter, ClientToken="tök")
    assert code == "InvalidParameterValue"
    status, _, body = post(server, form(Action="CreateTrafficMirrorFilter", Description="x" * (300 * 1024)))
    assert status == 400
    status, doc, _ = server.alibaba_v1({
        "Version": "2016-04-28", "Action": "CreateTrafficMirrorFilter", "RegionId": "cn-hangzhou",
        "TrafficMirrorFilterName": "n" * 129})
    assert doc["Code"] == "InvalidParameter"
    assert count_filters(ec2) == 1


# === 5. ClientTokens: per account and region, and they expire ===

def test_client_tokens_are_scoped_by_region(server):
    east, west = server.ec2(), server.ec2(region="eu-west-1")
    a = east.create_traffic_mirror_filter(ClientToken="same")["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    b = west.create_traffic_mirror_filter(ClientToken="same")["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    assert a != b
    assert [f["TrafficMirrorFilterId"] for f in west.describe_traffic_mirror_filters()["TrafficMirrorFilters"]] == [b]


def test_client_tokens_expire(tmp_path):
    srv = Server(tmp_path / "ttl", ["--client-token-ttl", "2s"]).start()
    try:
        ec2 = srv.ec2()
        a = ec2.create_traffic_mirror_filter(ClientToken="t1")["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
        assert ec2.create_traffic_mirror_filter(ClientToken="t1")["TrafficMirrorFilter"]["TrafficMirrorFilterId"] == a
        time.sleep(2.5)
        b = ec2.create_traffic_mirror_filter(ClientToken="t1")["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
        assert b != a
    finally:
        srv.stop()


def test_create_delete_cycles_stay_small_on_disk(server, ec2):
    for i in range(50):
        # The largest description the server takes (a refused 64 KiB one falls back to 255).
        try:
            f = ec2.create_traffic_mirror_filter(Description="d" * 65536, ClientToken=f"cycle-{i}")
        except botocore.exceptions.ClientError:
            f = ec2.create_traffic_mirror_filter(Description="d" * 255, ClientToken=f"cycle-{i}")
        ec2.delete_traffic_mirror_filter(TrafficMirrorFilterId=f["TrafficMirrorFilter"]["TrafficMirrorFilterId"])
    size = sum(p.stat().st_size for p in server.data_dir.iterdir())
    assert size < 4 * 1024 * 1024, f"{size} bytes on disk after 50 cycles"


# === 6. regions come from a list ===

def test_unknown_regions_are_refused_before_anything_is_stored(server, ec2):
    made_up = server.ec2(region="mars-north-1")
    code, status = error_code(made_up.create_traffic_mirror_filter)
    assert (code, status) == ("InvalidParameterValue", 400)
    for region in ["../../etc/passwd", "x" * 4096]:
        status, doc, _ = server.alibaba_v1({
            "Version": "2016-04-28", "Action": "OpenTrafficMirrorService", "RegionId": region})
        assert doc["Code"] == "InvalidRegionId.NotFound", doc
    status, doc, _ = server.alibaba_v1({
        "Version": "2016-04-28", "Action": "GetTrafficMirrorServiceStatus", "RegionId": "../../etc/passwd"})
    assert doc["Code"] == "InvalidRegionId.NotFound"
    assert count_filters(ec2) == 0


# === 8. only GET and POST reach the dialects ===

@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "DELETE", "PUT", "PATCH"])
def test_other_methods_are_405_and_write_nothing(server, ec2, method):
    status, headers, _ = post(server, form(Action="CreateTrafficMirrorFilter"), method=method,
                              path="/?" + form(Action="CreateTrafficMirrorFilter"))
    assert status == 405 and headers.get("allow") == "GET, POST"
    assert count_filters(ec2) == 0


def test_get_with_a_body_and_repeated_keys_are_refused(server, ec2):
    status, _, body = post(server, form(Action="CreateTrafficMirrorFilter"), method="GET",
                           path="/?" + form(Action="CreateTrafficMirrorFilter"))
    assert (status, code_of(body)) == (400, "MalformedQueryString")
    status, _, body = post(server, form(Action="CreateTrafficMirrorFilter") + "&Description=a&Description=b")
    assert (status, code_of(body)) == (400, "MalformedQueryString")
    status, _, body = post(server, "Description=b", path="/?" + form(Action="CreateTrafficMirrorFilter", Description="a"))
    assert (status, code_of(body)) == (400, "MalformedQueryString")
    assert count_filters(ec2) == 0
    # A plain GET with its parameters in the query string still works.
    status, _, body = post(server, b"", method="GET", path="/?" + form(Action="CreateTrafficMirrorFilter"))
    assert status == 200 and count_filters(ec2) == 1


# === 9. strict parsing ===

def test_numbers_cidrs_and_text_are_parsed_strictly(server, ec2):
    flt = ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    base = dict(Action="CreateTrafficMirrorFilterRule", TrafficMirrorFilterId=flt, TrafficDirection="ingress",
                RuleAction="accept", SourceCidrBlock="0.0.0.0/0", DestinationCidrBlock="0.0.0.0/0")
    for bad in ["+104", " 103 ", "1e2"]:
        status, _, body = post(server, form(**{**base, "RuleNumber": bad}))
        assert (status, code_of(body)) == (400, "InvalidParameterValue"), bad
    status, _, body = post(server, form(**{**base, "RuleNumber": "1", "SourceCidrBlock": "010.0.0.0/8"}))
    assert (status, code_of(body)) == (400, "InvalidParameterValue")
    # Host bits are kept as given, the same way every time.
    kept = rule(ec2, flt, 2, SourceCidrBlock="10.0.0.1/24")
    assert kept["SourceCidrBlock"] == "10.0.0.1/24"
    described = ec2.describe_traffic_mirror_filter_rules(TrafficMirrorFilterRuleIds=[kept["TrafficMirrorFilterRuleId"]])
    assert described["TrafficMirrorFilterRules"][0]["SourceCidrBlock"] == "10.0.0.1/24"
    status, _, body = post(server, form(Action="CreateTrafficMirrorFilter").encode() + b"&Description=%ff%fe")
    assert (status, code_of(body)) == (400, "MalformedQueryString")
    status, _, body = post(server, form(Action="DescribeTrafficMirrorFilters"),
                           headers={"Content-Type": "APPLICATION/X-WWW-FORM-URLENCODED; Charset=UTF-8"})
    assert status == 200
    status, _, body = post(server, form(Action="DescribeTrafficMirrorFilters"),
                           headers={"Content-Type": "application/x-www-form-urlencodedX"})
    assert status == 415


def test_each_dialect_is_answered_in_its_own_envelope(server):
    status, headers, body = post(server, "Action=ListTrafficMirrorFilters&RegionId=cn-hangzhou&AccessKeyId=x&SignatureNonce=1")
    assert json.loads(body)["Code"] == "MissingParameter"
    status, doc, _ = server.alibaba_v1({
        "Version": "2016-04-28", "Action": "OpenTrafficMirrorService", "RegionId": "cn-hangzhou"})
    assert status == 200
    for name in [" http://evil", "HTTPS://evil"]:
        status, doc, _ = server.alibaba_v1({
            "Version": "2016-04-28", "Action": "CreateTrafficMirrorFilter", "RegionId": "cn-hangzhou",
            "TrafficMirrorFilterName": name})
        assert doc["Code"] == "InvalidParameter", name


# === 10. the inventory is bounded and paged ===

def test_interfaces_have_a_quota_and_describe_pages(tmp_path):
    quotas = tmp_path / "quotas.json"
    quotas.write_text(json.dumps({"interfaces_per_account": 7}))
    srv = Server(tmp_path / "inv", ["--quotas", str(quotas)]).start()
    try:
        for i in range(7):
            srv.register(f"198.18.3.{i + 1}", host=f"h{i}")
        out = srv.cli("interface", "register", "--ip", "198.18.3.99", "--ifname", "eth0", "--host", "h99",
                      check=False)
        assert out.returncode != 0 and "NetworkInterfaceLimitExceeded" in (out.stdout + out.stderr)
        ec2 = srv.ec2()
        first = ec2.describe_network_interfaces(MaxResults=5)
        assert len(first["NetworkInterfaces"]) == 5 and first.get("NextToken")
        rest = ec2.describe_network_interfaces(MaxResults=5, NextToken=first["NextToken"])
        assert len(rest["NetworkInterfaces"]) == 2 and not rest.get("NextToken")
    finally:
        srv.stop()
