"""End-to-end: real packets in network namespaces, mirrored by the real agent, decapsulated
by kernel vxlan devices at the sensor, and counted there.

Timing is never asserted: waits are bounded polls, latencies are printed (`-s` shows them).
"""
import struct
import subprocess
import time

from conftest import BIN, HERE, PYTHON, inner_udp
from lab import wait_for


def applied(env):
    return env.wait_applied(env.server_config()["revision"])


def session_counters(env, session_id):
    return next(s for s in env.agent_interface()["sessions"] if s["session_id"] == session_id)


def test_udp_ingress_is_mirrored_once_per_packet_with_the_session_vni(mirror_env):
    env = mirror_env
    env.lab.add_vxlan(42)
    f = env.make_filter([{"direction": "ingress", "number": 100, "protocol": 17, "dport": 5001}])
    sid = env.make_session(f, number=1, vni=42)
    applied(env)
    env.udp("peer", env.lab.ip["src"], 5001, count=200, size=100)
    env.wait_copies(lambda c: len(c) >= 200)
    copies = env.copies()
    assert env.settle() == 200
    assert {c["vni"] for c in copies} == {42}
    assert all(c["src"] == env.lab.ip["src"] and c["df"] and not c["frag"] for c in copies)
    inner = [inner_udp(c) for c in copies]
    assert all(i["src"] == env.lab.ip["peer"] and i["dst"] == env.lab.ip["src"] and i["dport"] == 5001 for i in inner)
    assert all(i["len"] == 14 + 20 + 8 + 100 for i in inner)
    assert env.vxlan_rx("vx42") == 200, "the kernel vxlan device decapsulated every copy"
    # Different flows get different outer source ports; one flow always the same.
    assert len({c["sport"] for c in copies}) == 1 and 49152 <= copies[0]["sport"] <= 65535
    counters = wait_for(lambda: (s := session_counters(env, sid))["mirrored_packets"] == 200 and s,
                        what="agent counters")
    assert counters["matched_packets"] == 200 and counters["dropped_send_busy"] == 0


def test_packet_length_truncates_the_inner_frame(mirror_env):
    env = mirror_env
    env.lab.add_vxlan(7)
    f = env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17, "dport": 5001}])
    sid = env.make_session(f, number=1, vni=7, packet_length=100)
    applied(env)
    env.udp("peer", env.lab.ip["src"], 5001, count=50, size=600)
    env.wait_copies(lambda c: len(c) >= 50)
    assert env.settle() == 50
    assert {len(c["inner"]) // 2 for c in env.copies()} == {100}
    assert env.vxlan_rx("vx7") == 50
    counters = wait_for(lambda: (s := session_counters(env, sid))["mirrored_packets"] == 50 and s)
    assert counters["truncated_packet_length"] == 50 and counters["truncated_path_mtu"] == 0


def test_the_lowest_numbered_accepting_session_mirrors_and_a_reject_passes_on(mirror_env):
    env = mirror_env
    env.lab.add_vxlan(10)
    env.lab.add_vxlan(20)
    first = env.make_filter([
        {"direction": "ingress", "number": 10, "action": "reject", "protocol": 17, "dport": 5002},
        {"direction": "ingress", "number": 20, "protocol": 17},
    ])
    second = env.make_filter([{"direction": "ingress", "number": 10, "protocol": 17}])
    # Created in reverse order: the session number, not creation order, decides.
    env.make_session(second, number=2, vni=20)
    env.make_session(first, number=1, vni=10)
    applied(env)
    env.udp("peer", env.lab.ip["src"], 5001, count=30)
    env.udp("peer", env.lab.ip["src"], 5002, count=40)
    env.wait_copies(lambda c: len(c) >= 70)
    assert env.settle() == 70
    by_vni = {}
    for c in env.copies():
        by_vni.setdefault(c["vni"], set()).add(inner_udp(c)["dport"])
    assert by_vni == {10: {5001}, 20: {5002}}
    assert (env.vxlan_rx("vx10"), env.vxlan_rx("vx20")) == (30, 40)


def test_ingress_and_egress_rules_see_their_own_direction(mirror_env):
    env = mirror_env
    env.lab.add_vxlan(5)
    f = env.make_filter([{"direction": "egress", "number": 1, "protocol": 17, "dport": 6000}])
    env.make_session(f, number=1, vni=5)
    applied(env)
    env.udp("peer", env.lab.ip["src"], 6000, count=25)  # received by src: ingress, not mirrored
    env.udp("src", env.lab.ip["peer"], 6000, count=35)  # sent by src: egress, mirrored
    env.wait_copies(lambda c: len(c) >= 35)
    assert env.settle() == 35
    assert all(inner_udp(c)["src"] == env.lab.ip["src"] for c in env.copies())
    assert env.agent_interface()["counters"]["frames_egress"] >= 35


def test_ipv6_inner_traffic_is_mirrored(mirror_env):
    env = mirror_env
    env.lab.add_vxlan(6)
    f = env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17, "dport": 5003, "v6": True}])
    env.make_session(f, number=1, vni=6)
    applied(env)
    env.udp("peer", env.lab.ip6["src"], 5003, count=40)
    env.wait_copies(lambda c: len(c) >= 40)
    assert env.settle() == 40
    inner = [inner_udp(c) for c in env.copies()]
    assert all(i["src"] == env.lab.ip6["peer"] and i["dst"] == env.lab.ip6["src"] and i["dport"] == 5003 for i in inner)
    assert env.vxlan_rx("vx6") == 40


