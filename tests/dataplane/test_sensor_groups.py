"""Sensor groups in namespaces: three sensor hosts, each with a kernel vxlan device and a
tcpdump on it. A flow-hash group made with `tapwire sensor-group`, a target made from its
NLB ARN with the unmodified aws CLI: every flow, both directions, at exactly one sensor,
spread evenly. A replicate group: every copy at every sensor."""
import collections
import time

from lab import sh, wait_for
from test_mirroring import applied

PORT, PORT_REPLICATED = 5710, 5711
FLOWS = 300


def sensors(env):
    roles = env.lab.add_sensors(3)
    enis = [env.register_sensor(env.lab.ip[r]) for r in roles]
    return roles, enis


def group(env, name, enis, mode):
    members = [arg for eni in enis for arg in ("--member", eni)]
    return env.server.cli("sensor-group", "create", "--name", name, *members, "--mode", mode)


def capture(env, role, dev, tmp_path):
    path = tmp_path / f"{role}-{dev}.pcap"
    proc = env.lab.spawn(role, "tcpdump", "-n", "-U", "-i", dev, "-s", "0", "-w", str(path), "udp")
    wait_for(lambda: path.exists(), what=f"tcpdump on {role}")
    return proc, path


def ports(path):
    rows = sh("tshark", "-r", str(path), "-T", "fields", "-e", "udp.srcport", "-e", "udp.dstport", timeout=60)
    return [tuple(map(int, r.split())) for r in rows.splitlines() if r.strip()]


def test_flow_hash_keeps_each_flow_on_one_sensor_and_replicate_copies_to_all(mirror_env, tmp_path):
    env = mirror_env
    roles, enis = sensors(env)
    made = group(env, f"ids-{env.lab.suffix}", enis, "flow-hash")
    assert made["Mode"] == "flow-hash" and len(made["Members"]) == 3
    arn = made["NetworkLoadBalancerArn"]
    assert arn.startswith("arn:aws:elasticloadbalancing:") and made["SlbInstanceId"].startswith("lb-")
    target = env.server.aws("create-traffic-mirror-target", "--network-load-balancer-arn", arn)
    target_id = target["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    assert target["TrafficMirrorTarget"]["Type"] == "network-load-balancer"
    fid = env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17, "dport": PORT},
                           {"direction": "egress", "number": 1, "protocol": 17, "sport": PORT}])
    env.ec2.create_traffic_mirror_session(NetworkInterfaceId=env.source_eni(), TrafficMirrorTargetId=target_id,
                                          TrafficMirrorFilterId=fid, SessionNumber=1, VirtualNetworkId=80)
    replicated = group(env, f"all-{env.lab.suffix}", enis, "replicate")
    target2 = env.ec2.create_traffic_mirror_target(NetworkLoadBalancerArn=replicated["NetworkLoadBalancerArn"])
    fid2 = env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17, "dport": PORT_REPLICATED}])
    env.ec2.create_traffic_mirror_session(
        NetworkInterfaceId=env.source_eni(), TrafficMirrorFilterId=fid2, SessionNumber=2, VirtualNetworkId=81,
        TrafficMirrorTargetId=target2["TrafficMirrorTarget"]["TrafficMirrorTargetId"])
    # The group cannot go while a target names it.
    done = env.server.cli("sensor-group", "delete", made["SensorGroupId"], check=False)
    assert done.returncode != 0 and "SensorGroupInUse" in done.stderr, done.stderr
    applied(env)
    dumps = {}
    for role in roles:
        env.lab.add_vxlan(80, role=role)
        env.lab.add_vxlan(81, role=role)
        dumps[role] = capture(env, role, "vx80", tmp_path)
    time.sleep(0.5)
    env.lab.run("peer", *env.traffic_args("udp-flows", env.lab.ip["src"], PORT, FLOWS, 2), timeout=120)
    env.lab.run("src", *env.traffic_args("udp-replies", env.lab.ip["peer"], 20000, FLOWS, PORT), timeout=120)
    env.udp("peer", env.lab.ip["src"], PORT_REPLICATED, count=20)
    wait_for(lambda: sum(env.lab.link_stats(r, "vx80")["rx"]["packets"] for r in roles) >= FLOWS * 3, timeout=20,
             what="every copy at the sensors")
    time.sleep(1.5)  # libpcap hands packets over at most a second late
    at = {}
    for role, (proc, path) in dumps.items():
        env.lab.stop(proc)
        flows = collections.Counter(sp if dp == PORT else dp for sp, dp in ports(path))
        at[role] = flows
    # Each flow at exactly one sensor, with all three of its packets (two in, one out).
    owners = collections.defaultdict(list)
    for role, flows in at.items():
        for flow, count in flows.items():
            owners[flow].append((role, count))
    assert len(owners) == FLOWS
    assert all(len(o) == 1 and o[0][1] == 3 for o in owners.values()), \
        [o for o in owners.values() if len(o) != 1 or o[0][1] != 3][:5]
    for role, flows in at.items():
        assert 0.7 * FLOWS / 3 <= len(flows) <= 1.3 * FLOWS / 3, {r: len(f) for r, f in at.items()}
    # Replicate: every sensor got all 20 copies.
    assert [env.lab.link_stats(r, "vx81")["rx"]["packets"] for r in roles] == [20, 20, 20]
    listed = {g["SensorGroupId"]: g for g in env.server.cli("sensor-group", "list")}
    assert listed[made["SensorGroupId"]]["Sessions"] == 1


