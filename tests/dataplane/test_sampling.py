"""A session's sampling and caps, set with reserved tags through the unmodified clients
(boto3 and the aws CLI), applied by a real agent, seen at the sensor: a tenth of 2,000
flows kept, each whole; a 1,000 packets-a-second cap under a 10,000 pps burst; both
counted at the control plane."""
import time

from test_mirroring import applied
from lab import sh, wait_for

PORT = 5688


def session(env):
    env.lab.add_vxlan(61)
    fid = env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17, "dport": PORT}])
    return env.make_session(fid, number=1, vni=61)


def status(env, sid):
    [s] = env.server.cli("session", "status", sid)
    return s


def test_a_tenth_of_the_flows_is_mirrored_each_flow_whole(mirror_env, tmp_path):
    env = mirror_env
    sid = session(env)
    env.ec2.create_tags(Resources=[sid], Tags=[{"Key": "tapwire:sample-flows", "Value": "0.1"}])
    applied(env)
    # The kernel's vxlan device decapsulates; tcpdump records what came out of it.
    capture = tmp_path / "sensor.pcap"
    dump = env.lab.spawn("sens", "tcpdump", "-n", "-U", "-i", "vx61", "-s", "0", "-w", str(capture), "udp")
    wait_for(lambda: capture.exists(), what="tcpdump to start")
    time.sleep(0.5)
    flows, per = 2000, 3
    env.lab.run("peer", *env.traffic_args("udp-flows", env.lab.ip["src"], PORT, flows, per), timeout=120)
    s = wait_for(lambda: (x := status(env, sid))["Counters"]["matched_packets"] == flows * per and x, timeout=20,
                 what="every packet counted at the control plane")
    kept_packets = s["Counters"]["mirrored_packets"]
    assert s["Counters"]["sampled_out"] == flows * per - kept_packets
    assert s["Limits"] == {"SampleFlows": 0.1}
    wait_for(lambda: env.vxlan_rx("vx61") >= kept_packets, what="the kept copies at the sensor")
    time.sleep(0.5)
    env.lab.stop(dump)
    ports = sh("tshark", "-r", str(capture), "-T", "fields", "-e", "udp.srcport", timeout=120).split()
    by_flow = {}
    for port in ports:
        by_flow[port] = by_flow.get(port, 0) + 1
    assert 0.07 * flows <= len(by_flow) <= 0.13 * flows, len(by_flow)
    assert set(by_flow.values()) == {per}, "a kept flow is whole"
    assert len(ports) == kept_packets == env.vxlan_rx("vx61") == len(by_flow) * per


def test_a_packet_cap_holds_under_a_burst_and_counts_the_rest(mirror_env):
    env = mirror_env
    sid = session(env)
    env.server.aws("create-tags", "--resources", sid, "--tags", "Key=tapwire:max-pps,Value=1000")
    code, err = env.server.aws("create-tags", "--resources", sid, "--tags", "Key=tapwire:max-pps,Value=0",
                               check=False)
    assert code != 0 and "InvalidParameterValue" in err, err
    applied(env)
    started = time.monotonic()
    sent = int(env.lab.run("peer", *env.traffic_args("udp-rate", env.lab.ip["src"], PORT, 10_000, 2.0),
                           timeout=60).strip())
    elapsed = time.monotonic() - started
    s = wait_for(lambda: (x := status(env, sid))["Counters"]["matched_packets"] == sent and x, timeout=20,
                 what="every packet counted at the control plane")
    delivered = env.vxlan_rx("vx61")
    assert sent >= 15_000, sent
    # At most 1,000 a second over the burst, plus the bucket's one second.
    assert 1_000 <= delivered <= 1_000 * elapsed + 1_000, (delivered, elapsed)
    assert s["Counters"]["mirrored_packets"] == delivered
    assert s["Counters"]["rate_limited"] == sent - delivered
    assert s["DroppedPackets"] == sent - delivered and s["Limits"] == {"MaxPps": 1000}
