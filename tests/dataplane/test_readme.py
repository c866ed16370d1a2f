"""The README's walkthrough, run as written: its shell blocks are extracted and executed
verbatim, so the instructions a newcomer follows cannot drift from what works.

Each block is marked `<!-- walkthrough: ... -->`. The install block runs in the
repository; the terminal blocks run in the source namespace of a lab (whose `eth0` is
the interface the README mirrors, and whose peer is the default gateway it pings), in a
working directory of their own. "keeps running; ready when it prints X" blocks are
started like a terminal left open and waited on until X appears. Everything runs in a
mount namespace of its own, where `/usr/local/bin` and `/var/lib/tapwire` are empty
tmpfs mounts: the install and the agent's state never touch the machine.
"""
import json
import os
import re
import shutil
import signal
import subprocess

from lab import ROOT, Lab, sh, wait_for

README = ROOT / "README.md"
MARKED = re.compile(r"<!-- walkthrough: (?P<how>.*?) -->\s*```sh\n(?P<body>.*?)```", re.S)
READY = re.compile(r'ready when it prints "(?P<text>[^"]+)"')


def walkthrough():
    blocks = [(m["how"], m["body"]) for m in MARKED.finditer(README.read_text())]
    assert blocks, "the README has no marked walkthrough"
    return blocks


class MountNamespace:
    """A process holding a private mount namespace; commands enter it with nsenter."""

    def __init__(self, tmpfs):
        self.holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", "infinity"])
        wait_for(lambda: os.readlink(f"/proc/{self.holder.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt"),
                 timeout=5, what="the mount namespace")
        for path in tmpfs:
            subprocess.run(self.enter("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", path), check=True)

    def enter(self, *argv, cwd="/"):
        # Entering a mount namespace resets the working directory: name it again.
        return ["nsenter", "-t", str(self.holder.pid), "-m", f"--wd={cwd}", *argv]

    def close(self):
        self.holder.kill()
        self.holder.wait()


def test_the_readme_walkthrough_runs_as_written(tmp_path):
    blocks = walkthrough()
    lab = Lab().build()
    lab.run("src", "ip", "route", "add", "default", "via", lab.ip["peer"])
    made_state_dir = not os.path.isdir("/var/lib/tapwire")
    os.makedirs("/var/lib/tapwire", exist_ok=True)
    mounts = MountNamespace(["/usr/local/bin", "/var/lib/tapwire"])
    work = tmp_path / "work"
    work.mkdir()
    shim = tmp_path / "shim"
    shim.mkdir()
    if shutil.which("sudo") is None:
        # The test runs as root, where `sudo COMMAND` is just COMMAND.
        (shim / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
        (shim / "sudo").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TAPWIRE_"))}
    env["PATH"] = f"{shim}:/usr/local/bin:{env['PATH']}"
    terminals = []
    try:
        for how, body in blocks:
            script = ["bash", "-euo", "pipefail", "-c", body]
            if how == "install":
                done = subprocess.run(mounts.enter(*script, cwd=ROOT), cwd=ROOT, env=env, capture_output=True, text=True,
                                      timeout=1800)
                assert done.returncode == 0, f"install failed:\n{done.stdout}\n{done.stderr}"
                continue
            command = mounts.enter("ip", "netns", "exec", lab.ns["src"], *script, cwd=work)
            ready = READY.search(how)
            if ready:
                log = tmp_path / f"terminal-{len(terminals) + 1}.log"
                proc = subprocess.Popen(command, cwd=work, env=env, stdout=open(log, "w"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
                terminals.append((proc, log, body))

                def printed(text=ready["text"], proc=proc, log=log):
                    assert proc.poll() is None, f"{how} exited:\n{log.read_text()}"
                    return text in log.read_text()

                wait_for(printed, timeout=30, what=f'"{ready["text"]}" in {how}')
            else:
                done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=180)
                assert done.returncode == 0, f"{how} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
                last_output = done.stdout

        # What the walkthrough promises: its last command shows the session's counters,
        # the sensor holds the ping's ten copies, and the control plane counted each copy
        # the sensor wrote.
        assert "MATCHED" in last_output and "RULE" in last_output
        (sensor_proc,) = [proc for proc, _, body in terminals if "tapwire receive" in body]
        os.killpg(sensor_proc.pid, signal.SIGINT)
        sensor_proc.wait(timeout=10)
        capture = work / "mirror.pcapng"
        frames = sh("tshark", "-r", str(capture), "-T", "fields", "-e", "ip.src", "-e", "icmp.type").splitlines()
        echo = [f for f in frames if f.endswith("\t8") or f.endswith("\t0")]
        assert sorted(echo) == sorted([f"{lab.ip['src']}\t8"] * 5 + [f"{lab.ip['peer']}\t0"] * 5), frames
        status = subprocess.run(
            mounts.enter("ip", "netns", "exec", lab.ns["src"], "tapwire", "session", "status", "--output", "json",
                         cwd=work),
            cwd=work, env={**env, "AWS_SHARED_CREDENTIALS_FILE": str(work / "tapwire-data" / "credentials"),
                           "AWS_PROFILE": "tapwire"},
            capture_output=True, text=True, check=True)
        (session,) = json.loads(status.stdout)
        assert session["Counters"]["mirrored_packets"] == len(frames)
        hits = {r["TrafficDirection"]: r["MatchedPackets"] for r in session["Rules"]}
        assert hits["ingress"] >= 5 and hits["egress"] >= 5
    finally:
        for proc, _, _ in reversed(terminals):
            Lab.stop(proc)
        mounts.close()
        lab.close()
        if made_state_dir:
            os.rmdir("/var/lib/tapwire")
        for _, log, _ in terminals:
            print(f"--- {log.name}\n{log.read_text()[-2000:]}")
