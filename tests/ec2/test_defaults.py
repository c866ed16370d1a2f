"""`tapwire server` with no arguments: 127.0.0.1:8787, data in ./tapwire-data, and the
README's usage: the printed profile is all the aws CLI needs (key and region)."""
import os
import stat
import subprocess
import time

from ec2_support import BIN


def test_no_argument_server_answers_the_aws_cli_on_8787_with_the_printed_profile(tmp_path):
    started = time.monotonic()
    proc = subprocess.Popen([BIN, "server"], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or "listening on" not in lines[-1]:
            line = proc.stderr.readline()
            assert line, f"server exited: {''.join(lines)}"
            lines.append(line)
        ready = time.monotonic() - started
        assert "listening on http://127.0.0.1:8787" in lines[-1], lines
        credentials = (tmp_path / "tapwire-data" / "credentials").resolve()
        printed = f"export AWS_SHARED_CREDENTIALS_FILE={credentials} AWS_PROFILE=tapwire"
        assert any(printed in line for line in lines), lines
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "tapwire-data").stat().st_mode) == 0o700
        secret = next(l for l in credentials.read_text().splitlines() if l.startswith("aws_secret_access_key"))
        assert secret.split("=", 1)[1].strip() not in "".join(lines), "the secret reached the log"
        # Only what the README says: no key, no region in the environment, no config file.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_SHARED_CREDENTIALS_FILE=str(credentials), AWS_PROFILE="tapwire", AWS_CONFIG_FILE="/nonexistent",
                   AWS_EC2_METADATA_DISABLED="true")
        out = subprocess.run(["aws", "ec2", "describe-traffic-mirror-sessions", "--endpoint-url",
                              "http://127.0.0.1:8787", "--output", "json"], capture_output=True, text=True,
                             env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        assert '"TrafficMirrorSessions": []' in out.stdout
        # The tapwire CLI in the same directory finds ./tapwire-data/credentials itself.
        bare = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        listed = subprocess.run([BIN, "account", "list", "--output", "json"], cwd=tmp_path, capture_output=True,
                                text=True, env=bare, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert '"Root": true' in listed.stdout
        assert (tmp_path / "tapwire-data" / "tapwire.db").exists()
        print(f"tapwire server ready in {ready * 1000:.0f} ms")
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
