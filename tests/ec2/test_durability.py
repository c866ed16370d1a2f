"""Nothing acknowledged is ever lost: across a clean restart and across kill -9."""
import signal
import threading

from ec2_support import lab


def describe_all(ec2):
    return (ec2.describe_traffic_mirror_filters()["TrafficMirrorFilters"],
            ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"],
            ec2.describe_traffic_mirror_targets()["TrafficMirrorTargets"],
            ec2.describe_network_interfaces()["NetworkInterfaces"])


def test_restart_keeps_everything(server, ec2):
    src, dst, fid, tid = lab(server, ec2)
    ec2.create_traffic_mirror_filter_rule(TrafficMirrorFilterId=fid, TrafficDirection="ingress", RuleNumber=1,
                                          RuleAction="accept", SourceCidrBlock="0.0.0.0/0",
                                          DestinationCidrBlock="0.0.0.0/0", Protocol=6)
    ec2.create_traffic_mirror_session(NetworkInterfaceId=src, TrafficMirrorTargetId=tid, TrafficMirrorFilterId=fid,
                                      SessionNumber=1, TagSpecifications=[
                                          {"ResourceType": "traffic-mirror-session", "Tags": [{"Key": "k", "Value": "v"}]}])
    before = describe_all(ec2)
    server.restart()
    assert describe_all(server.ec2()) == before


def test_kill_9_loses_no_acknowledged_write(server, ec2):
    acknowledged = []
    stop = threading.Event()

    def writer():
        client = server.ec2()
        i = 0
        while not stop.is_set():
            try:
                f = client.create_traffic_mirror_filter(Description=f"w{i}")
            except Exception:  # the server died mid-request: that write was never acknowledged
                return
            acknowledged.append(f["TrafficMirrorFilter"]["TrafficMirrorFilterId"])
            i += 1

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    while len(acknowledged) < 200:
        threading.Event().wait(0.01)
    server.stop(signal.SIGKILL)  # every process of the server (both replicas, on replicas)
    stop.set()
    for t in threads:
        t.join()
    server.start()
    present = {f["TrafficMirrorFilterId"] for f in server.ec2().describe_traffic_mirror_filters()["TrafficMirrorFilters"]}
    missing = [a for a in acknowledged if a not in present]
    assert missing == [], f"{len(missing)} acknowledged filters lost"
    assert len(acknowledged) >= 200
