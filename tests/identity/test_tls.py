"""TLS on the listener: `--tls auto` (a CA of the installation's own), your own files
reloaded on SIGHUP, the CLI, boto3 and the aws CLI with the CA bundle, and plain HTTP
refused on a non-loopback address unless asked for (then loudly)."""
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.request

import pytest

from tapwire_support import BIN, Server


def handshake_ok(url, ca):
    try:
        urllib.request.urlopen(url + "/", context=ssl.create_default_context(cafile=str(ca)), timeout=5)
    except urllib.error.HTTPError:
        return True  # an HTTP answer: the handshake held
    except (ssl.SSLError, urllib.error.URLError):
        return False
    return True


def test_tls_auto_serves_every_client_with_the_ca_bundle(tmp_path):
    srv = Server(tmp_path / "data", tls=True).start()
    try:
        assert "SHA-256" in srv.log() and "ca.pem" in srv.log()
        assert srv.url.startswith("https://")
        assert srv.aws("describe-traffic-mirror-sessions") == {"TrafficMirrorSessions": []}
        srv.ec2().create_traffic_mirror_filter()
        assert [a["Name"] for a in srv.cli("account", "list")] == ["root"]
        assert srv.v1("GET", "/tapwire/v1/network-interfaces")[0] == 200
        # Without the CA: every client refuses the certificate.
        proc = subprocess.run([BIN, "account", "list", "--server", srv.url], capture_output=True, text=True,
                              env=srv.root.env(), timeout=30)
        assert proc.returncode != 0 and "--ca-cert" in proc.stderr
        plain = subprocess.run(["aws", "ec2", "describe-traffic-mirror-sessions", "--endpoint-url", srv.url],
                               capture_output=True, text=True, env=srv.root.env(), timeout=60)
        assert plain.returncode != 0 and "SSL" in plain.stderr
        # Plain HTTP to a TLS listener is not served.
        with pytest.raises(Exception):
            urllib.request.urlopen(srv.url.replace("https", "http") + "/", timeout=5)
        # The key files are private; a restart keeps the CA (clients keep trusting it).
        tls = srv.data_dir / "tls"
        assert oct(os.stat(tls / "ca.key").st_mode & 0o777) == "0o600"
        ca_before = (tls / "ca.pem").read_bytes()
        srv.restart()
        assert (tls / "ca.pem").read_bytes() == ca_before and srv.aws("describe-traffic-mirror-filters")
    finally:
        srv.stop()


def test_own_certificate_files_are_reloaded_on_sighup(tmp_path):
    # Two PKIs, made by throwaway --tls auto runs: the operator's "own" files.
    pkis = []
    for name in ("one", "two"):
        made = Server(tmp_path / name, tls=True).start()
        made.stop()
        pkis.append(made.data_dir / "tls")
    live = tmp_path / "live"
    live.mkdir()
    for f in ("server.pem", "server.key"):
        shutil.copy(pkis[0] / f, live / f)
    srv = Server(tmp_path / "data", ["--tls-cert", str(live / "server.pem"), "--tls-key", str(live / "server.key")])
    srv.url = srv.url.replace("http://", "https://")
    srv.start()
    try:
        assert handshake_ok(srv.url, pkis[0] / "ca.pem") and not handshake_ok(srv.url, pkis[1] / "ca.pem")
        (live / "server.key").write_text("not a key")
        srv.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert "not reloaded" in srv.log() and handshake_ok(srv.url, pkis[0] / "ca.pem"), "a bad file kept the old"
        for f in ("server.pem", "server.key"):
            shutil.copy(pkis[1] / f, live / f)
        srv.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while not handshake_ok(srv.url, pkis[1] / "ca.pem"):
            assert time.monotonic() < deadline, "the new certificate was not served"
            time.sleep(0.1)
        assert not handshake_ok(srv.url, pkis[0] / "ca.pem")
    finally:
        srv.stop()


def test_plain_http_on_a_non_loopback_address_is_refused(tmp_path):
    data = tmp_path / "data"
    proc = subprocess.run([BIN, "server", "--listen", "0.0.0.0:0", "--data-dir", str(data)], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode != 0 and "--tls auto" in proc.stderr and "--insecure-http" in proc.stderr
    assert not data.exists(), "a refused start made nothing"
    proc = subprocess.run([BIN, "server", "--listen", "0.0.0.0:0", "--data-dir", str(data), "--auth", "none",
                           "--tls", "auto"], capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "loopback" in proc.stderr


def test_insecure_http_is_allowed_only_when_asked_and_warns(tmp_path):
    # In a namespace of the test's own, so the listener reaches no network.
    ns = f"tw-insecure-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        log = tmp_path / "server.log"
        with open(log, "w") as f:
            proc = subprocess.Popen(["ip", "netns", "exec", ns, BIN, "server", "--listen", "0.0.0.0:18080",
                                     "--data-dir", str(tmp_path / "data"), "--insecure-http"], stderr=f)
        try:
            deadline = time.monotonic() + 20
            while "listening on" not in log.read_text():
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            assert "WARNING: plain HTTP" in log.read_text()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    finally:
        subprocess.run(["ip", "netns", "del", ns])
