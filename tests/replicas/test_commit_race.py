"""A commit planned on a revision that another writer moves before it lands writes
nothing: the replica hears of the conflict, catches up and commits again, so the
client's one request makes one resource, one change-feed entry and one audit record.

The other writer is a psql session that moves the revision in a transaction it holds
open, so the replica's commit (a replica writing alone takes no writer lock) reaches the
database while the row is locked.

A replica writing alone never overtakes one that holds the writer lock: its commit is
refused while the lock is held, and it waits for its turn."""
import subprocess
import threading

from tapwire_support import wait_for


WRITER_LOCK = 8386107639313097987  # tapwire-store's postgres::WRITER_LOCK


class Database:
    """The replicas' database, seen through psql as its owner."""

    def __init__(self, postgres, replicas):
        self.postgres = postgres
        self.name = replicas.url.split("?")[0].rsplit("/", 1)[1]

    def sql(self, statement):
        return self.postgres.sql(statement, database=self.name).strip()

    def revision(self):
        return int(self.sql("SELECT value FROM tapwire_meta WHERE key = 'revision'"))

    def session(self, first):
        """A psql session that runs `first` and waits for more on stdin."""
        pg = self.postgres
        other = subprocess.Popen(
            ["setpriv", f"--reuid={pg.user.pw_uid}", f"--regid={pg.user.pw_gid}", "--init-groups",
             str(pg.bin / "psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "tapwire", "-d", self.name,
             "-v", "ON_ERROR_STOP=1", "-q"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=pg.dir)
        other.stdin.write(first + "\n")
        other.stdin.flush()
        return other

    def waiting(self, condition):
        """How many of the database's sessions wait on a lock, with `condition`."""
        return self.sql(f"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        f"AND datname = '{self.name}' AND {condition}")


def finish(session, last):
    session.stdin.write(last + "\n")
    session.stdin.close()
    assert session.wait(timeout=30) == 0, session.stderr.read()


def create_in_background(server, description):
    """A CreateTrafficMirrorFilter on its own thread; the filter lands in the dict."""
    made = {}
    create = threading.Thread(target=lambda: made.update(
        server.ec2().create_traffic_mirror_filter(Description=description)["TrafficMirrorFilter"]))
    create.start()
    return create, made


def assert_made_once_at(db, fid, revision):
    """`fid` is one document, made by `revision`, the store's last."""
    assert db.revision() == revision
    assert db.sql(f"SELECT id FROM tapwire_changes WHERE revision = {revision} AND id = '{fid}'") == fid
    assert db.sql(f"SELECT count(*) FROM tapwire_documents WHERE id = '{fid}'") == "1"


def test_a_commit_overtaken_by_another_writer_writes_nothing_and_is_retried(postgres, replicas):
    db = Database(postgres, replicas)

    def audited_creates():
        return int(db.sql("SELECT count(*) FROM tapwire_records WHERE action = 'CreateTrafficMirrorFilter'"))

    replicas.a.ec2().create_traffic_mirror_filter(Description="before")
    before, creates_before = db.revision(), audited_creates()

    other = db.session("BEGIN; UPDATE tapwire_meta SET value = value + 1 WHERE key = 'revision';")
    try:
        wait_for(lambda: db.sql("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' "
                                f"AND datname = '{db.name}'") == "1", what="the other writer holding the revision")
        create, made = create_in_background(replicas.a, "raced")
        wait_for(lambda: db.waiting("query LIKE '%tapwire_meta%'") == "1",
                 what="the replica's commit waiting on the moved revision")
        finish(other, "COMMIT;")
        create.join(timeout=30)
    finally:
        if other.poll() is None:
            other.kill()

    fid = made["TrafficMirrorFilterId"]
    # The other writer's revision, then the replica's retried commit: nothing of the first try.
    assert db.sql(f"SELECT count(*) FROM tapwire_changes WHERE revision = {before + 1}") == "0"
    assert_made_once_at(db, fid, before + 2)
    assert audited_creates() == creates_before + 1
    # And the other replica, which did not take part, shows it.
    assert fid in {f["TrafficMirrorFilterId"] for f in replicas.b.ec2().describe_traffic_mirror_filters()["TrafficMirrorFilters"]}


def test_a_replica_writing_alone_waits_for_the_writer_lock_holder(postgres, replicas):
    db = Database(postgres, replicas)
    replicas.a.ec2().create_traffic_mirror_filter(Description="before")
    before = db.revision()
    holder = db.session(f"SELECT pg_advisory_lock({WRITER_LOCK});")
    try:
        wait_for(lambda: db.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                                f"AND (classid::BIGINT << 32 | objid::BIGINT) = {WRITER_LOCK}") == "1",
                 what="the other writer holding the writer lock")
        create, made = create_in_background(replicas.a, "waited")
        # Refused its unlocked commit, the replica now waits for the lock itself.
        wait_for(lambda: db.waiting("wait_event = 'advisory'") == "1", what="the replica waiting for the writer lock")
        assert create.is_alive() and not made
        assert db.revision() == before
        finish(holder, f"SELECT pg_advisory_unlock({WRITER_LOCK});")
        create.join(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()

    assert_made_once_at(db, made["TrafficMirrorFilterId"], before + 1)
