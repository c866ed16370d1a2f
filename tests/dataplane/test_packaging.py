"""The systemd units under packaging/systemd: systemd's own checker accepts them, and the
agent does its whole job with no more privilege than its unit grants (an unprivileged
user holding only the unit's AmbientCapabilities)."""
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from lab import BIN, ROOT, wait_for
from test_mirroring import applied

UNITS = ROOT / "packaging" / "systemd"
NOBODY = 65534


def unit_setting(unit, key):
    values = re.findall(rf"^{key}=(.*)$", (UNITS / unit).read_text(), re.M)
    assert values, f"{unit} sets no {key}"
    return values[-1].split()


def test_systemd_analyze_verifies_both_units():
    # verify checks that ExecStart's binary exists: give it one at the units' path, in a
    # mount namespace of its own so the machine's /usr/local/bin is left alone.
    units = [str(UNITS / "tapwire-server.service"), str(UNITS / "tapwire-agent.service")]
    script = (f'mount -t tmpfs -o mode=0755 tmpfs /usr/local/bin && cp "{BIN}" /usr/local/bin/tapwire && '
              f'systemd-analyze verify {" ".join(units)}')
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


def test_the_agent_mirrors_with_only_its_units_capabilities(mirror_env):
    env = mirror_env
    caps = unit_setting("tapwire-agent.service", "AmbientCapabilities")
    assert caps == unit_setting("tapwire-agent.service", "CapabilityBoundingSet")
    names = ",".join("+" + c.removeprefix("CAP_").lower() for c in caps)
    env.stop_agent()
    # Everything the unprivileged agent reads or writes lives where it may: a copy of the
    # binary and of the CA, and a state directory of its own (as StateDirectory= makes).
    home = Path(tempfile.mkdtemp(prefix="tw-agent-"))
    try:
        home.chmod(0o755)
        binary = home / "tapwire"
        shutil.copy(BIN, binary)
        ca = home / "ca.pem"
        shutil.copy(env.server.ca, ca)
        env.state_dir = home / "state"
        env.state_dir.mkdir(mode=0o700)
        os.chown(env.state_dir, NOBODY, NOBODY)
        setpriv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--no-new-privs",
                   f"--inh-caps=-all,{names}", f"--ambient-caps=-all,{names}", f"--bounding-set=-all,{names}"]
        env.start_agent(wrapper=setpriv, binary=str(binary), ca=ca)
        pid = int(subprocess.run(["pgrep", "-n", "-f", f"{binary} agent"], capture_output=True, text=True,
                                 check=True).stdout)
        status = Path(f"/proc/{pid}/status").read_text()
        assert re.search(r"^Uid:\s+65534\b", status, re.M), status
        eff = int(re.search(r"^CapEff:\s+(\w+)", status, re.M)[1], 16)
        assert eff == (1 << 12) | (1 << 13), hex(eff)  # CAP_NET_ADMIN (12), CAP_NET_RAW (13)

        env.lab.add_vxlan(61)
        sid = env.make_session(env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17,
                                                 "dport": 5610}]), number=1, vni=61)
        applied(env)
        env.udp("peer", env.lab.ip["src"], 5610, count=20)
        wait_for(lambda: env.vxlan_rx("vx61") >= 20, timeout=15, what="copies at the sensor's vxlan device")
        assert env.vxlan_rx("vx61") == 20
    finally:
        env.stop_agent()
        shutil.rmtree(home, ignore_errors=True)
