"""The agent on a host that behaves like a real one: sessions it cannot serve, IPv6
targets, copies larger than the path, MTUs and links that change under it, a host name
that is not the operator's, and offload super-frames from a jumbo NIC.

Timing is never asserted; how long a resumption took is printed (`-s` shows it).
"""
import hashlib
import os
import subprocess
import time

from conftest import BIN, HERE, PYTHON
from lab import sh, wait_for
from test_mirroring import applied

NLB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/ids/50dc6c495c0c9188"


def accept(direction="ingress", protocol=17, dport=None, number=1):
    rule = {"direction": direction, "number": number, "protocol": protocol}
    if dport:
        rule["dport"] = dport
    return rule


def session_report(env, sid):
    return next((s for s in env.agent_interface()["sessions"] if s["session_id"] == sid), None)


def target_for(env, address, host):
    eni = env.server.register(address, host=host)
    return env.ec2.create_traffic_mirror_target(NetworkInterfaceId=eni)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]


def session_to(env, target, filter_id, number, vni):
    return env.ec2.create_traffic_mirror_session(
        NetworkInterfaceId=env.source_eni(), TrafficMirrorTargetId=target, TrafficMirrorFilterId=filter_id,
        SessionNumber=number, VirtualNetworkId=vni)["TrafficMirrorSession"]["TrafficMirrorSessionId"]


def test_a_session_the_agent_cannot_serve_does_not_freeze_the_others(mirror_env):
    env = mirror_env
    env.lab.add_vxlan(42)
    # A sensor on a network the source has no route to: the API accepts it, the host
    # cannot serve it; and a load-balancer target, which a self-hosted fleet has no
    # address for.
    far = target_for(env, "198.18.0.77", f"far-{env.lab.suffix}")
    nlb = env.ec2.create_traffic_mirror_target(NetworkLoadBalancerArn=NLB)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    f = env.make_filter([accept(dport=5501)])
    broken = session_to(env, far, f, 1, 41)
    balanced = session_to(env, nlb, f, 2, 43)
    working = env.make_session(f, number=3, vni=42)
    applied(env)
    env.udp("peer", env.lab.ip["src"], 5501, count=20)
    env.wait_copies(lambda c: len(c) >= 20)
    assert {c["vni"] for c in env.copies()} == {42}
    assert "no route" in session_report(env, broken)["failed"]
    assert "load balancer" in session_report(env, balanced)["failed"]
    assert session_report(env, working)["active"] and not session_report(env, working).get("failed")
    # The server keeps what the agent said, and shows it.
    def states():
        [me] = [i for i in env.server.cli("interface", "list") if i["NetworkInterfaceId"] == env.source_eni()]
        return {s["TrafficMirrorSessionId"]: s["State"] for s in me.get("Agent", {}).get("Sessions", [])}

    shown = wait_for(lambda: len(states()) == 3 and states(), what="the session states at the server")
    assert shown[working] == "active" and shown[broken].startswith("failed: no route"), shown
    assert shown[balanced].startswith("failed: its target is the load balancer arn:aws:") \
        and "names no sensor group" in shown[balanced], shown
    assert "FAILED: no route" in env.lab.run("src", BIN, "agent", "status")
    # A later change still applies.
    env.ec2.modify_traffic_mirror_session(TrafficMirrorSessionId=working, VirtualNetworkId=44)
    env.lab.add_vxlan(44)
    applied(env)
    env.udp("peer", env.lab.ip["src"], 5501, count=10)
    env.wait_copies(lambda c: sum(1 for x in c if x["vni"] == 44) >= 10)


def ipv6_sensor(env):
    """An IPv6 address of the sensor with a kernel vxlan device (vx46, VNI 46) on it, as a
    target: (address, target ID)."""
    sensor6 = f"2001:db8:{env.lab.n:x}::3"
    ns = env.lab.ns["sens"]
    sh("ip", "-n", ns, "addr", "add", f"{sensor6}/64", "dev", "eth0", "nodad")
    sh("ip", "-n", ns, "link", "add", "vx46", "type", "vxlan", "id", "46", "dstport", "4789", "local", sensor6,
       "nolearning")
    sh("ip", "-n", ns, "link", "set", "vx46", "up")
    return sensor6, target_for(env, sensor6, f"sensor6-{env.lab.suffix}")


def test_an_ipv6_target_receives_copies_over_an_ipv6_outer_header(mirror_env):
    env = mirror_env
    sensor6, target = ipv6_sensor(env)
    f = env.make_filter([accept(dport=5502)])
    sid = session_to(env, target, f, 1, 46)
    applied(env)
    env.udp("peer", env.lab.ip["src"], 5502, count=25)
    wait_for(lambda: env.vxlan_rx("vx46") >= 25, what="decapsulated copies on the IPv6 vxlan device")
    assert env.vxlan_rx("vx46") == 25
    report = wait_for(lambda: (r := session_report(env, sid))["mirrored_packets"] == 25 and r, what="the counters")
    assert report["target"].startswith(f"[{sensor6}]")


