"""`/metrics` is for holders of a key: Prometheus scrapes it with HTTP Basic (the access
key ID and secret) over TLS, or any SigV4 client signs the GET; anyone else gets 401
with a Basic challenge, and only GET is served."""
import base64
import urllib.error
import urllib.request


def get(server, auth=None, method="GET"):
    req = urllib.request.Request(f"{server.url}/metrics", method=method)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode(), resp.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


def test_metrics_refuse_a_caller_without_a_key(server):
    status, _, headers = get(server)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    status, _, _ = get(server, f"{server.root.key_id}:not-the-secret")
    assert status in (401, 403)
    status, _, _ = get(server, "TWAKNOSUCHKEY0000000:whatever")
    assert status in (401, 403)


def test_metrics_answer_a_key_holder_in_the_prometheus_text_format(server):
    status, body, headers = get(server, f"{server.root.key_id}:{server.root.secret}")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE tapwire_session_matched_packets_total counter" in body
    status, _, _ = get(server, f"{server.root.key_id}:{server.root.secret}", method="POST")
    assert status == 405