def phase(env, roles, tmp_path, name, count):
    """Sends one datagram on each of FLOWS flows; which sensor each flow reached."""
    dumps = {r: capture(env, r, "vx82", tmp_path / name) for r in roles}
    time.sleep(0.5)
    before = sum(env.lab.link_stats(r, "vx82")["rx"]["packets"] for r in roles)
    env.lab.run("peer", *env.traffic_args("udp-flows", env.lab.ip["src"], PORT + 2, count, 1), timeout=120)
    wait_for(lambda: sum(env.lab.link_stats(r, "vx82")["rx"]["packets"] for r in roles) - before >= count,
             timeout=20, what=f"the {name} copies")
    time.sleep(1.5)  # libpcap hands packets over at most a second late
    owner = {}
    for role, (proc, path) in dumps.items():
        env.lab.stop(proc)
        for sport, _ in ports(path):
            assert sport not in owner, f"flow {sport} at two sensors"
            owner[sport] = role
    return owner


def test_an_unhealthy_member_loses_its_flows_within_two_seconds_and_gets_them_back(mirror_env, tmp_path):
    env = mirror_env
    roles, enis = sensors(env)
    listeners = {r: env.lab.spawn(r, "python3", *env.traffic_args("tcp-sink", 8080)[1:]) for r in roles}
    members = [arg for eni in enis for arg in ("--member", eni)]
    made = env.server.cli("sensor-group", "create", "--name", f"hc-{env.lab.suffix}", *members,
                          "--health-check", "tcp:8080")
    assert made["HealthCheck"] == "tcp:8080"
    target = env.ec2.create_traffic_mirror_target(NetworkLoadBalancerArn=made["NetworkLoadBalancerArn"])
    fid = env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17, "dport": PORT + 2}])
    env.ec2.create_traffic_mirror_session(
        NetworkInterfaceId=env.source_eni(), TrafficMirrorFilterId=fid, SessionNumber=1, VirtualNetworkId=82,
        TrafficMirrorTargetId=target["TrafficMirrorTarget"]["TrafficMirrorTargetId"])
    applied(env)
    for role in roles:
        env.lab.add_vxlan(82, role=role)
        (tmp_path / "before").mkdir(exist_ok=True)
        (tmp_path / "down").mkdir(exist_ok=True)
        (tmp_path / "back").mkdir(exist_ok=True)

    def health_of(eni):
        (g,) = [g for g in env.server.cli("sensor-group", "list") if g["SensorGroupId"] == made["SensorGroupId"]]
        return next(m["Health"] for m in g["Members"] if m["NetworkInterfaceId"] == eni)

    wait_for(lambda: all(health_of(e) == "healthy" for e in enis), timeout=15, what="every member healthy")
    before = phase(env, roles, tmp_path, "before", FLOWS)
    assert set(before.values()) == set(roles), ({r: env.lab.link_stats(r, "vx82")["rx"]["packets"] for r in roles},
                                               collections.Counter(before.values()), env.agent_status())
    # The second sensor's IDS goes away: two failed probes later its flows move.
    down = roles[1]
    env.lab.stop(listeners[down])
    time.sleep(2.0)
    after = phase(env, roles, tmp_path, "down", FLOWS)
    assert down not in after.values(), "the unhealthy member still got copies after 2 s"
    others = [f for f, r in before.items() if r != down]
    moved = [f for f in others if after[f] != before[f]]
    assert len(moved) <= 0.05 * len(others), f"{len(moved)} of the healthy members' {len(others)} flows moved"
    assert wait_for(lambda: health_of(enis[1]) == "unhealthy", timeout=10, what="the member shown unhealthy")
    log = (env.tmp / "agent.log").read_text()
    assert f"{enis[1]}: failed its health checks" in log and "sensor-group member left out" in log
    # It comes back: its flows return to it.
    listeners[down] = env.lab.spawn(down, "python3", *env.traffic_args("tcp-sink", 8080)[1:])
    wait_for(lambda: health_of(enis[1]) == "healthy", timeout=15, what="the member shown healthy again")
    back = phase(env, roles, tmp_path, "back", FLOWS)
    assert back == before


