"""One structured line per API request, with what an operator needs to find it again
(the request ID the client was given, account, key ID, dialect, action, status,
latency), never a secret; no terminal colour codes in a log file."""
import json
import urllib.error
import urllib.request

from tapwire_support import Server


def request_lines(server):
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("target") == "tapwire::request"]


def test_each_request_is_one_json_line_naming_who_did_what(server):
    ec2 = server.ec2()
    made = ec2.create_traffic_mirror_filter(Description="logged")
    request_id = made["ResponseMetadata"]["RequestId"]
    ali = server.alibaba_v1({"Action": "ListTrafficMirrorFilters", "RegionId": "cn-hangzhou",
                              "Version": "2016-04-28"})
    (line,) = [line for line in request_lines(server) if line["request_id"] == request_id]
    assert line["account"] == "123456789012" and line["access_key"] == server.root.key_id
    assert line["dialect"] == "ec2" and line["action"] == "CreateTrafficMirrorFilter" and line["status"] == 200
    assert isinstance(line["latency_ms"], float) and line["latency_ms"] >= 0
    assert line["source"] == "127.0.0.1" and line["level"] == "INFO" and line["timestamp"].endswith("Z")
    alibaba = [line for line in request_lines(server) if line["dialect"] == "alibaba"]
    assert [line["action"] for line in alibaba] == ["ListTrafficMirrorFilters"] and alibaba[0]["status"] == ali[0]
    assert server.root.secret not in server.log()


def test_refused_and_unknown_requests_are_logged_too(server):
    refused = server.query({"Action": "DescribeTrafficMirrorFilters", "Version": "2016-11-15"}, sign=False)
    assert refused[0] in (400, 401, 403)
    try:
        urllib.request.urlopen(f"{server.url}/no/such/path", timeout=5)
    except urllib.error.HTTPError as e:
        assert e.code == 404
    lines = request_lines(server)
    assert any(line["action"] == "DescribeTrafficMirrorFilters" and line["status"] == refused[0] and
               line["access_key"] == "" for line in lines), lines
    assert any(line["path"] == "/no/such/path" and line["status"] == 404 for line in lines), lines


def test_a_log_file_has_no_colour_codes(tmp_path):
    # Text lines (the default) written to a file, as a service manager or `>` would.
    srv = Server(tmp_path / "data").start()
    try:
        srv.ec2().describe_traffic_mirror_filters()
        text = srv.log()
        assert "tapwire::request" in text and "\x1b[" not in text
    finally:
        srv.stop()
