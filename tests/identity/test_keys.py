"""Signatures, verified: the root key in every client, and each way a request can be
wrongly signed refused with the cloud's code and status, changing nothing."""
import datetime
import urllib.parse
import urllib.request

import botocore.auth
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from alibaba_clients import Legacy, Tea
from identity_support import ONCE, ali_error, ec2_error, everything
from tapwire_support import Key

UNKNOWN = Key("TWAKDOESNOTEXIST0000", "x" * 40)


def wrong_secret(server):
    return Key(server.root.key_id, "y" * 40)


def test_the_root_key_works_in_all_four_clients(server):
    assert server.aws("describe-traffic-mirror-sessions") == {"TrafficMirrorSessions": []}
    fid = server.ec2(region="cn-hangzhou").create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    tea = Tea(server.endpoint, server.root)
    tea("OpenTrafficMirrorService")
    legacy = Legacy(server.endpoint, server.root)
    listed = legacy("ListTrafficMirrorFilters", TrafficMirrorFilterIds=[fid])["TrafficMirrorFilters"]
    assert [f["TrafficMirrorFilterId"] for f in listed] == [fid]


def test_ec2_refusals_have_the_clouds_codes_and_change_nothing(server):
    before = everything(server)
    assert ec2_error(server.ec2(UNKNOWN, config=ONCE).create_traffic_mirror_filter) == ("AuthFailure", 401)
    assert ec2_error(server.ec2(wrong_secret(server), config=ONCE).create_traffic_mirror_filter) == \
        ("SignatureDoesNotMatch", 403)
    code, err = server.aws("create-traffic-mirror-filter", "--no-sign-request", check=False)
    assert code != 0 and "MissingAuthenticationToken" in err
    code, err = server.aws("create-traffic-mirror-filter", key=wrong_secret(server), check=False)
    assert code != 0 and "SignatureDoesNotMatch" in err
    code, err = server.aws("create-traffic-mirror-filter", key=UNKNOWN, check=False)
    assert code != 0 and "AuthFailure" in err
    create = {"Action": "CreateTrafficMirrorFilter", "Version": "2016-11-15"}
    for broken in ["AWS4-HMAC-SHA256 Credential=abc", "Basic dXNlcjpwYXNz",
                   f"AWS4-HMAC-SHA256 Credential={server.root.key_id}/20261201/us-east-1/ec2/aws4_request, "
                   "SignedHeaders=host;x-amz-date, Signature=nothex"]:
        status, text, _ = server.query(create, sign=False, headers={"Authorization": broken, "X-Amz-Date": "20261201T000000Z"})
        assert (status, "<Code>IncompleteSignature</Code>" in text) == (400, True), text
    # Signed for another service: the scope is checked.
    status, text, _ = server.query(create, service="s3")
    assert status == 400 and "IncompleteSignature" in text
    assert everything(server) == before


def test_the_body_is_covered_by_the_signature(server):
    body = urllib.parse.urlencode({"Action": "CreateTrafficMirrorFilter", "Version": "2016-11-15",
                                   "Description": "signed"}).encode()
    request = AWSRequest(method="POST", url=f"{server.url}/", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    SigV4Auth(Credentials(server.root.key_id, server.root.secret), "ec2", "us-east-1").add_auth(request)
    tampered = body.replace(b"signed", b"forged")
    req = urllib.request.Request(f"{server.url}/", data=tampered, method="POST", headers=dict(request.headers))
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("a tampered body was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 403 and b"SignatureDoesNotMatch" in e.read()
    assert server.ec2().describe_traffic_mirror_filters()["TrafficMirrorFilters"] == []


def test_a_request_signed_16_minutes_ago_is_expired(server, monkeypatch):
    real = botocore.auth.get_current_datetime
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: real() - datetime.timedelta(minutes=16))
    assert ec2_error(server.ec2(config=ONCE).create_traffic_mirror_filter) == ("RequestExpired", 400)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: real() - datetime.timedelta(minutes=14))
    server.ec2(config=ONCE).create_traffic_mirror_filter()
    monkeypatch.undo()
    assert len(server.ec2().describe_traffic_mirror_filters()["TrafficMirrorFilters"]) == 1