def test_the_agent_never_mirrors_its_own_copies_even_when_traffic_is_vxlan(mirror_env):
    env = mirror_env
    env.lab.add_vxlan(9)
    everything = [{"direction": d, "number": 1} for d in ("ingress", "egress")]
    everything += [{"direction": d, "number": 2, "v6": True} for d in ("ingress", "egress")]
    env.make_session(env.make_filter(everything), number=1, vni=9)
    applied(env)
    # Monitored traffic on UDP 4789 itself, in both directions.
    env.udp("peer", env.lab.ip["src"], 4789, count=50)
    env.udp("src", env.lab.ip["peer"], 4789, count=50)
    def vxlan_inner(copies):
        return [c for c in copies if (i := inner_udp(c)) and i["proto"] == 17 and i["dport"] == 4789]

    env.wait_copies(lambda c: len(vxlan_inner(c)) >= 100)
    env.settle(1.0)
    time.sleep(1.0)
    copies = env.copies()
    # Exactly the 100 monitored datagrams; a loop would add copies of copies (inner UDP 4789
    # to the sensor) without end. (The accept-all rules also mirror the agent's own HTTP
    # status reports: those are traffic of the interface and are expected.)
    assert len(vxlan_inner(copies)) == 100
    assert not [c for c in copies if (i := inner_udp(c)) and i["dst"] == env.lab.ip["sens"]]


def test_large_frames_are_cut_to_the_path_mtu_and_never_fragmented(mirror_env):
    env = mirror_env
    env.lab.add_vxlan(15)
    f = env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17, "dport": 5004}])
    sid = env.make_session(f, number=1, vni=15)
    applied(env)
    env.udp("peer", env.lab.ip["src"], 5004, count=60, size=1472)  # 1514-byte frames
    env.wait_copies(lambda c: len(c) >= 60)
    assert env.settle() == 60
    copies = env.copies()
    assert not [c for c in copies if c["frag"]]
    assert all(c["len"] == 1500 and c["df"] for c in copies)
    assert {len(c["inner"]) // 2 for c in copies} == {1500 - 36}
    assert env.vxlan_rx("vx15") == 60
    counters = wait_for(lambda: (s := session_counters(env, sid))["mirrored_packets"] == 60 and s)
    assert counters["truncated_path_mtu"] == 60


def first_copy_after(env, t0, vni, timeout=10):
    copy = env.wait_copies(lambda c: next((x for x in c if x["t"] >= t0 and x["vni"] == vni), None),
                           timeout=timeout, what=f"a copy with VNI {vni}")
    return copy["t"]


def test_sessions_added_modified_and_deleted_while_traffic_flows(mirror_env):
    env = mirror_env
    env.lab.add_vxlan(42)
    env.lab.add_vxlan(43)
    flow = env.lab.spawn("peer", PYTHON, str(HERE / "traffic.py"), "udp-forever", env.lab.ip["src"], "5005", "64",
                         "0.001")
    f = env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17, "dport": 5005}])
    env.target(), env.source_eni()  # set up before timing
    time.sleep(0.3)
    assert env.copies() == [], "nothing is mirrored before a session exists"

    before = time.time()
    sid = env.make_session(f, number=1, vni=42)
    returned = time.time()
    add = first_copy_after(env, before, 42) - returned

    before = time.time()
    env.ec2.modify_traffic_mirror_session(TrafficMirrorSessionId=sid, VirtualNetworkId=43)
    returned = time.time()
    modify = first_copy_after(env, before, 43) - returned
    time.sleep(0.2)

    env.ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=sid)
    deleted = time.time()
    env.wait_applied(env.server_config()["revision"])
    t_applied = time.time()
    time.sleep(0.5)
    env.lab.stop(flow)
    copies = env.copies()
    last = max(c["t"] for c in copies)
    print(f"\nconfig-change latency, API call returned -> first VXLAN copy at the sensor (1 ms traffic "
          f"interval): add {add * 1000:.1f} ms, modify {modify * 1000:.1f} ms; last copy {(last - deleted) * 1000:.1f} "
          f"ms after the delete returned")
    assert [c for c in copies if c["t"] > t_applied + 0.05] == [], "no copies once the deletion is applied"
    assert not [c for c in copies if c["vni"] == 42 and c["t"] > returned + 0.2], "the old VNI stopped"
    assert env.vxlan_rx("vx43") > 0 and env.vxlan_rx("vx42") > 0


