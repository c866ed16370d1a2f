"""Trust between the control plane and its agents, over loopback: join tokens, the
credential they buy, what that credential may do (its own host's interfaces, nothing
else), revocation, interface integrity, and every own route refusing strangers."""
import json
import threading
import time

import pytest

from alibaba_clients import Tea
from identity_support import ONCE, ali_error, ec2_error
from tapwire_support import Key

# Every route under /tapwire/v1 (enrollment refuses a stranger too: no valid token).
ROUTES = [
    ("GET", "/tapwire/v1/network-interfaces"),
    ("POST", "/tapwire/v1/network-interfaces"),
    ("DELETE", "/tapwire/v1/network-interfaces/eni-0123456789abcdef0"),
    ("GET", "/tapwire/v1/network-interfaces/eni-0123456789abcdef0/config"),
    ("POST", "/tapwire/v1/network-interfaces/eni-0123456789abcdef0/status"),
    ("GET", "/tapwire/v1/agents"),
    ("DELETE", "/tapwire/v1/agents/web1"),
    ("GET", "/tapwire/v1/agents/tokens"),
    ("POST", "/tapwire/v1/agents/tokens"),
    ("DELETE", "/tapwire/v1/agents/tokens/twjt-0123456789abcdef"),
    ("POST", "/tapwire/v1/agents/enroll"),
    ("GET", "/tapwire/v1/accounts"),
    ("POST", "/tapwire/v1/accounts"),
    ("GET", "/tapwire/v1/access-keys"),
    ("POST", "/tapwire/v1/access-keys"),
    ("DELETE", "/tapwire/v1/access-keys/TWAK0000000000000000"),
    ("GET", "/tapwire/v1/audit"),
]


def token(server, host=None, uses=1, ttl="10m"):
    args = ["agent", "token", "create", "--uses", str(uses), "--ttl", ttl]
    if host:
        args += ["--host", host]
    return server.cli(*args)["Token"]


def enroll(server, text, host):
    """(status, body) of an enrollment, as an agent sends it: no signature."""
    return server.v1("POST", "/tapwire/v1/agents/enroll", body={"token": text, "host": host}, sign=False)


def agent_key(server, host):
    status, body = enroll(server, token(server, host=host), host)
    assert status == 201, body
    assert body["Host"] == host and body["AccountId"] == "123456789012"
    return Key(body["AccessKeyId"], body["SecretAccessKey"], body["AccountId"])


def registration(host, ip, ifname="eth0"):
    return {"host": host, "ifname": ifname, "instance_id": None, "mac": None, "addresses": [ip]}


def test_every_own_route_refuses_a_stranger(server):
    for method, path in ROUTES:
        body = {} if method == "POST" else None
        status, answer = server.v1(method, path, body=body, sign=False)
        assert status in (400, 401), (method, path, status, answer)
        if path.endswith("/enroll"):
            assert status == 400 or answer["code"] in ("AuthFailure", "MalformedQueryString"), answer
        else:
            assert status == 401 and answer["code"] == "MissingAuthenticationToken", (method, path, answer)
    status, answer = server.v1("POST", "/tapwire/v1/agents/enroll", body={"token": "nope", "host": "h"}, sign=False)
    assert (status, answer["code"]) == (401, "AuthFailure")
    assert [a["Name"] for a in server.cli("account", "list")] == ["root"]


def test_a_token_is_used_once_expires_and_binds_its_host(server):
    one = token(server, host="web1")
    listed = server.cli("agent", "token", "list")
    assert [t["Host"] for t in listed] == ["web1"] and one.split(".")[1] not in json.dumps(listed)
    assert enroll(server, one, "web1")[0] == 201
    status, body = enroll(server, one, "web1")
    assert (status, body["code"]) == (401, "AuthFailure"), body
    assert server.cli("agent", "token", "list") == []
    bound = token(server, host="web2")
    status, body = enroll(server, bound, "web3")
    assert (status, body["code"]) == (401, "AuthFailure") and "for host 'web2'" in body["message"]
    short = token(server, ttl="1s")
    time.sleep(2.1)
    status, body = enroll(server, short, "web4")
    assert (status, body["code"]) == (401, "AuthFailure") and "expired" in body["message"]
    forged = bound.split(".")[0] + "." + "0" * 64
    assert enroll(server, forged, "web2")[0] == 401
    two = token(server, uses=2)
    assert enroll(server, two, "a")[0] == 201 and enroll(server, two, "b")[0] == 201 and enroll(server, two, "c")[0] == 401
    hosts = {a["Host"] for a in server.cli("agent", "list")}
    assert hosts == {"web1", "a", "b"}
    results = {r["Result"] for r in server.audit("--action", "EnrollAgent")}
    assert results == {"OK", "AuthFailure"}