def test_oversize_fragment_delivers_whole_frames_and_truncate_counts_each_cut(mirror_env):
    env = mirror_env
    env.lab.add_vxlan(42)
    f = env.make_filter([accept(dport=5503)])
    sid = env.make_session(f, number=1, vni=42)
    applied(env)
    # Truncate (the default): 1514-byte frames over a 1500-byte path are cut, each counted.
    env.udp("peer", env.lab.ip["src"], 5503, count=10, size=1472)
    wait_for(lambda: env.vxlan_rx("vx42") >= 10, what="cut copies")
    cut = wait_for(lambda: (r := session_report(env, sid))["mirrored_packets"] == 10 and r, what="the counters")
    assert cut["truncated_path_mtu"] == 10 and cut["fragmented"] == 0
    assert "cut to the path MTU" in (env.tmp / "agent.log").read_text()
    # Fragment: the same frames arrive whole at the sensor's vxlan device.
    env.stop_agent()
    env.start_agent("--oversize", "fragment")
    applied(env)
    before = env.lab.link_stats("sens", "vx42")["rx"]
    env.udp("peer", env.lab.ip["src"], 5503, count=20, size=1472)
    wait_for(lambda: env.vxlan_rx("vx42") >= before["packets"] + 20, what="reassembled copies")
    after = env.lab.link_stats("sens", "vx42")["rx"]
    # The device counts from the inner IP header on: a whole 1514-byte frame is 1500 bytes.
    assert (after["packets"] - before["packets"], after["bytes"] - before["bytes"]) == (20, 20 * 1500)
    assert any(c["frag"] for c in env.copies()), "the copies crossed the path as outer IPv4 fragments"
    whole = wait_for(lambda: (r := session_report(env, sid))["mirrored_packets"] == 20 and r, what="the counters")
    assert whole["fragmented"] == 20 and whole["truncated_path_mtu"] == 0


def test_a_path_mtu_change_is_picked_up_without_an_api_call(mirror_env):
    env = mirror_env
    env.lab.add_vxlan(42)
    f = env.make_filter([accept(dport=5504)])
    sid = env.make_session(f, number=1, vni=42, mirror_link=True)
    revision = applied(env)
    env.udp("peer", env.lab.ip["src"], 5504, count=10, size=1472)
    wait_for(lambda: session_report(env, sid)["mirrored_packets"] >= 10, what="whole copies over the jumbo path")
    assert session_report(env, sid)["truncated_path_mtu"] == 0
    changed = time.monotonic()
    for role in ("src", "sens"):
        sh("ip", "-n", env.lab.ns[role], "link", "set", "eth1", "mtu", "1500")

    def cut_now():
        env.udp("peer", env.lab.ip["src"], 5504, count=1, size=1472)
        return session_report(env, sid)["truncated_path_mtu"] > 0

    wait_for(cut_now, timeout=15, interval=0.1, what="the new path MTU to be applied")
    print(f"\npath MTU 9000 -> 1500 applied {time.monotonic() - changed:.2f} s after the change")
    assert env.revision() == revision, "no API call, no new revision: the host was followed"


def recreate_eth0(env):
    """Deletes the source's monitored veth and makes it again with the same name and addresses."""
    lab, src, net = env.lab, env.lab.ns["src"], env.lab.ns["net"]
    sh("ip", "-n", src, "link", "del", "eth0")
    sh("ip", "link", "add", "eth0", "netns", src, "type", "veth", "peer", "name", "p-src", "netns", net)
    sh("ip", "-n", net, "link", "set", "p-src", "master", "br0", "up")
    sh("ip", "-n", src, "addr", "add", f"{lab.ip['src']}/24", "dev", "eth0")
    sh("ip", "-n", src, "addr", "add", f"{lab.ip6['src']}/64", "dev", "eth0", "nodad")
    sh("ip", "-n", src, "link", "set", "eth0", "up")


def resumes(env, port, label):
    """Sends a datagram every 20 ms until copies arrive again; prints how long it took."""
    start, seen = time.monotonic(), len(env.copies())

    def flowing():
        env.udp("peer", env.lab.ip["src"], port, count=1)
        return len(env.copies()) > seen

    wait_for(flowing, timeout=15, interval=0.02, what=f"mirroring to resume after {label}")
    print(f"\nmirroring resumed {time.monotonic() - start:.2f} s after {label}")


