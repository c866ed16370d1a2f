"""Two control-plane replicas on one PostgreSQL, driven by boto3 and the aws CLI as an
operator would behind a load balancer: what one acknowledges the other shows at once,
quotas and ClientTokens hold across them, a killed replica loses nothing it
acknowledged, and an agent's long poll on one hears of a change made on the other."""
import signal
import threading
import uuid

from botocore.exceptions import ClientError

from replica_support import Replicas
from tapwire_support import wait_for


def filter_ids(server):
    return {f["TrafficMirrorFilterId"] for f in server.ec2().describe_traffic_mirror_filters()["TrafficMirrorFilters"]}


def test_each_write_on_one_replica_is_seen_by_the_other_at_once(replicas):
    a, b = replicas.a, replicas.b
    made = []
    for i in range(10):
        writer, reader = (a, b) if i % 2 == 0 else (b, a)
        fid = writer.ec2().create_traffic_mirror_filter(Description=f"f{i}")["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
        made.append(fid)
        # Asked right after the acknowledgement, of the other replica: there, every time.
        assert set(made) <= filter_ids(reader), (i, made)
    seen = b.aws("describe-traffic-mirror-filters")
    assert {f["TrafficMirrorFilterId"] for f in seen["TrafficMirrorFilters"]} == set(made)
    a.ec2().delete_traffic_mirror_filter(TrafficMirrorFilterId=made[0])
    assert made[0] not in filter_ids(b)


def test_a_replica_behind_the_change_feed_loads_everything(replicas, postgres):
    a, b = replicas.a, replicas.b
    database = replicas.url.split("?")[0].rsplit("/", 1)[1]
    kept = a.ec2().create_traffic_mirror_filter(Description="kept")["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    gone = a.ec2().create_traffic_mirror_filter(Description="gone")["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    assert {kept, gone} <= filter_ids(b)
    b.proc.send_signal(signal.SIGSTOP)  # b hears nothing while a writes and the feed is cut
    try:
        made = a.ec2().create_traffic_mirror_filter(Description="new")["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
        a.ec2().delete_traffic_mirror_filter(TrafficMirrorFilterId=gone)
        postgres.sql("BEGIN; DELETE FROM tapwire_changes; UPDATE tapwire_meta SET value = "
                     "(SELECT value FROM tapwire_meta WHERE key = 'revision') WHERE key = 'feed_start'; COMMIT",
                     database=database)
    finally:
        b.proc.send_signal(signal.SIGCONT)
    seen = filter_ids(b)
    assert made in seen and kept in seen and gone not in seen


def mirror_parts(first, second, n):
    """A source interface and a target (made on `first`), a sensor and a filter (on
    `second`), addressed from 198.18.`n`.0/24."""
    source = first.register(f"198.18.{n}.1", host=f"web{n}")
    sensor = second.register(f"198.18.{n}.2", host=f"ids{n}")
    target = first.ec2().create_traffic_mirror_target(NetworkInterfaceId=sensor)["TrafficMirrorTarget"]
    fid = second.ec2().create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    return source, target["TrafficMirrorTargetId"], fid


def test_writers_on_both_replicas_never_exceed_a_quota(replicas):
    a, b = replicas.a, replicas.b
    source, target, fid = mirror_parts(a, b, 80)
    outcomes = []

    def create(n):
        server = (a, b)[n % 2]
        try:
            server.ec2().create_traffic_mirror_session(NetworkInterfaceId=source, TrafficMirrorTargetId=target,
                                                       TrafficMirrorFilterId=fid, SessionNumber=n + 1)
            outcomes.append("made")
        except ClientError as e:
            outcomes.append(e.response["Error"]["Code"])

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["TrafficMirrorSessionsPerInterfaceLimitExceeded"] * 5 + ["made"] * 3, outcomes
    for server in (a, b):
        assert len(server.ec2().describe_traffic_mirror_sessions()["TrafficMirrorSessions"]) == 3


def test_one_client_token_sent_to_both_replicas_makes_one_resource(replicas):
    token = str(uuid.uuid4())
    answers = []
    barrier = threading.Barrier(2)

    def create(server):
        barrier.wait()
        made = server.ec2().create_traffic_mirror_filter(Description="once", ClientToken=token)
        answers.append(made["TrafficMirrorFilter"]["TrafficMirrorFilterId"])

    threads = [threading.Thread(target=create, args=(s,)) for s in replicas.servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 2 and answers[0] == answers[1]
    assert filter_ids(replicas.a) == filter_ids(replicas.b) == {answers[0]}


def test_a_killed_replica_loses_nothing_it_acknowledged(replicas):
    a, b = replicas.a, replicas.b
    acknowledged = []
    stop = threading.Event()

    def write(server):
        ec2 = server.ec2()
        while not stop.is_set():
            try:
                acknowledged.append(ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"])
            except Exception:  # noqa: BLE001 - the replica under it was killed
                return

    writers = [threading.Thread(target=write, args=(s,)) for s in (a, a, b, b)]
    for t in writers:
        t.start()
    while len(acknowledged) < 40:
        threading.Event().wait(0.05)
    a.stop(signal.SIGKILL)
    while len(acknowledged) < 80:
        threading.Event().wait(0.05)
    stop.set()
    for t in writers:
        t.join()
    assert set(acknowledged) <= filter_ids(b)
    a.start()
    assert set(acknowledged) <= filter_ids(a)


def test_a_long_poll_on_one_replica_hears_of_a_change_made_on_the_other(replicas):
    a, b = replicas.a, replicas.b
    source = a.register("198.18.81.1", host="web1")
    sensor = a.register("198.18.81.2", host="ids1")
    status, config = b.v1("GET", f"/tapwire/v1/network-interfaces/{source}/config")
    assert status == 200
    revision = config["revision"]
    polled = {}

    def poll():
        polled["answer"] = b.v1("GET", f"/tapwire/v1/network-interfaces/{source}/config?after={revision}&wait=20")

    waiting = threading.Thread(target=poll)
    waiting.start()
    target = a.ec2().create_traffic_mirror_target(NetworkInterfaceId=sensor)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    fid = a.ec2().create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    sid = a.ec2().create_traffic_mirror_session(NetworkInterfaceId=source, TrafficMirrorTargetId=target,
                                                TrafficMirrorFilterId=fid, SessionNumber=1)
    sid = sid["TrafficMirrorSession"]["TrafficMirrorSessionId"]
    waiting.join(timeout=30)
    status, config = polled["answer"]
    assert status == 200 and config["revision"] > revision
    # Woken by a commit made on A; if by an earlier one than the session's, poll again.
    for _ in range(5):
        if any(s["session_id"] == sid for s in config["sessions"]):
            break
        status, config = b.v1("GET", f"/tapwire/v1/network-interfaces/{source}/config?after={config['revision']}&wait=20")
        assert status == 200
    assert any(s["session_id"] == sid for s in config["sessions"])


def test_what_an_agent_reports_to_either_replica_every_replica_shows(replicas):
    a, b = replicas.a, replicas.b
    source, target, fid = mirror_parts(a, a, 82)
    sid = a.ec2().create_traffic_mirror_session(NetworkInterfaceId=source, TrafficMirrorTargetId=target,
                                                TrafficMirrorFilterId=fid, SessionNumber=1)
    sid = sid["TrafficMirrorSession"]["TrafficMirrorSessionId"]

    def report(server, mirrored):
        body = {"applied_revision": 1, "host": "web82",
                "interface": {"name": "eth0", "applied_revision": 1, "rules": [],
                              "sessions": [{"session_id": sid, "active": True, "mirrored_packets": mirrored,
                                            "mirrored_bytes": mirrored * 100}]}}
        status, _ = server.v1("POST", f"/tapwire/v1/network-interfaces/{source}/status", body)
        assert status in (200, 204), status

    def mirrored_on(server, want):
        (row,) = [s for s in server.cli("session", "status") if s["TrafficMirrorSessionId"] == sid]
        return row if row["Counters"]["mirrored_packets"] == want else None

    report(a, 100)
    row = wait_for(lambda: mirrored_on(b, 100), timeout=10, what="A's report on B")
    assert row["Sources"][0]["State"] == "active" and row["Sources"][0]["LastReport"], row
    (listed,) = [i for i in b.cli("interface", "list") if i["NetworkInterfaceId"] == source]
    assert listed["Agent"]["ReportedAt"], listed
    # The agent restarted (counting from zero) and its next report went to B: B goes on
    # from the total A kept, and A shows B's.
    report(b, 30)
    assert mirrored_on(b, 130)
    wait_for(lambda: mirrored_on(a, 130), timeout=10, what="B's report on A")


def test_a_replica_without_its_database_answers_reads_and_refuses_writes(replicas, postgres):
    a = replicas.a
    fid = a.ec2().create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    opened = a.alibaba_v1({"Action": "OpenTrafficMirrorService", "RegionId": "cn-hangzhou", "Version": "2016-04-28"})
    assert opened[0] == 200, opened
    postgres.stop()
    try:
        status, body, headers = a.query({"Action": "DescribeTrafficMirrorFilters", "Version": "2016-11-15"})
        assert status == 200 and fid in body
        assert headers["x-tapwire-store"].startswith("unreachable")
        status, body, _ = a.query({"Action": "CreateTrafficMirrorFilter", "Version": "2016-11-15"})
        assert status == 503 and "<Code>Unavailable</Code>" in body, body
        ali = a.alibaba_v1({"Action": "CreateTrafficMirrorFilter", "RegionId": "cn-hangzhou", "Version": "2016-04-28"})
        assert ali[0] == 503 and ali[1]["Code"] == "ServiceUnavailable", ali
    finally:
        postgres.start()
    # Back by itself: the next write lands, and both replicas see it.
    made = a.ec2().create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    assert {fid, made} <= filter_ids(replicas.b)


def alibaba(server, action, **params):
    status, body, _ = server.alibaba_v1({"Action": action, "RegionId": "cn-hangzhou", "Version": "2016-04-28",
                                         **params})
    assert status == 200, body
    return body


def test_the_survivor_finishes_the_lifecycle_tasks_of_a_killed_replica(postgres, tmp_path):
    replicas = Replicas(postgres, tmp_path)
    for server in replicas.servers:
        server.extra_args += ["--alibaba-task-delay-ms", "1500"]
    replicas.start()
    try:
        a, b = replicas.a, replicas.b
        alibaba(a, "OpenTrafficMirrorService")
        made = alibaba(a, "CreateTrafficMirrorFilter", TrafficMirrorFilterName="left-behind")
        fid = made["TrafficMirrorFilterId"]
        a.stop(signal.SIGKILL)  # A led (it started first); its task is pending

        def status():
            listed = alibaba(b, "ListTrafficMirrorFilters", **{"TrafficMirrorFilterIds.1": fid})
            return listed["TrafficMirrorFilters"][0]["TrafficMirrorFilterStatus"]

        assert status() == "Creating"
        wait_for(lambda: status() == "Created", timeout=20, what="the survivor to finish the task")
    finally:
        replicas.stop()
