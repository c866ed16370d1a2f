"""Trust between the control plane and its agents, end to end in namespaces: the agent
enrolls with a one-use join token over TLS and mirrors; its credential outlives restarts;
another host's agent cannot move the sensor (the hijack of the trust issue) and the copies
keep going where they belong; a revoked agent is refused and keeps its last configuration."""
import os
import stat

from lab import wait_for
from test_mirroring import applied

from tapwire_support import Key


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_agent_enrolled_over_tls_with_a_one_use_token(mirror_env):
    env = mirror_env
    assert env.url.startswith("https://")
    credential = env.state_dir / "agent-credential.json"
    assert mode(credential) == 0o600 and mode(env.state_dir) == 0o700
    assert env.server.root.secret not in credential.read_text()
    assert env.server.cli("agent", "token", "list") == [], "the one-use token is spent"
    [agent] = env.server.cli("agent", "list")
    assert agent["Host"] == env.host
    assert [i["NetworkInterfaceId"] for i in agent["Interfaces"]] == [env.source_eni()]
    # The aws CLI and the tapwire CLI reach the same TLS listener with the CA bundle.
    assert env.server.aws("describe-network-interfaces")["NetworkInterfaces"]
    env.lab.add_vxlan(42)
    f = env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17, "dport": 5101}])
    env.make_session(f, number=1, vni=42)
    applied(env)
    env.udp("peer", env.lab.ip["src"], 5101, count=20)
    env.wait_copies(lambda c: len(c) >= 20)
    # The spent token cannot enroll anyone else.
    status, body = env.server.v1("POST", "/tapwire/v1/agents/enroll", sign=False,
                                 body={"token": env.spent_token, "host": env.host})
    assert (status, body["code"]) == (401, "AuthFailure")


def test_another_hosts_agent_cannot_move_the_sensor(mirror_env):
    env = mirror_env
    env.lab.add_vxlan(42)
    f = env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17, "dport": 5102}])
    env.make_session(f, number=1, vni=42)
    applied(env)
    sensor_host = f"tw-test-sensor-{env.lab.suffix}-{env.lab.ip['sens']}"
    status, made = env.server.v1("POST", "/tapwire/v1/agents/enroll", sign=False,
                                 body={"token": env.join_token(host="evil"), "host": "evil"})
    assert status == 201
    evil = Key(made["AccessKeyId"], made["SecretAccessKey"])
    hijack = {"host": sensor_host, "ifname": "eth0", "instance_id": None, "mac": None, "addresses": ["198.18.9.66"]}
    status, body = env.server.v1("POST", "/tapwire/v1/network-interfaces", body=hijack, key=evil)
    assert (status, body["code"]) == (403, "UnauthorizedOperation"), body
    status, body = env.server.v1("GET", f"/tapwire/v1/network-interfaces/{env.source_eni()}/config", key=evil)
    assert (status, body["code"]) == (403, "UnauthorizedOperation")
    sensor = next(i for i in env.server_interfaces() if i["host"] == sensor_host)
    assert sensor["addresses"] == [env.lab.ip["sens"]]
    env.udp("peer", env.lab.ip["src"], 5102, count=20)
    env.wait_copies(lambda c: len(c) >= 20)
    assert env.vxlan_rx("vx42") == 20, "the copies still reach the real sensor"


def test_a_revoked_agent_is_refused_and_keeps_its_last_configuration(mirror_env):
    env = mirror_env
    env.lab.add_vxlan(42)
    f = env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17, "dport": 5103}])
    sid = env.make_session(f, number=1, vni=42)
    revision = applied(env)
    env.server.cli("agent", "revoke", env.host, output=None)
    error = wait_for(lambda: (c := env.agent_interface()["control"]).get("last_error") and not c["connected"]
                     and c["last_error"], timeout=15, what="the agent to be refused")
    assert "401" in error or "AuthFailure" in error or "revoked" in error, error
    env.ec2.modify_traffic_mirror_session(TrafficMirrorSessionId=sid, VirtualNetworkId=77)
    env.udp("peer", env.lab.ip["src"], 5103, count=15)
    env.wait_copies(lambda c: len(c) >= 15)
    assert {c["vni"] for c in env.copies()} == {42}, "the revoked agent did not get the change"
    assert env.revision() == revision
    assert [r for r in env.server.audit("--limit", "1000") if r["Result"] == "AuthFailure"]
