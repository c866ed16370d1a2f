"""`tapwire store migrate`: an installation moved from its embedded SQLite store to
PostgreSQL keeps its resources, keys and audit trail, and serves the same clients; a
store that already holds one is never written over."""
import subprocess

from tapwire_support import BIN, Server


def migrate(source, target):
    return subprocess.run([BIN, "store", "migrate", "--from", source, "--to", target], capture_output=True,
                          text=True, timeout=60)


def test_an_installation_moves_from_sqlite_to_postgres(postgres, tmp_path):
    old = Server(tmp_path / "old").start()
    fid = old.ec2().create_traffic_mirror_filter(Description="kept")["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    made = old.create_account("security-team")
    audited = old.audit("--since", "1h")
    old.stop()

    url = postgres.database()
    done = migrate(f"sqlite:{old.data_dir}", url)
    assert done.returncode == 0, done.stderr
    assert "audit records" in done.stdout

    new = Server(tmp_path / "new", extra_args=["--store", url, "--master-key", str(old.data_dir / "master.key")])
    new.start()
    new.root = old.root  # the same root key, verified against the moved, sealed secret
    (kept,) = new.ec2().describe_traffic_mirror_filters()["TrafficMirrorFilters"]
    assert (kept["TrafficMirrorFilterId"], kept["Description"]) == (fid, "kept")
    assert made.account in {a["AccountId"] for a in new.cli("account", "list")}
    assert [r["RequestId"] for r in new.audit("--since", "1h")][-len(audited):] == [r["RequestId"] for r in audited]
    # An agent still holding the old store's (higher) revision is answered at once, not
    # left waiting for the new store to count that far.
    eni = new.register("198.18.82.1", host="web1")
    status, config = new.v1("GET", f"/tapwire/v1/network-interfaces/{eni}/config?after=999999&wait=30")
    assert status == 200 and config["network_interface_id"] == eni
    new.stop()

    again = migrate(f"sqlite:{old.data_dir}", url)
    assert again.returncode == 1 and "already holds a store" in again.stderr