def test_the_agent_keeps_mirroring_while_the_server_is_down_and_reconnects(mirror_env):
    env = mirror_env
    env.lab.add_vxlan(42)
    env.lab.add_vxlan(44)
    f = env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17, "dport": 5006}])
    sid = env.make_session(f, number=1, vni=42)
    applied(env)
    env.kill_server()
    wait_for(lambda: not env.agent_interface()["control"]["connected"], what="the agent to notice")
    env.udp("peer", env.lab.ip["src"], 5006, count=30)
    env.wait_copies(lambda c: len(c) >= 30)
    assert env.settle() == 30, "mirroring went on with the last configuration"

    env.start_server()
    wait_for(lambda: env.agent_interface()["control"]["connected"], timeout=15, what="the agent to reconnect")
    env.ec2.modify_traffic_mirror_session(TrafficMirrorSessionId=sid, VirtualNetworkId=44)
    applied(env)
    env.udp("peer", env.lab.ip["src"], 5006, count=20)
    env.wait_copies(lambda c: sum(1 for x in c if x["vni"] == 44) >= 20)
    assert env.settle() == 50
    assert env.vxlan_rx("vx44") == 20


def test_a_restarted_agent_keeps_its_eni_and_mirrors_again(mirror_env):
    env = mirror_env
    env.lab.add_vxlan(42)
    eni = env.source_eni()
    f = env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17, "dport": 5007}])
    env.make_session(f, number=1, vni=42)
    applied(env)
    env.stop_agent()
    env.start_agent()
    assert env.source_eni() == eni
    listed = env.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"]
    assert [i["NetworkInterfaceId"] for i in listed] == [eni]
    applied(env)
    env.udp("peer", env.lab.ip["src"], 5007, count=25)
    env.wait_copies(lambda c: len(c) >= 25)
    assert env.settle() == 25


def tcp_checksum_ok(frame):
    ihl = (frame[14] & 0x0F) * 4
    total = struct.unpack("!H", frame[16:18])[0]
    seg = frame[14 + ihl:14 + total]
    pseudo = frame[26:34] + struct.pack("!BBH", 0, 6, len(seg))
    data = pseudo + seg + (b"\0" if len(seg) % 2 else b"")
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


