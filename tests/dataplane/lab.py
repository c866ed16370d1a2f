"""A network-namespace lab for tapwire's data-plane tests and benchmark.

Topology (all addresses from 198.18.0.0/15 and 2001:db8::/32; N is picked per lab):

    ns src  eth0 198.18.N.1  2001:db8:N::1 ─┐
    ns peer eth0 198.18.N.2  2001:db8:N::2 ─┼─ br0 in ns net
    ns sens eth0 198.18.N.3                ─┤
    root    twc-… 198.18.N.254 (the control plane listens here) ─┘
    ns src  eth1 198.19.N.1 ── ns sens eth1 198.19.N.3   (MTU 9000: a dedicated mirror link)

The root namespace gets one veth end so that boto3 (in the test process) and the agent
(in ns src) reach the same `tapwire server`. Deleting the lab deletes the namespaces,
which destroys every veth pair, the root end included. Names carry a random suffix so
labs never collide; `Lab.close()` runs from fixtures' finalisers, `atexit` and signal
handlers.
"""
import atexit
import json
import os
import random
import re
import signal
import subprocess
from pathlib import Path

from tapwire_support import wait_for  # noqa: F401 - the lab's tests take it from here

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BIN = os.environ.get("TAPWIRE_BIN", str(ROOT / "target" / "debug" / "tapwire"))
PYTHON = os.environ.get("TAPWIRE_LAB_PYTHON", "python3")


def sh(*args, check=True, capture=True, timeout=30):
    proc = subprocess.run(list(args), capture_output=capture, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout if capture else ""


class Lab:
    """Namespaces, links and addresses of one lab; processes started in it are stopped on close."""

    def __init__(self, prefix="tw"):
        self.suffix = "%04x" % random.randrange(0x10000)
        self.n = random.randrange(10, 250)
        letters = {"src": "s", "peer": "p", "sens": "x", "net": "n"}
        self.ns = {role: f"{prefix}{letter}-{self.suffix}" for role, letter in letters.items()}
        self.root_link = f"twc-{self.suffix}"
        self.ip = {"src": f"198.18.{self.n}.1", "peer": f"198.18.{self.n}.2", "sens": f"198.18.{self.n}.3",
                   "root": f"198.18.{self.n}.254"}
        self.mirror_ip = {"src": f"198.19.{self.n}.1", "sens": f"198.19.{self.n}.3"}
        self.ip6 = {"src": f"2001:db8:{self.n:x}::1", "peer": f"2001:db8:{self.n:x}::2"}
        self.procs = []
        self.closed = False
        atexit.register(self.close)

    def nsexec(self, role, *args):
        return ["ip", "netns", "exec", self.ns[role], *args]

    def run(self, role, *args, check=True, timeout=60):
        return sh(*self.nsexec(role, *args), check=check, timeout=timeout)

    def build(self, mtu=1500):
        try:
            for ns in self.ns.values():
                sh("ip", "netns", "add", ns)
            net = self.ns["net"]
            sh("ip", "-n", net, "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", net, "link", "set", "br0", "up")
            sh("ip", "-n", net, "link", "set", "lo", "up")
            for role in ("src", "peer", "sens"):
                ns = self.ns[role]
                port = f"p-{role}"
                sh("ip", "link", "add", "eth0", "netns", ns, "mtu", str(mtu), "type", "veth", "peer", "name", port,
                   "netns", net, "mtu", str(mtu))
                sh("ip", "-n", net, "link", "set", port, "master", "br0", "up")
                sh("ip", "-n", ns, "link", "set", "lo", "up")
                sh("ip", "-n", ns, "link", "set", "eth0", "up")
                sh("ip", "-n", ns, "addr", "add", f"{self.ip[role]}/24", "dev", "eth0")
                if role in self.ip6:
                    sh("ip", "-n", ns, "addr", "add", f"{self.ip6[role]}/64", "dev", "eth0", "nodad")
            # A dedicated mirror network: src eth1 <-> sens eth1, jumbo MTU, so that copies of
            # full-size frames fit (the shared link's MTU equals the monitored one's).
            sh("ip", "link", "add", "eth1", "netns", self.ns["src"], "mtu", "9000", "type", "veth", "peer", "name",
               "eth1", "netns", self.ns["sens"], "mtu", "9000")
            for role in ("src", "sens"):
                sh("ip", "-n", self.ns[role], "addr", "add", f"{self.mirror_ip[role]}/24", "dev", "eth1")
                sh("ip", "-n", self.ns[role], "link", "set", "eth1", "up")
            sh("ip", "link", "add", self.root_link, "type", "veth", "peer", "name", "p-root", "netns", net)
            sh("ip", "-n", net, "link", "set", "p-root", "master", "br0", "up")
            sh("ip", "addr", "add", f"{self.ip['root']}/24", "dev", self.root_link)
            sh("ip", "link", "set", self.root_link, "up")
            return self
        except BaseException:
            self.close()
            raise

    def add_vxlan(self, vni, name=None, role="sens"):
        """A kernel VXLAN device in a sensor namespace that decapsulates VNI `vni`."""
        name = name or f"vx{vni}"
        sh("ip", "-n", self.ns[role], "link", "add", name, "type", "vxlan", "id", str(vni), "dstport", "4789",
           "nolearning")
        sh("ip", "-n", self.ns[role], "link", "set", name, "up")
        return name

    def add_sensors(self, count):
        """`count` more sensor namespaces on the shared bridge (roles `sens1`…, addresses
        198.18.N.11…); returns their roles."""
        roles = []
        for i in range(1, count + 1):
            role = f"sens{i}"
            self.ns[role] = f"{self.ns['sens']}-{i}"
            self.ip[role] = f"198.18.{self.n}.{10 + i}"
            sh("ip", "netns", "add", self.ns[role])
            sh("ip", "link", "add", "eth0", "netns", self.ns[role], "type", "veth", "peer", "name", f"p-sens{i}",
               "netns", self.ns["net"])
            sh("ip", "-n", self.ns["net"], "link", "set", f"p-sens{i}", "master", "br0", "up")
            for dev in ("lo", "eth0"):
                sh("ip", "-n", self.ns[role], "link", "set", dev, "up")
            sh("ip", "-n", self.ns[role], "addr", "add", f"{self.ip[role]}/24", "dev", "eth0")
            roles.append(role)
        return roles

    def link_stats(self, role, dev):
        out = sh("ip", "-n", self.ns[role], "-s", "-j", "link", "show", dev)
        return json.loads(out)[0]["stats64"]

    def spawn(self, role, *args, stdout=None, stderr=None, env=None):
        cmd = self.nsexec(role, *args) if role != "root" else list(args)
        proc = subprocess.Popen(cmd, stdout=stdout or subprocess.DEVNULL, stderr=stderr or subprocess.DEVNULL,
                                text=True, env=env, start_new_session=True)
        self.procs.append(proc)
        return proc

    @staticmethod
    def stop(proc, sig=signal.SIGTERM, timeout=10):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)

    def close(self):
        if self.closed:
            return
        self.closed = True
        for proc in reversed(self.procs):
            try:
                self.stop(proc, timeout=5)
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass
        for ns in self.ns.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.root_link], capture_output=True)


def stale_labs(prefix="tw"):
    """Namespaces left by a lab whose process was killed (names end in -XXXX)."""
    out = sh("ip", "netns", "list")
    pattern = re.compile(rf"^{prefix}[spxn]-[0-9a-f]{{4}}\b")
    return [line.split()[0] for line in out.splitlines() if pattern.match(line)]


