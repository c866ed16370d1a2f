"""An agent enrolled with and long-polling replica B mirrors a session created through
replica A: both replicas on one PostgreSQL, sharing the master key and the certificate.
What the agent reports to B, A shows too."""
from conftest import MirrorEnv
from lab import Lab, wait_for
from test_mirroring import applied
import tapwire_support


def test_an_agent_on_one_replica_mirrors_a_session_made_on_the_other(postgres, tmp_path):
    lab = Lab().build()
    env = MirrorEnv(lab, tmp_path)
    try:
        shared = ["--store", postgres.database(), "--master-key", str(tmp_path / "master.key")]
        env.server.extra_args += shared
        env.start_server()
        a = env.server
        tls = a.data_dir / "tls"
        b = tapwire_support.Server(
            tmp_path / "b", host=lab.ip["root"], tls=True,
            extra_args=[*shared, "--tls-cert", str(tls / "server.pem"), "--tls-key", str(tls / "server.key")],
            launch=lambda argv, log: lab.spawn("root", *argv, stderr=log))
        b.ca = a.ca
        b.start()
        b.root = a.root
        env.start_sniffer()
        # The agent knows only B: enrollment, registration and its long poll go there.
        env.url = b.url
        env.start_agent()
        env.source_eni()
        assert b.url in env.agent.args and a.url not in env.agent.args

        lab.add_vxlan(77)
        sid = env.make_session(env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17,
                                                 "dport": 5677}]), number=1, vni=77)  # through A's boto3
        applied(env)
        env.udp("peer", lab.ip["src"], 5677, count=25)
        wait_for(lambda: env.vxlan_rx("vx77") >= 25, timeout=15, what="copies at the sensor")
        assert env.vxlan_rx("vx77") == 25
        (row,) = [s for s in b.cli("session", "status") if s["TrafficMirrorSessionId"] == sid]
        assert row["Sources"][0]["State"] == "active"

        def seen_by_a():
            (row,) = [s for s in a.cli("session", "status") if s["TrafficMirrorSessionId"] == sid]
            return row if row["Counters"].get("mirrored_packets") == 25 else None
        # A never hears from the agent: its view comes through the store.
        row = wait_for(seen_by_a, timeout=20, what="the agent's counters on replica A")
        assert row["Sources"][0]["State"] == "active" and row["Sources"][0]["Host"], row
    finally:
        lab.close()
