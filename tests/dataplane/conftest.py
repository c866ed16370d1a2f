"""Fixtures for the end-to-end data-plane tests (root, network namespaces).

`mirror_env` builds a lab (see lab.py), starts the real `tapwire server` (root namespace,
on the lab's root address), a `tapwire agent` inside the source namespace (via
`ip netns exec`) and a sniffer on the sensor's eth0, and offers helpers to create mirror
resources with boto3 and to read what the sensor received. Everything is torn down
after the test, also when it fails.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tapwire_support  # noqa: E402
from lab import BIN, HERE, PYTHON, Lab, stale_labs, wait_for  # noqa: E402


def pytest_sessionstart(session):
    # Namespaces of a run that was killed before its finalisers ran.
    for ns in stale_labs():
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


class MirrorEnv:
    """A lab with a server, an agent in the source namespace and a sensor sniffer."""

    def __init__(self, lab, tmp):
        self.lab = lab
        self.tmp = tmp
        # As a user runs it across hosts: TLS from the server's own CA, and an agent that
        # enrolls with a one-use join token bound to its host.
        self.server = tapwire_support.Server(
            tmp / "data", host=lab.ip["root"], tls=True,
            launch=lambda argv, log: lab.spawn("root", *argv, stderr=log))
        self.state_dir = tmp / "agent-state"
        self.spent_token = None
        self.url = self.server.url
        self.agent = None
        self.sniffer = None
        self.capture_file = tmp / "sensor.jsonl"
        self.host = f"tw-test-src-{lab.suffix}"
        self.ec2 = None
        self.targets = {}

    # -- processes -------------------------------------------------------------------

    def start_server(self):
        self.server.start()
        self.ec2 = self.server.ec2()

    def kill_server(self):
        self.lab.stop(self.server.proc, signal.SIGKILL)

    def join_token(self, host=None, uses=1, ttl="10m"):
        made = self.server.cli("agent", "token", "create", "--host", host or self.host, "--uses", str(uses),
                               "--ttl", ttl)
        return made["Token"]

    def start_agent(self, *extra, token=None, instance_id="i-web1", wrapper=(), binary=BIN, ca=None):
        """Starts the agent; the first start enrolls with a new join token, later ones use
        the credential kept in the state directory. `wrapper` runs it under another
        command (e.g. setpriv, to drop privileges)."""
        log = open(self.tmp / "agent.log", "a")
        if token is None and not (self.state_dir / "agent-credential.json").exists():
            token = self.join_token()
            self.spent_token = token
        enroll = ["--token", token] if token else []
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["TAPWIRE_LOG"] = "info"
        instance = ["--instance-id", instance_id] if instance_id else []
        self.agent = self.lab.spawn("src", *wrapper, binary, "agent", "--server", self.url,
                                    "--ca-cert", str(ca or self.server.ca),
                                    "--state-dir", str(self.state_dir), *enroll, "--interface", "eth0",
                                    "--report-interval", "1s",
                                    "--host", self.host, *instance, *extra, stderr=log, env=env)
        wait_for(lambda: self.agent_status(check=False), timeout=15, what="agent metrics endpoint")

    def stop_agent(self):
        self.lab.stop(self.agent)

    def start_sniffer(self):
        self.sniffer = self.lab.spawn("sens", PYTHON, str(HERE / "sniff.py"), "eth0,eth1", str(self.capture_file),
                                      stdout=subprocess.PIPE)
        assert self.sniffer.stdout.readline().strip() == "ready"

    # -- agent and control plane -----------------------------------------------------

    def agent_status(self, check=True):
        proc = subprocess.run(self.lab.nsexec("src", BIN, "agent", "status", "--json"), capture_output=True,
                              text=True, timeout=10)
        if proc.returncode != 0:
            if check:
                raise AssertionError(f"agent status failed: {proc.stderr}")
            return None
        return json.loads(proc.stdout)

    def agent_interface(self):
        return self.agent_status()["interfaces"][0]

    def source_eni(self):
        return wait_for(lambda: (self.agent_status(check=False) or {"interfaces": [{}]})["interfaces"][0]
                        .get("network_interface_id"), timeout=15, what="agent registration")

    def revision(self):
        return self.agent_interface()["applied_revision"]

    def wait_applied(self, minimum):
        return wait_for(lambda: (self.revision() or 0) >= minimum and self.revision(), timeout=10,
                        what=f"agent to apply revision {minimum}")

    def server_config(self):
        status, body = self.server.v1("GET", f"/tapwire/v1/network-interfaces/{self.source_eni()}/config")
        assert status == 200, body
        return body

    def server_interfaces(self):
        status, body = self.server.v1("GET", "/tapwire/v1/network-interfaces")
        assert status == 200, body
        return body

    def register_sensor(self, address):
        return self.server.register(address, host=f"tw-test-sensor-{self.lab.suffix}-{address}")

    def target(self, mirror_link=False):
        """The sensor as a target: on the shared link, or on the jumbo mirror link."""
        key = "mirror" if mirror_link else "shared"
        if key not in self.targets:
            address = self.lab.mirror_ip["sens"] if mirror_link else self.lab.ip["sens"]
            eni = self.register_sensor(address)
            self.targets[key] = self.ec2.create_traffic_mirror_target(NetworkInterfaceId=eni)[
                "TrafficMirrorTarget"]["TrafficMirrorTargetId"]
        return self.targets[key]

    def make_filter(self, rules):
        """rules: dicts with direction ('ingress'/'egress'), number, action, protocol, ports, cidrs."""
        fid = self.ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
        for r in rules:
            v6 = r.get("v6", False)
            any_cidr = "::/0" if v6 else "0.0.0.0/0"
            args = dict(TrafficMirrorFilterId=fid, TrafficDirection=r["direction"], RuleNumber=r["number"],
                        RuleAction=r.get("action", "accept"),
                        SourceCidrBlock=r.get("source", any_cidr), DestinationCidrBlock=r.get("destination", any_cidr))
            if "protocol" in r:
                args["Protocol"] = r["protocol"]
            if "dport" in r:
                args["DestinationPortRange"] = {"FromPort": r["dport"], "ToPort": r["dport"]}
            if "sport" in r:
                args["SourcePortRange"] = {"FromPort": r["sport"], "ToPort": r["sport"]}
            self.ec2.create_traffic_mirror_filter_rule(**args)
        return fid

    def make_session(self, filter_id, number, vni, packet_length=None, mirror_link=False):
        args = dict(NetworkInterfaceId=self.source_eni(), TrafficMirrorTargetId=self.target(mirror_link),
                    TrafficMirrorFilterId=filter_id, SessionNumber=number, VirtualNetworkId=vni)
        if packet_length:
            args["PacketLength"] = packet_length
        return self.ec2.create_traffic_mirror_session(**args)["TrafficMirrorSession"]["TrafficMirrorSessionId"]

    # -- traffic and what the sensor saw ---------------------------------------------

    def traffic_args(self, mode, *args):
        """The command line of `traffic.py MODE ARGS` (run it with `lab.run`)."""
        return [PYTHON, str(HERE / "traffic.py"), mode, *map(str, args)]

    def udp(self, frm, to_ip, port, count, size=64, interval=0.0):
        args = self.traffic_args("udp", to_ip, port, count, size)
        if interval:
            args.append(str(interval))
        self.lab.run(frm, *args)

    def copies(self):
        if not self.capture_file.exists():
            return []
        out = []
        for line in self.capture_file.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line being written
        return out

    def wait_copies(self, predicate, timeout=10, what="copies at the sensor"):
        return wait_for(lambda: predicate(self.copies()), timeout=timeout, what=what)

    def settle(self, seconds=0.5, limit=15.0):
        """Waits until the sensor's count stops moving for `seconds`, or `limit` has passed:
        a session that mirrors TCP also copies the agent's own polls and reports, which
        never stop."""
        last = -1
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            n = len(self.copies())
            if n == last:
                return n
            last = n
            time.sleep(seconds)
        return len(self.copies())

    def vxlan_rx(self, dev):
        return self.lab.link_stats("sens", dev)["rx"]["packets"]


def inner_udp(copy):
    """(src ip, dst ip, dst port, inner frame length) of an IPv4/UDP or IPv6/UDP inner frame."""
    b = bytes.fromhex(copy["inner"])
    ethertype = int.from_bytes(b[12:14], "big")
    if ethertype == 0x0800:
        ihl = (b[14] & 0x0F) * 4
        proto = b[23]
        src, dst = socket.inet_ntop(socket.AF_INET, b[26:30]), socket.inet_ntop(socket.AF_INET, b[30:34])
        l4 = 14 + ihl
    elif ethertype == 0x86DD:
        proto = b[20]
        src, dst = socket.inet_ntop(socket.AF_INET6, b[22:38]), socket.inet_ntop(socket.AF_INET6, b[38:54])
        l4 = 54
    else:
        return None
    dport = int.from_bytes(b[l4 + 2:l4 + 4], "big") if proto in (6, 17) and len(b) >= l4 + 4 else None
    return {"proto": proto, "src": src, "dst": dst, "dport": dport, "len": len(b)}


@pytest.fixture
def mirror_env(tmp_path):
    lab = Lab().build()
    env = MirrorEnv(lab, tmp_path)
    try:
        env.start_server()
        env.start_sniffer()
        env.start_agent()
        env.source_eni()
        yield env
    finally:
        for name in ("agent.log", "data-server.log"):
            p = tmp_path / name
            if p.exists():
                sys.stderr.write(f"--- {name} (tail)\n" + "".join(p.read_text().splitlines(True)[-15:]))
        lab.close()
