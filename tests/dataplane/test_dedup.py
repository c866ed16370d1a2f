"""A flow mirrored at both ends (an agent on each host) reaches the sensor's
`tapwire receive --dedup` twice and is written once; without --dedup, twice."""
import os

from conftest import BIN
from lab import sh, wait_for
from test_mirroring import applied

PORT = 5699


def peer_agent(env):
    """An agent on the peer host, enrolled with a join token of its own."""
    host = f"tw-test-peer-{env.lab.suffix}"
    log = open(env.tmp / "peer-agent.log", "a")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    agent = env.lab.spawn("peer", BIN, "agent", "--server", env.url, "--ca-cert", str(env.server.ca),
                          "--state-dir", str(env.tmp / "peer-state"), "--token", env.join_token(host=host),
                          "--interface", "eth0", "--report-interval", "1s", "--host", host,
                          stderr=log, env=environment)
    (eni,) = wait_for(lambda: [i for i in env.server_interfaces() if i["host"] == host], timeout=20,
                      what="the peer's interface registered")
    return agent, eni["id"]


def receive(env, *extra):
    """`tapwire receive` in the sensor namespace; its process and output file."""
    out = env.tmp / f"sensor{len(extra)}.pcapng"
    log = open(env.tmp / f"receive{len(extra)}.log", "w+")
    proc = env.lab.spawn("sens", BIN, "receive", "--listen", f"{env.lab.ip['sens']}:4789", "--write", str(out),
                         *extra, stderr=log)
    wait_for(lambda: "listening on" in (env.tmp / f"receive{len(extra)}.log").read_text(), what="receive ready")
    return proc, out, env.tmp / f"receive{len(extra)}.log"


def summary(log):
    line = next(l for l in log.read_text().splitlines() if "received=" in l)
    return {k: int(v) for k, v in (w.split("=") for w in line.replace("(", " ").replace(")", " ").split()
                                   if "=" in w and w.split("=")[1].isdigit())}


def test_a_flow_mirrored_at_both_ends_is_written_once(mirror_env):
    env = mirror_env
    agent, peer_eni = peer_agent(env)
    try:
        out_rule = [{"direction": "egress", "number": 1, "protocol": 17, "dport": PORT}]
        in_rule = [{"direction": "ingress", "number": 1, "protocol": 17, "dport": PORT}]
        env.make_session(env.make_filter(out_rule), number=1, vni=71)  # the sender's copy
        env.ec2.create_traffic_mirror_session(NetworkInterfaceId=peer_eni, TrafficMirrorTargetId=env.target(),
                                              TrafficMirrorFilterId=env.make_filter(in_rule), SessionNumber=1,
                                              VirtualNetworkId=72)  # the receiver's copy
        applied(env)
        wait_for(lambda: any(s["session_id"] for s in env.server.v1(
            "GET", f"/tapwire/v1/network-interfaces/{peer_eni}/config")[1]["sessions"]), what="the peer's session")
        for round_, (extra, written) in enumerate((((), 100), (("--dedup", "20ms"), 50)), start=1):
            proc, out, log = receive(env, *extra)
            env.udp("src", env.lab.ip["peer"], PORT, count=50, interval=0.01)
            # Both agents say they sent their 50 copies; receive drains its socket on SIGTERM.
            wait_for(lambda: [s["Counters"]["mirrored_packets"] for s in env.server.cli("session", "status")]
                     == [50 * round_] * 2, timeout=20, what="both ends' copies sent")
            env.lab.stop(proc)
            s = summary(log)
            assert (s["received"], s["written"], s["duplicates"]) == (100, written, 100 - written), s
            ids = sh("tshark", "-r", str(out), "-T", "fields", "-e", "ip.id", timeout=60).split()
            assert len(ids) == written and len(set(ids)) == 50, ids
    finally:
        env.lab.stop(agent)