def test_an_agent_credential_reaches_its_own_host_only(server):
    sensor = server.register("198.18.60.9", host="sensor1")
    web2 = server.register("198.18.60.3", host="web2")
    key = agent_key(server, "web1")
    status, mine = server.v1("POST", "/tapwire/v1/network-interfaces", body=registration(None, "198.18.60.2"), key=key)
    assert status == 200 and mine["host"] == "web1", mine
    eni = mine["id"]
    assert server.v1("GET", f"/tapwire/v1/network-interfaces/{eni}/config", key=key)[0] == 200
    assert server.v1("POST", f"/tapwire/v1/network-interfaces/{eni}/status", body={"applied_revision": 1},
                     key=key)[0] == 204
    # Another host's interface: not its config, not its status, not its registration.
    for method, path, body in [
        ("GET", f"/tapwire/v1/network-interfaces/{web2}/config", None),
        ("POST", f"/tapwire/v1/network-interfaces/{web2}/status", {"applied_revision": 1}),
        ("POST", "/tapwire/v1/network-interfaces", registration("web2", "198.18.60.33")),
    ]:
        status, answer = server.v1(method, path, body=body, key=key)
        assert (status, answer["code"]) == (403, "UnauthorizedOperation"), (method, path, answer)
    # The hijack of the trust issue: the sensor's address moved by someone else's agent.
    status, answer = server.v1("POST", "/tapwire/v1/network-interfaces", body=registration("sensor1", "198.18.61.66"),
                               key=key)
    assert (status, answer["code"]) == (403, "UnauthorizedOperation")
    [s] = [i for i in server.cli("interface", "list") if i["NetworkInterfaceId"] == sensor]
    assert s["Addresses"] == ["198.18.60.9"]
    # Nothing else of tapwire's, and neither cloud API.
    for method, path in [("GET", "/tapwire/v1/network-interfaces"), ("GET", "/tapwire/v1/accounts"),
                         ("GET", "/tapwire/v1/audit"), ("POST", "/tapwire/v1/agents/tokens"),
                         ("DELETE", f"/tapwire/v1/network-interfaces/{web2}")]:
        status, answer = server.v1(method, path, body={} if method == "POST" else None, key=key)
        assert (status, answer["code"]) == (403, "UnauthorizedOperation"), (method, path, answer)
    assert ec2_error(server.ec2(key, config=ONCE).describe_traffic_mirror_sessions) == ("UnauthorizedOperation", 403)
    assert ali_error(Tea(server.endpoint, key), "ListTrafficMirrorFilters") == ("Forbidden.RAM", 403)
    refusals = [r for r in server.audit("--limit", "1000") if r["AccessKeyId"] == key.key_id and r["Result"] != "OK"]
    assert len(refusals) >= 10


def test_addresses_are_unique_in_an_account(server):
    server.register("198.18.62.9", host="sensor1")
    refused = server.cli("interface", "register", "--ip", "198.18.62.9", "--host", "other", check=False)
    assert refused.returncode != 0 and "InvalidIPAddress.InUse" in refused.stderr
    # The operator may still move the sensor's own address (its host and name).
    moved = server.register("198.18.62.10", host="sensor1")
    assert server.register("198.18.62.9", host="other") != moved


def test_revoking_an_agent_closes_its_long_poll_and_refuses_it(server):
    key = agent_key(server, "web1")
    status, mine = server.v1("POST", "/tapwire/v1/network-interfaces", body=registration(None, "198.18.63.2"), key=key)
    eni = mine["id"]
    status, cfg = server.v1("GET", f"/tapwire/v1/network-interfaces/{eni}/config", key=key)
    answer = {}

    def poll():
        answer["started"] = time.monotonic()
        answer["result"] = server.v1("GET", f"/tapwire/v1/network-interfaces/{eni}/config?after={cfg['revision']}&wait=50",
                                     key=key)
        answer["took"] = time.monotonic() - answer["started"]

    waiter = threading.Thread(target=poll)
    waiter.start()
    time.sleep(0.5)
    server.cli("agent", "revoke", "web1", output=None)
    waiter.join(timeout=20)
    assert not waiter.is_alive(), "the long poll outlived the revocation"
    status, body = answer["result"]
    assert (status, body["code"]) == (401, "AuthFailure") and answer["took"] < 20, answer
    assert server.v1("GET", f"/tapwire/v1/network-interfaces/{eni}/config", key=key)[0] == 401
    refused = server.cli("agent", "revoke", "web1", check=False, output=None)
    assert refused.returncode != 0 and "InvalidAgent.NotFound" in refused.stderr
    # Enrolling again is a new credential; the host's interface keeps its ID.
    again = agent_key(server, "web1")
    status, same = server.v1("POST", "/tapwire/v1/network-interfaces", body=registration(None, "198.18.63.2"), key=again)
    assert status == 200 and same["id"] == eni
