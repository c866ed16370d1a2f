"""Replays and rates: an Alibaba request sent twice with one nonce is refused the second
time (V1 by hand, ACS3 as the Tea SDK sent it, captured on the wire); a restart does not
reopen the window; each key has its own token bucket, so one busy key never slows another."""
import http.client
import http.server
import threading
import time

from botocore.config import Config

from alibaba_clients import Tea
from identity_support import ali_error, ec2_error
from tapwire_support import Server

SERVICE = {"Version": "2016-04-28", "Action": "OpenTrafficMirrorService", "RegionId": "cn-hangzhou"}
CREATE = {"Version": "2016-04-28", "Action": "CreateTrafficMirrorFilter", "RegionId": "cn-hangzhou",
          "TrafficMirrorFilterName": "once"}


def count_filters(server):
    return len(Tea(server.endpoint, server.root)("ListTrafficMirrorFilters")["TrafficMirrorFilters"])


def test_a_v1_nonce_is_used_once(server):
    assert server.alibaba_v1(SERVICE)[0] == 200
    timestamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    assert server.alibaba_v1(CREATE, nonce="nonce-1", timestamp=timestamp)[0] == 200
    # The same parameters, nonce and timestamp: a byte-for-byte replay.
    status, doc, _ = server.alibaba_v1(CREATE, nonce="nonce-1", timestamp=timestamp)
    assert (status, doc["Code"]) == (400, "SignatureNonceUsed")
    assert count_filters(server) == 1
    # Nonces are the key's own: another key may use the same one.
    other = server.create_key()
    assert server.alibaba_v1(CREATE, key=other, nonce="nonce-3", timestamp=timestamp)[0] == 200


class Recorder(http.server.BaseHTTPRequestHandler):
    """Forwards one request to the server and keeps it, to be sent again."""

    upstream = None
    recorded = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k: v for k, v in self.headers.items()}
        self.recorded.append((self.path, headers, body))
        conn = http.client.HTTPConnection(*self.upstream, timeout=10)
        conn.request("POST", self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_an_acs3_request_captured_on_the_wire_cannot_be_replayed(server):
    Tea(server.endpoint, server.root)("OpenTrafficMirrorService")
    Recorder.upstream, Recorder.recorded = ("127.0.0.1", server.port), []
    proxy = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        through = Tea(f"127.0.0.1:{proxy.server_address[1]}", server.root)
        through("CreateTrafficMirrorFilter", TrafficMirrorFilterName="captured")
    finally:
        proxy.shutdown()
    [(path, headers, body)] = Recorder.recorded
    assert headers["Authorization"].startswith("ACS3-HMAC-SHA256") and headers["x-acs-signature-nonce"]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    assert resp.status == 400 and b"SignatureNonceUsed" in resp.read()
    assert count_filters(server) == 1


def test_a_restart_does_not_reopen_the_window(tmp_path):
    srv = Server(tmp_path / "data").start()
    try:
        assert srv.alibaba_v1(SERVICE)[0] == 200
        signed_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        assert srv.alibaba_v1(CREATE, nonce="before-restart", timestamp=signed_at)[0] == 200
        time.sleep(1.1)  # the timestamp has one-second resolution
        srv.restart()
        status, doc, _ = srv.alibaba_v1(CREATE, nonce="before-restart", timestamp=signed_at)
        assert (status, doc["Code"]) == (400, "InvalidTimeStamp.Expired"), doc
        assert count_filters(srv) == 1
        assert srv.alibaba_v1(CREATE)[0] == 200
    finally:
        srv.stop()


def test_each_key_has_its_own_bucket(tmp_path):
    srv = Server(tmp_path / "data", ["--rate", "2", "--burst", "5"]).start()
    try:
        busy, calm = srv.create_key(), srv.create_key()
        once = Config(retries={"total_max_attempts": 1})
        ec2_busy, ec2_calm = srv.ec2(busy, config=once), srv.ec2(calm, config=once)
        codes = []
        for _ in range(12):
            try:
                ec2_busy.describe_traffic_mirror_filters()
                codes.append("OK")
            except Exception as e:  # botocore ClientError
                codes.append(e.response["Error"]["Code"])
        assert codes[:5] == ["OK"] * 5 and "RequestLimitExceeded" in codes[5:], codes
        assert ec2_error(ec2_busy.describe_traffic_mirror_filters) == ("RequestLimitExceeded", 503)
        # The other key is untouched, in both dialects.
        ec2_calm.describe_traffic_mirror_filters()
        tea_busy = Tea(srv.endpoint, busy)
        assert ali_error(tea_busy, "ListTrafficMirrorFilters")[0] == "Throttling.User"
        Tea(srv.endpoint, calm)("OpenTrafficMirrorService")
        # The throttled key's requests are counted, not written one by one to the audit trail.
        refused = [r for r in srv.audit("--limit", "1000") if r["AccessKeyId"] == busy.key_id and r["Result"] != "OK"]
        assert refused == []
    finally:
        srv.stop()
