"""`tapwire server` with no arguments: 127.0.0.1:8787, data in ./tapwire-data."""
import subprocess
import time

from ec2_support import BIN, ENV


def test_no_argument_server_answers_the_aws_cli_on_8787(tmp_path):
    started = time.monotonic()
    proc = subprocess.Popen([BIN, "server"], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        ready = time.monotonic() - started
        assert "listening on http://127.0.0.1:8787" in line, line
        out = subprocess.run(["aws", "ec2", "describe-traffic-mirror-sessions", "--endpoint-url",
                              "http://127.0.0.1:8787", "--output", "json"], capture_output=True, text=True,
                             env=ENV, timeout=60)
        assert out.returncode == 0, out.stderr
        assert '"TrafficMirrorSessions": []' in out.stdout
        assert (tmp_path / "tapwire-data" / "tapwire.db").exists()
        print(f"tapwire server ready in {ready * 1000:.0f} ms")
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
