"""How copies leave the agent's host: straight to the device as Ethernet frames once the
kernel knows the next hop's MAC (AF_PACKET, PACKET_QDISC_BYPASS), through the kernel's IP
output otherwise, every such copy counted as sent_routed.

The sensor's kernel vxlan device is the judge: it decapsulates only frames addressed to
its own MAC with a correct outer IP header (and UDP checksum over IPv6).
"""
import time

from conftest import PYTHON
from lab import wait_for
from test_host import ipv6_sensor, session_to


def applied(env):
    return env.wait_applied(env.server_config()["revision"])


def session_report(env, sid):
    return next(s for s in env.agent_interface()["sessions"] if s["session_id"] == sid)


def learnt(env, port, text="copies leave straight through the device"):
    """Sends a copy at a time until the agent's log says `text`: senders ask for the next
    hop again when they next send."""
    def seen():
        if text in (env.tmp / "agent.log").read_text():
            return True
        env.udp("peer", env.lab.ip["src"], port, count=1)
        return False
    wait_for(seen, what=f"the agent log to say {text!r}")


def settled(env, sid, dev):
    """The copies so far, once the agent's count and the sensor's agree."""
    return wait_for(lambda: (m := session_report(env, sid)["mirrored_packets"]) == env.vxlan_rx(dev) and m,
                    what="the agent's count to match the sensor's")


def stable_mirrored(env, sid):
    """The agent's copy count once it has stopped moving for longer than a report interval."""
    last = [None]

    def same():
        time.sleep(1.2)
        m = session_report(env, sid)["mirrored_packets"]
        ok, last[0] = m == last[0], m
        return ok and m
    return wait_for(same, timeout=15, what="the agent's count to settle")


def mirror_udp(env, port, vni=42):
    env.lab.add_vxlan(vni)
    f = env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17, "dport": port}])
    sid = env.make_session(f, number=1, vni=vni)
    applied(env)
    return sid


def counters_when(env, sid, mirrored):
    return wait_for(lambda: (r := session_report(env, sid))["mirrored_packets"] >= mirrored and r,
                    what=f"{mirrored} copies counted")


def test_copies_go_straight_to_the_device_once_the_next_hop_is_known(mirror_env):
    env = mirror_env
    sid = mirror_udp(env, 5601)
    # The first copy finds no neighbour entry: it goes through the kernel, which ARPs.
    env.udp("peer", env.lab.ip["src"], 5601, count=5)
    wait_for(lambda: env.vxlan_rx("vx42") >= 5, what="the first copies")
    first = counters_when(env, sid, 5)
    assert first["sent_routed"] >= 1
    learnt(env, 5601)
    n = settled(env, sid, "vx42")
    first = session_report(env, sid)
    env.udp("peer", env.lab.ip["src"], 5601, count=1000)
    wait_for(lambda: env.vxlan_rx("vx42") >= n + 1000, what="every copy decapsulated")
    d = counters_when(env, sid, n + 1000)
    assert d["mirrored_packets"] == n + 1000 and env.vxlan_rx("vx42") == n + 1000
    # Of the 1,000, only the once-a-second probes took the kernel's path.
    routed = d["sent_routed"] - first["sent_routed"]
    assert routed <= 20, d
    assert d["dropped_send_busy"] == 0 and d["dropped_send_error"] == 0


def test_a_new_sensor_mac_is_learnt_again_through_the_kernel(mirror_env):
    env = mirror_env
    sid = mirror_udp(env, 5602)
    env.udp("peer", env.lab.ip["src"], 5602, count=5)
    learnt(env, 5602)
    # The sensor is replaced: a new MAC, and the sending host forgets the old one.
    env.lab.run("sens", "ip", "link", "set", "eth0", "address", "02:00:5e:10:00:99")
    env.lab.run("src", "ip", "neigh", "flush", "dev", "eth0")
    learnt(env, 5602, "next_hop_mac=02:00:5e:10:00:99")
    mirrored = stable_mirrored(env, sid)
    before = env.vxlan_rx("vx42")
    env.udp("peer", env.lab.ip["src"], 5602, count=200)
    wait_for(lambda: env.vxlan_rx("vx42") >= before + 200, what="copies to the new MAC")
    d = counters_when(env, sid, mirrored + 200)
    assert env.vxlan_rx("vx42") == before + 200 and d["mirrored_packets"] == mirrored + 200


def test_send_path_routed_sends_every_copy_through_the_kernel(mirror_env):
    env = mirror_env
    env.stop_agent()
    env.start_agent("--send-path", "routed")
    sid = mirror_udp(env, 5603)
    env.udp("peer", env.lab.ip["src"], 5603, count=300)
    wait_for(lambda: env.vxlan_rx("vx42") >= 300, what="every copy decapsulated")
    d = counters_when(env, sid, 300)
    assert d["mirrored_packets"] == 300 and d["sent_routed"] == 300
    # The operator's view: the agent's Prometheus counter says the same.
    metrics = env.lab.run("src", PYTHON, "-c", "import urllib.request;print(urllib.request.urlopen("
                          "'http://127.0.0.1:9797/metrics').read().decode())")
    line = next(x for x in metrics.splitlines()
                if x.startswith("tapwire_session_sent_routed_packets_total{") and sid in x)
    assert line.endswith(" 300"), line


def test_ipv6_copies_sent_straight_carry_the_udp_checksum_the_sensor_checks(mirror_env):
    env = mirror_env
    _, target = ipv6_sensor(env)
    f = env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17, "dport": 5604}])
    sid = session_to(env, target, f, 1, 46)
    applied(env)
    env.udp("peer", env.lab.ip["src"], 5604, count=5)
    learnt(env, 5604)
    n = settled(env, sid, "vx46")
    env.udp("peer", env.lab.ip["src"], 5604, count=300, size=900)
    # The kernel drops an IPv6 UDP datagram with a wrong or zero checksum before the vxlan
    # device sees it: every copy counted there had a good one.
    wait_for(lambda: env.vxlan_rx("vx46") >= n + 300, what="every copy decapsulated")
    d = counters_when(env, sid, n + 300)
    assert env.vxlan_rx("vx46") == n + 300 and d["mirrored_packets"] == n + 300
    assert d["sent_routed"] <= 25, d