def test_tcp_offload_super_frames_are_segmented_into_wire_sized_frames(mirror_env):
    env = mirror_env
    env.lab.add_vxlan(30)
    rules = [{"direction": d, "number": 1, "protocol": 6} for d in ("ingress", "egress")]
    sid = env.make_session(env.make_filter(rules), number=1, vni=30, mirror_link=True)
    applied(env)
    sink = env.lab.spawn("peer", PYTHON, str(HERE / "traffic.py"), "tcp-sink", "5201", stdout=subprocess.PIPE)
    assert sink.stdout.readline().strip() == "ready"
    total = 2_000_000
    env.lab.run("src", PYTHON, str(HERE / "traffic.py"), "tcp-send", env.lab.ip["peer"], "5201", str(total))
    env.settle(1.0)
    copies = [bytes.fromhex(c["inner"]) for c in env.copies()]
    assert not [c for c in env.copies() if c["frag"]]
    assert max(len(c) for c in copies) <= 1514, "every copy is a frame the wire could carry"
    # The bulk flow's data segments (the rule also mirrors the agent's own HTTP traffic).
    data = [c for c in copies if c[36:38] == (5201).to_bytes(2, "big")]
    ranges = []
    for c in data:
        ihl = (c[14] & 0x0F) * 4
        total_len = struct.unpack("!H", c[16:18])[0]
        doff = (c[14 + ihl + 12] >> 4) * 4
        seq = struct.unpack("!I", c[14 + ihl + 4:14 + ihl + 8])[0]
        if total_len - ihl - doff:
            ranges.append((seq, seq + total_len - ihl - doff))
        assert tcp_checksum_ok(c)
    # Bytes covered by the copies' sequence ranges (a retransmission is counted once).
    covered, end = 0, None
    for lo, hi in sorted(ranges):
        lo = max(lo, end) if end is not None else lo
        if hi > lo:
            covered += hi - lo
        end = hi if end is None else max(end, hi)
    counters = env.agent_interface()
    s = next(x for x in counters["sessions"] if x["session_id"] == sid)
    print(f"\nTCP bulk {total} bytes: {len(copies)} copies, {s['segmented_frames']} super-frames "
          f"segmented into {s['segments']}, ring drops {counters['counters']['ring_drops']}")
    assert s["segmented_frames"] > 0, "veth hands the capture TSO super-frames"
    assert counters["counters"]["ring_drops"] == 0
    assert covered == total, "the segments carry every byte sent"


def test_applied_revision_and_counters_are_reported_and_exposed(mirror_env):
    env = mirror_env
    env.lab.add_vxlan(42)
    f = env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17, "dport": 5008}])
    sid = env.make_session(f, number=1, vni=42)
    revision = applied(env)
    env.udp("peer", env.lab.ip["src"], 5008, count=10)
    env.wait_copies(lambda c: len(c) >= 10)
    eni = env.source_eni()

    def reported():
        i = next(x for x in env.server_interfaces() if x["id"] == eni)
        return "agent" in i and i["agent"]["applied_revision"] == revision and i["agent"]

    agent = wait_for(reported, what="the status report at the server")
    assert agent["reported_at"] > 0
    listed = env.server.cli("interface", "list")
    assert next(i for i in listed if i["NetworkInterfaceId"] == eni)["Agent"]["AppliedRevision"] == revision
    def mirrored_metric():
        metrics = env.lab.run("src", PYTHON, "-c", "import urllib.request;print(urllib.request.urlopen("
                              "'http://127.0.0.1:9797/metrics').read().decode())")
        return next(x for x in metrics.splitlines()
                    if x.startswith("tapwire_session_mirrored_packets_total{") and sid in x)

    line = wait_for(lambda: (m := mirrored_metric()).endswith(" 10") and m, what="the Prometheus counter")
    assert 'vni="42"' in line
    table = env.lab.run("src", BIN, "agent", "status")
    assert sid in table and eni in table


def test_idle_agent_memory_with_three_sessions(mirror_env):
    env = mirror_env
    for n in (1, 2, 3):
        rules = [{"direction": d, "number": k, "protocol": 17, "dport": 7000 + 10 * n + k}
                 for d in ("ingress", "egress") for k in range(1, 6)]
        env.make_session(env.make_filter(rules), number=n, vni=40 + n)
    applied(env)
    time.sleep(1.0)
    pid = env.agent.pid
    status = open(f"/proc/{pid}/status").read()
    vm_rss = int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
    ring_rss, mapping = 0, None
    for line in open(f"/proc/{pid}/smaps"):
        fields = line.split()
        if fields and "-" in fields[0] and ":" not in fields[0]:
            mapping = line.strip()
        elif fields and fields[0] == "Rss:" and mapping and "socket:" in mapping:
            ring_rss += int(fields[1])
    agent = env.agent_interface()
    assert len([s for s in agent["sessions"] if s["active"]]) == 3
    print(f"\nidle agent, 3 sessions x 10 rules: VmRSS {vm_rss} kB, capture ring resident {ring_rss} kB, "
          f"RSS without the ring {vm_rss - ring_rss} kB")
    assert vm_rss - ring_rss < 32 * 1024
