"""A commit planned on a revision that another writer moves before it lands writes
nothing: the replica hears of the conflict, catches up and commits again, so the
client's one request makes one resource, one change-feed entry and one audit record.

The other writer is a psql session that moves the revision in a transaction it holds
open, so the replica's commit reaches the database while the row is locked, the way
a replica committing without the writer lock (after its 5 s wait) would race."""
import subprocess
import threading

from tapwire_support import wait_for


def test_a_commit_overtaken_by_another_writer_writes_nothing_and_is_retried(postgres, replicas):
    a = replicas.a
    database = replicas.url.split("?")[0].rsplit("/", 1)[1]

    def sql(statement):
        return postgres.sql(statement, database=database).strip()

    def audited_creates():
        return int(sql("SELECT count(*) FROM tapwire_records WHERE action = 'CreateTrafficMirrorFilter'"))

    a.ec2().create_traffic_mirror_filter(Description="before")
    before, creates_before = int(sql("SELECT value FROM tapwire_meta WHERE key = 'revision'")), audited_creates()

    other = subprocess.Popen(
        ["setpriv", f"--reuid={postgres.user.pw_uid}", f"--regid={postgres.user.pw_gid}", "--init-groups",
         str(postgres.bin / "psql"), "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "tapwire", "-d", database,
         "-v", "ON_ERROR_STOP=1", "-q"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=postgres.dir)
    try:
        other.stdin.write("BEGIN; UPDATE tapwire_meta SET value = value + 1 WHERE key = 'revision';\n")
        other.stdin.flush()
        wait_for(lambda: sql("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' "
                             f"AND datname = '{database}'") == "1", what="the other writer holding the revision")
        made = {}
        create = threading.Thread(target=lambda: made.update(
            a.ec2().create_traffic_mirror_filter(Description="raced")["TrafficMirrorFilter"]))
        create.start()
        wait_for(lambda: sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                             f"AND datname = '{database}' AND query LIKE '%tapwire_meta%'") == "1",
                 what="the replica's commit waiting on the moved revision")
        other.stdin.write("COMMIT;\n")
        other.stdin.close()
        assert other.wait(timeout=30) == 0, other.stderr.read()
        create.join(timeout=30)
    finally:
        if other.poll() is None:
            other.kill()

    fid = made["TrafficMirrorFilterId"]
    # The other writer's revision, then the replica's retried commit: nothing of the first try.
    assert int(sql("SELECT value FROM tapwire_meta WHERE key = 'revision'")) == before + 2
    assert sql(f"SELECT count(*) FROM tapwire_changes WHERE revision = {before + 1}") == "0"
    assert sql(f"SELECT id FROM tapwire_changes WHERE revision = {before + 2} AND id = '{fid}'") == fid
    assert sql(f"SELECT count(*) FROM tapwire_documents WHERE id = '{fid}'") == "1"
    assert audited_creates() == creates_before + 1
    # And the other replica, which did not take part, shows it.
    assert fid in {f["TrafficMirrorFilterId"] for f in replicas.b.ec2().describe_traffic_mirror_filters()["TrafficMirrorFilters"]}
