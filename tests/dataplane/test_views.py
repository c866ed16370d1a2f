"""What the operator sees at the control plane, checked against what the sensor's kernel
received: `tapwire session status`, the server's `/metrics`, `tapwire top` in a
pseudo-terminal, and the web view in a real headless Chromium."""
import base64
import os
import pty
import re
import select
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from conftest import BIN
from test_mirroring import applied
from lab import wait_for

ARTIFACTS = Path(__file__).resolve().parents[2] / "target" / "test-artifacts"


def status(env, sid):
    [s] = env.server.cli("session", "status", sid)
    return s


def metrics(env):
    key = env.server.root
    auth = base64.b64encode(f"{key.key_id}:{key.secret}".encode()).decode()
    req = urllib.request.Request(f"{env.url}/metrics", headers={"Authorization": f"Basic {auth}"})
    with urllib.request.urlopen(req, timeout=10, context=env.server.ssl_context()) as r:
        return r.read().decode()


def sample(text, name, **labels):
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return int(line.rsplit(" ", 1)[1])
    return None


def udp_session(env, port):
    """A session (VNI 42, to the sensor's vx42) of one rule: UDP to `port`, applied."""
    env.lab.add_vxlan(42)
    sid = env.make_session(env.make_filter([{"direction": "ingress", "number": 1, "protocol": 17, "dport": port}]),
                           number=1, vni=42)
    applied(env)
    return sid


def test_session_status_and_metrics_count_what_the_sensor_received(mirror_env):
    env = mirror_env
    env.lab.add_vxlan(42)
    rules = [{"direction": "ingress", "number": 1, "protocol": 17, "dport": 5601},
             {"direction": "ingress", "number": 2, "protocol": 17, "dport": 5602}]
    fid = env.make_filter(rules)
    sid = env.make_session(fid, number=1, vni=42)
    applied(env)
    env.udp("peer", env.lab.ip["src"], 5601, count=30)
    env.udp("peer", env.lab.ip["src"], 5602, count=20)
    wait_for(lambda: env.vxlan_rx("vx42") >= 50, what="the sensor's copies")
    received = env.vxlan_rx("vx42")
    assert received == 50
    s = wait_for(lambda: (x := status(env, sid))["Counters"]["mirrored_packets"] == received and x, timeout=15,
                 what="the counters at the control plane")
    assert s["Counters"]["matched_packets"] == 50 and s["Sources"][0]["State"] == "active"
    hits = {r["RuleNumber"]: r["MatchedPackets"] for r in s["Rules"]}
    assert hits == {1: 30, 2: 20}
    page = metrics(env)
    assert sample(page, "tapwire_session_mirrored_packets_total", session=sid) == received
    rule_ids = {r["RuleNumber"]: r["TrafficMirrorFilterRuleId"] for r in s["Rules"]}
    assert sample(page, "tapwire_rule_matched_packets_total", rule=rule_ids[1]) == 30
    assert sample(page, "tapwire_session_up", session=sid) == 1
    assert sample(page, "tapwire_interface_ring_drops_total", interface=env.source_eni()) == 0
    table = env.server.cli("session", "status", output="table")
    assert sid in table and "active" in table
    # The agent restarts: its counters start again from zero, the server's keep rising.
    env.stop_agent()
    env.start_agent()
    applied(env)
    env.udp("peer", env.lab.ip["src"], 5601, count=10)
    wait_for(lambda: status(env, sid)["Counters"]["mirrored_packets"] == 60, timeout=15,
             what="the totals to carry over an agent restart")
    # Full-size frames do not fit the 1500-byte path to the sensor with 50 bytes of
    # headers: each copy is cut, and the views' CUT column counts them; nothing is lost.
    assert status(env, sid)["CutPackets"] == 0
    env.udp("peer", env.lab.ip["src"], 5602, count=5, size=1460)
    s = wait_for(lambda: (x := status(env, sid))["CutPackets"] == 5 and x, timeout=15, what="5 cut copies counted")
    assert s["Counters"]["truncated_path_mtu"] == 5 and s["DroppedPackets"] == 0


def read_screen(fd, seconds):
    out, deadline = b"", time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out.decode(errors="replace"))


def test_top_shows_the_session_and_its_rate_in_a_terminal(mirror_env):
    env = mirror_env
    sid = udp_session(env, 5603)
    sender = env.lab.spawn("peer", "python3", str(Path(__file__).parent / "traffic.py"), "udp-forever",
                           env.lab.ip["src"], "5603", "64", "0.01")
    controller, terminal = pty.openpty()
    top = subprocess.Popen([BIN, "top", "--server", env.url, "--ca-cert", str(env.server.ca)], stdin=terminal,
                           stdout=terminal, stderr=terminal, env=env.server.root.env(), close_fds=True)
    os.close(terminal)
    try:
        def busy():
            screen = read_screen(controller, 1.5).split("tapwire top")[-1]
            header = next((l.split() for l in screen.splitlines() if l.startswith("SESSION")), ["PKT/S"])
            line = next((l for l in screen.splitlines() if l.startswith(sid)), "").split()
            column = header.index("PKT/S")
            rate = line[column] if len(line) > column else "0"
            return rate not in ("0", "-") and screen
        screen = wait_for(busy, timeout=30, what="a non-zero rate on the screen")
        assert "SESSION" in screen and sid in screen
    finally:
        top.terminate()
        top.wait(timeout=10)
        env.lab.stop(sender)
        os.close(controller)


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,900"):
        options.add_argument(flag)
    # The server's certificate is from its own CA, which this throwaway profile does not hold.
    options.accept_insecure_certs = True
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))


def test_the_web_view_shows_a_session_and_its_counter_rises(mirror_env):
    from selenium.webdriver.common.by import By
    env = mirror_env
    sid = udp_session(env, 5604)
    driver = browser()
    try:
        driver.get(f"{env.url}/ui/")
        # The sign-in form is drawn by the page's script, which may run after the load event.
        wait_for(lambda: driver.find_elements(By.ID, "key-id"), timeout=20, what="the sign-in form")
        driver.find_element(By.ID, "key-id").send_keys(env.server.root.key_id)
        driver.find_element(By.ID, "secret").send_keys(env.server.root.secret)
        driver.find_element(By.ID, "signin-button").click()

        def mirrored():
            # Read in the page, in one go: the table is redrawn every second.
            text = driver.execute_script(
                "for (const tr of document.querySelectorAll('#sessions tbody tr')) {"
                "  if (tr.cells[0].textContent === arguments[0]) return tr.cells[6].textContent; }"
                "return null;", sid)
            return None if text is None else int(text)

        before = wait_for(lambda: mirrored() is not None, timeout=20, what="the session in the page") and mirrored()
        env.udp("peer", env.lab.ip["src"], 5604, count=40, interval=0.01)
        # Every one of the burst is counted: the page shows the server's totals, not a sample.
        after = wait_for(lambda: (m := mirrored()) and m >= before + 40 and m, timeout=20, what="the counter to rise")
        assert after == before + 40
        assert driver.find_element(By.CSS_SELECTOR, f"canvas[data-session='{sid}']")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "ui.png"))
        assert (ARTIFACTS / "ui.png").stat().st_size > 0
    finally:
        driver.quit()