def test_an_alibaba_session_to_an_slb_mirrors_to_every_member(mirror_env):
    from alibaba_clients import Tea
    env = mirror_env
    roles, enis = sensors(env)
    made = group(env, f"slb-{env.lab.suffix}", enis, "replicate")
    tea = Tea(env.server.endpoint, env.server.root, ca=str(env.server.ca))
    tea("OpenTrafficMirrorService")
    rule = {"Action": "accept", "Priority": 1, "Protocol": "UDP", "SourceCidrBlock": "0.0.0.0/0",
            "DestinationCidrBlock": "0.0.0.0/0", "DestinationPortRange": f"{PORT + 3}/{PORT + 3}"}
    fid = tea("CreateTrafficMirrorFilter", IngressRules=[rule])["TrafficMirrorFilterId"]
    listed = lambda action, key, **ids: tea(action, **ids)[key]  # noqa: E731
    wait_for(lambda: listed("ListTrafficMirrorFilters", "TrafficMirrorFilters", TrafficMirrorFilterIds=[fid])[0][
        "TrafficMirrorFilterStatus"] == "Created", what="the filter made")
    sid = tea("CreateTrafficMirrorSession", TrafficMirrorSourceIds=[env.source_eni()], Priority=1,
              TrafficMirrorTargetId=made["SlbInstanceId"], TrafficMirrorTargetType="SLB",
              TrafficMirrorFilterId=fid, VirtualNetworkId=83, Enabled=True)["TrafficMirrorSessionId"]
    wait_for(lambda: listed("ListTrafficMirrorSessions", "TrafficMirrorSessions", TrafficMirrorSessionIds=[sid])[0][
        "TrafficMirrorSessionStatus"] == "Created", what="the session made")
    applied(env)
    for role in roles:
        env.lab.add_vxlan(83, role=role)
    env.udp("peer", env.lab.ip["src"], PORT + 3, count=25)
    wait_for(lambda: [env.lab.link_stats(r, "vx83")["rx"]["packets"] for r in roles] == [25, 25, 25], timeout=15,
             what="every copy at every member")
