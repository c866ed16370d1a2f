"""`tapwire demo` as a newcomer runs it: it explains its columns, its decoded frames open
with the demo's own traffic (no "port unreachable"), it names the copies it cut, shows
the control plane's view of the session, and leaves no namespace behind."""
import re
import subprocess

from lab import BIN


def test_the_demo_explains_what_it_shows_and_cleans_up():
    done = subprocess.run([BIN, "demo"], capture_output=True, text=True, timeout=180)
    out = done.stdout
    assert done.returncode == 0, done.stderr + out
    assert "unreachable" not in out
    assert "UDP: 20 of 20 datagrams" in out
    for column in ("MATCHED ", "MIRRORED ", "CUT_LEN ", "CUT_MTU/CUT ", "FRAGMENTED ", "DROPPED "):
        assert f"\n  {column}" in out, column
    assert re.search(r"\n\d+ of \d+ copies were cut to the 1500-byte path", out), out
    view = out.split("the same at the control plane")[1]
    row = re.search(r"\n(tms-\w+)\s+1\s+42\s+(\d+)\s+(\d+)\s.*=active", view)
    assert row and int(row[2]) > 0 and int(row[3]) > 0, view
    assert "lab removed" in out
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "twdemo-" not in left
