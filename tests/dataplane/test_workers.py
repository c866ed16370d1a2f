"""Several capture workers on one interface (`tapwire agent --workers N`): the rings share
the interface as one PACKET_FANOUT_HASH group, so each flow stays on one worker and its
copies reach the sensor in the order they crossed the interface; the status adds the
workers' counters up and shows each one's share; a session's cap holds for the interface
as a whole, whichever worker a flow landed on."""
import time

from lab import PYTHON, wait_for
from test_mirroring import applied

PORT = 5701
FLOWS, PER = 64, 20


def mirror(env, vni):
    env.lab.add_vxlan(vni)
    fid = env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17, "dport": PORT}])
    sid = env.make_session(fid, number=1, vni=vni)
    applied(env)
    return sid


def session_report(env, sid):
    return next(s for s in env.agent_interface()["sessions"] if s["session_id"] == sid)


def sequences(env, vni):
    """Per flow (the inner source port), the sequence numbers of the `udp-seq` copies the
    sensor received, in arrival order."""
    out = {}
    for c in env.copies():
        inner = bytes.fromhex(c["inner"])
        if c["vni"] != vni or len(inner) < 14 + 20 + 8 + 9:
            continue
        payload = inner[14 + 20 + 8:]
        if payload[:3] != b"seq":
            continue
        sport = int.from_bytes(inner[34:36], "big")
        out.setdefault(sport, []).append(int.from_bytes(payload[5:9], "big"))
    return out


def restart_with_workers(env, n):
    env.stop_agent()
    env.start_agent("--workers", str(n))


def test_two_workers_split_the_flows_and_keep_each_in_order(mirror_env):
    env = mirror_env
    restart_with_workers(env, 2)
    applied(env)
    filters_before = env.agent_interface()["counters"]["filter_updates"]
    sid = mirror(env, 71)
    # Warm-up: every worker's sender learns the sensor's MAC, so no copy below crosses
    # from the kernel's path to the direct one.
    env.lab.run("peer", *env.traffic_args("udp-flows", env.lab.ip["src"], PORT, FLOWS, 1))
    wait_for(lambda: env.vxlan_rx("vx71") >= FLOWS, what="the warm-up copies")
    time.sleep(2.5)
    before_copies = env.vxlan_rx("vx71")
    before = session_report(env, sid)["mirrored_packets"]
    env.lab.run("peer", *env.traffic_args("udp-seq", env.lab.ip["src"], PORT, FLOWS, PER))
    total = FLOWS * PER
    wait_for(lambda: env.vxlan_rx("vx71") >= before_copies + total, what="every copy decapsulated")
    seqs = env.wait_copies(lambda _: len(sequences(env, 71)) == FLOWS
                           and all(len(v) == PER for v in sequences(env, 71).values()) and sequences(env, 71),
                           what="every flow's copies at the sensor")
    for sport, got in seqs.items():
        assert got == list(range(PER)), (sport, got)

    report = wait_for(lambda: (i := env.agent_interface())["sessions"][0]["mirrored_packets"] >= before + total
                      and i, what="the agent's count")
    assert report["sessions"][0]["mirrored_packets"] == before + total == env.vxlan_rx("vx71")
    workers = report["workers"]
    assert len(workers) == 2, workers
    # 64 flows on two workers: both take some (all on one has odds of 2^-63).
    assert all(w["frames"] > 0 for w in workers), workers
    counters = report["counters"]
    assert sum(w["frames"] for w in workers) == (counters["frames_ingress"] + counters["frames_egress"]
                                                 + counters["ignored_loopback"])
    assert sum(w["ring_drops"] for w in workers) == counters["ring_drops"] == 0
    # One more configuration, one more filter: the interface counts it once, not once
    # per worker.
    assert counters["filter_updates"] == filters_before + 1, (filters_before, counters)
    metrics = env.lab.run("src", PYTHON, "-c", "import urllib.request;print(urllib.request.urlopen("
                          "'http://127.0.0.1:9797/metrics').read().decode())")
    for n, w in enumerate(workers):
        line = next(x for x in metrics.splitlines()
                    if x.startswith(f'tapwire_agent_worker_frames_total{{interface="eth0",worker="{n}"}}'))
        assert int(line.split()[-1]) >= w["frames"], line


def test_a_cap_holds_for_the_interface_across_workers(mirror_env):
    env = mirror_env
    restart_with_workers(env, 2)
    sid = mirror(env, 72)
    env.server.aws("create-tags", "--resources", sid, "--tags", "Key=tapwire:max-pps,Value=1000")
    applied(env)
    started = time.monotonic()
    sent = int(env.lab.run("peer", *env.traffic_args("udp-rate", env.lab.ip["src"], PORT, 10_000, 2.0, FLOWS),
                           timeout=60).strip())
    elapsed = time.monotonic() - started
    s = wait_for(lambda: (r := session_report(env, sid))["matched_packets"] == sent and r, timeout=20,
                 what="every packet counted")
    assert all(w["frames"] > 0 for w in env.agent_interface()["workers"])
    delivered = env.vxlan_rx("vx72")
    assert sent >= 15_000, sent
    # One bucket for the interface: at most 1,000 a second plus the bucket's one second,
    # where a bucket per worker would let through up to twice that.
    assert 1_000 <= delivered <= 1_000 * elapsed + 1_000, (delivered, elapsed)
    assert s["mirrored_packets"] == delivered and s["rate_limited"] == sent - delivered
