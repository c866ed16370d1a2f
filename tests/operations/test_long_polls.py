"""An agent's long poll waits past its own document's revision: writes that do not change
its interface's configuration leave it parked, one that does answers it."""
import threading


def poll(server, eni, after, wait):
    return server.v1("GET", f"/tapwire/v1/network-interfaces/{eni}/config?after={after}&wait={wait}")


def test_a_write_wakes_only_the_agents_whose_configuration_it_changes(server):
    web1, web2, sensor = (server.register(ip, host=h) for ip, h in
                          (("198.18.90.1", "web1"), ("198.18.90.2", "web2"), ("198.18.90.9", "ids1")))
    status, config = server.v1("GET", f"/tapwire/v1/network-interfaces/{web2}/config")
    assert status == 200
    parked = {}
    waiting = threading.Thread(target=lambda: parked.update(answer=poll(server, web2, config["revision"], 3)))
    waiting.start()
    ec2 = server.ec2()
    target = ec2.create_traffic_mirror_target(NetworkInterfaceId=sensor)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    fid = ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    ec2.create_traffic_mirror_session(NetworkInterfaceId=web1, TrafficMirrorTargetId=target,
                                      TrafficMirrorFilterId=fid, SessionNumber=1)
    waiting.join(timeout=20)
    # Three writes, none of them web2's: its poll ran out its wait unanswered.
    assert parked["answer"][0] == 304

    waiting = threading.Thread(target=lambda: parked.update(answer=poll(server, web2, config["revision"], 20)))
    waiting.start()
    sid = ec2.create_traffic_mirror_session(NetworkInterfaceId=web2, TrafficMirrorTargetId=target,
                                            TrafficMirrorFilterId=fid, SessionNumber=1)
    waiting.join(timeout=30)
    status, woken = parked["answer"]
    assert status == 200 and woken["revision"] > config["revision"]
    assert [s["session_id"] for s in woken["sessions"]] == [sid["TrafficMirrorSession"]["TrafficMirrorSessionId"]]