def presigned(server, expires, signed_at=None):
    query = urllib.parse.urlencode({"Action": "DescribeTrafficMirrorFilters", "Version": "2016-11-15"})
    request = AWSRequest(method="GET", url=f"{server.url}/?{query}")
    auth = SigV4QueryAuth(Credentials(server.root.key_id, server.root.secret), "ec2", "us-east-1", expires=expires)
    if signed_at:
        original = botocore.auth.get_current_datetime
        botocore.auth.get_current_datetime = lambda: signed_at
        try:
            auth.add_auth(request)
        finally:
            botocore.auth.get_current_datetime = original
    else:
        auth.add_auth(request)
    try:
        with urllib.request.urlopen(request.url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_presigned_get_is_verified_and_expires(server):
    status, text = presigned(server, 60)
    assert status == 200 and "trafficMirrorFilterSet" in text
    hour_ago = botocore.auth.get_current_datetime() - datetime.timedelta(hours=1)
    status, text = presigned(server, 3600 * 2, signed_at=hour_ago)
    assert status == 200, text
    status, text = presigned(server, 60, signed_at=hour_ago)
    assert status == 400 and "RequestExpired" in text


def test_alibaba_refusals_have_the_clouds_codes_and_change_nothing(server):
    Tea(server.endpoint, server.root)("OpenTrafficMirrorService")
    before = everything(server)
    create = {"TrafficMirrorFilterName": "refused"}
    for client in (Tea, Legacy):
        assert ali_error(client(server.endpoint, UNKNOWN), "CreateTrafficMirrorFilter", **create) == \
            ("InvalidAccessKeyId.NotFound", 404)
    assert ali_error(Tea(server.endpoint, wrong_secret(server)), "CreateTrafficMirrorFilter", **create) == \
        ("SignatureDoesNotMatch", 400)
    # The legacy SDK compares the server's string to sign with its own: equal, it tells its
    # user the secret is wrong, as against Alibaba Cloud.
    assert ali_error(Legacy(server.endpoint, wrong_secret(server)), "CreateTrafficMirrorFilter", **create) == \
        ("InvalidAccessKeySecret", 400)
    params = {"Action": "CreateTrafficMirrorFilter", "Version": "2016-04-28", "RegionId": "cn-hangzhou"}
    status, doc, _ = server.alibaba_v1(params, timestamp=(datetime.datetime.now(datetime.timezone.utc) -
                                                          datetime.timedelta(minutes=16)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert (status, doc["Code"]) == (400, "InvalidTimeStamp.Expired")
    status, doc, _ = server.alibaba_v1(params, key=UNKNOWN)
    assert (status, doc["Code"]) == (404, "InvalidAccessKeyId.NotFound")
    unsigned = urllib.request.Request(f"{server.url}/?" + urllib.parse.urlencode(params), data=b"", method="POST")
    try:
        urllib.request.urlopen(unsigned, timeout=10)
        raise AssertionError("an unsigned Alibaba request was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 400 and b"IncompleteSignature" in e.read()
    assert everything(server) == before


def test_a_deleted_key_is_refused_at_once_in_both_dialects(server):
    key = server.create_key()
    ec2, tea = server.ec2(key, config=ONCE), Tea(server.endpoint, key)
    ec2.describe_traffic_mirror_filters()
    tea("OpenTrafficMirrorService")
    listed = server.cli("access-key", "list")
    assert {k["AccessKeyId"] for k in listed} == {server.root.key_id, key.key_id}
    assert key.secret not in str(listed) and server.root.secret not in str(listed)
    server.cli("access-key", "delete", key.key_id)
    assert ec2_error(ec2.describe_traffic_mirror_filters) == ("AuthFailure", 401)
    assert ali_error(tea, "ListTrafficMirrorFilters")[0] == "InvalidAccessKeyId.NotFound"
    refused = server.cli("account", "list", key=key, check=False)
    assert refused.returncode != 0 and "AuthFailure" in refused.stderr


def test_the_tapwire_cli_signs_and_is_refused_with_a_wrong_key(server):
    refused = server.cli("account", "list", key=wrong_secret(server), check=False)
    assert refused.returncode != 0 and "SignatureDoesNotMatch" in refused.stderr
    assert [a["Name"] for a in server.cli("account", "list")] == ["root"]
    # Own endpoints without a signature: refused before any handler runs.
    assert server.v1("GET", "/tapwire/v1/network-interfaces", sign=False)[0] == 401
    assert server.v1("POST", "/tapwire/v1/accounts", body={"name": "x"}, sign=False)[0] == 401
    assert [a["Name"] for a in server.cli("account", "list")] == ["root"]


def test_secrets_never_reach_the_log(server):
    made = server.create_account("logged")
    server.create_key()
    server.ec2(made).describe_traffic_mirror_filters()
    log = server.log()
    assert server.root.secret not in log and made.secret not in log