def test_a_link_flap_and_a_recreated_veth_resume_mirroring(mirror_env):
    env = mirror_env
    eni = env.source_eni()
    f = env.make_filter([accept(dport=5505)])
    env.make_session(f, number=1, vni=42, mirror_link=True)
    applied(env)
    env.udp("peer", env.lab.ip["src"], 5505, count=5)
    env.wait_copies(lambda c: len(c) >= 5)
    sh("ip", "-n", env.lab.ns["src"], "link", "set", "eth0", "down")
    sh("ip", "-n", env.lab.ns["src"], "link", "set", "eth0", "up")
    resumes(env, 5505, "a link down/up")
    recreate_eth0(env)
    resumes(env, 5505, "eth0 was deleted and made again")
    # The capture thread publishes its counters in batches: the re-attach shows up shortly.
    wait_for(lambda: env.agent_interface()["counters"]["reattached"] >= 1, timeout=10, what="the re-attach counted")
    assert env.source_eni() == eni, "the same interface, registered again under its ID"


def test_an_agent_with_another_host_name_claims_the_registration_by_mac(mirror_env):
    env = mirror_env
    eni = env.source_eni()
    env.stop_agent()
    env.server.cli("agent", "revoke", env.host, output=None)
    (env.state_dir / "agent-credential.json").unlink()
    env.host = f"renamed-{env.lab.suffix}"
    env.start_agent(instance_id=None)
    got = wait_for(lambda: env.agent_interface().get("network_interface_id"), timeout=15, what="registration")
    assert got == eni, "claimed by MAC, not a second eni- for the same interface"
    mine = [i for i in env.server.cli("interface", "list") if env.lab.ip["src"] in i["Addresses"]]
    assert [(i["NetworkInterfaceId"], i["Host"]) for i in mine] == [(eni, env.host)]


def test_super_frames_are_split_at_the_segment_size_the_wire_carried(mirror_env):
    env = mirror_env
    # A 9000-byte source NIC talking to a 1500-byte peer: the wire carries 1514-byte frames.
    sh("ip", "-n", env.lab.ns["net"], "link", "set", "p-src", "mtu", "9000")
    sh("ip", "-n", env.lab.ns["src"], "link", "set", "eth0", "mtu", "9000")
    env.lab.add_vxlan(31)
    rules = [accept(direction=d, protocol=6) for d in ("ingress", "egress")]
    sid = env.make_session(env.make_filter(rules), number=1, vni=31, mirror_link=True)
    applied(env)
    sink = env.lab.spawn("peer", PYTHON, str(HERE / "traffic.py"), "tcp-sink", "5506", stdout=subprocess.PIPE)
    assert sink.stdout.readline().strip() == "ready"
    env.lab.run("src", PYTHON, str(HERE / "traffic.py"), "tcp-send", env.lab.ip["peer"], "5506", "2000000")
    env.settle(1.0)
    copies = [bytes.fromhex(c["inner"]) for c in env.copies() if "inner" in c]
    data = [c for c in copies if c[36:38] == (5506).to_bytes(2, "big")]
    report = session_report(env, sid)
    print(f"\n{len(data)} data copies, {report['segmented_frames']} super-frames, largest copy {max(map(len, copies))} B")
    assert report["segmented_frames"] > 0, "the 9000-byte NIC handed the capture super-frames"
    assert max(len(c) for c in copies) <= 1514, "no copy is larger than what the wire carried"


def test_a_download_is_rebuilt_whole_from_fragmented_copies(mirror_env, tmp_path):
    env = mirror_env
    env.stop_agent()
    env.start_agent("--oversize", "fragment")
    env.lab.add_vxlan(42)
    rules = [accept(direction=d, protocol=6, number=n) for n, d in ((1, "ingress"), (2, "egress"))]
    env.make_session(env.make_filter(rules), number=1, vni=42)
    applied(env)
    site = tmp_path / "site"
    site.mkdir()
    body = os.urandom(1 << 20)
    (site / "file.bin").write_bytes(body)
    env.lab.spawn("src", PYTHON, "-m", "http.server", "8080", "--bind", env.lab.ip["src"], "--directory", str(site))
    capture = tmp_path / "sensor.pcap"
    dump = env.lab.spawn("sens", "tcpdump", "-n", "-U", "-i", "vx42", "-s", "0", "-w", str(capture), "tcp port 8080")
    wait_for(lambda: capture.exists(), what="tcpdump to start")
    time.sleep(0.5)
    got = tmp_path / "got.bin"
    fetch = (f"import urllib.request,time\nfor _ in range(50):\n  try:\n"
             f"    open('{got}','wb').write(urllib.request.urlopen('http://{env.lab.ip['src']}:8080/file.bin').read());break\n"
             f"  except OSError: time.sleep(0.1)")
    env.lab.run("peer", PYTHON, "-c", fetch)
    assert got.read_bytes() == body
    env.settle(1.0)
    env.lab.stop(dump)
    out = tmp_path / "objects"
    sh("tshark", "-r", str(capture), "-q", "--export-objects", f"http,{out}", timeout=120)
    rebuilt = [p for p in out.iterdir() if p.stat().st_size == len(body)]
    assert rebuilt, f"no whole object rebuilt from the sensor's capture: {list(out.iterdir())}"
    assert hashlib.sha256(rebuilt[0].read_bytes()).hexdigest() == hashlib.sha256(body).hexdigest()
