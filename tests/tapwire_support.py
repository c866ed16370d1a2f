"""What every real-client suite shares: one `tapwire server` process and its keys.

`Server.start()` launches the binary ($TAPWIRE_BIN or target/debug/tapwire) with its stderr
in `server.log` beside the data directory, waits for "listening on", and reads the root
account's key from `DATA_DIR/credentials` (profile `[tapwire]`), as a user would. Every
client the suites drive (boto3, the aws CLI, the Alibaba SDKs, the `tapwire` CLI, raw
HTTP signed by botocore's own SigV4 code) signs with a real key from here.
"""
import configparser
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
from aliyunsdkcore.auth.algorithm import sha_hmac1
from aliyunsdkcore.auth.composer import rpc_signature_composer
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ROOT = Path(__file__).resolve().parents[1]
BIN = os.environ.get("TAPWIRE_BIN", str(ROOT / "target" / "debug" / "tapwire"))
AWS = str(Path(sys.executable).parent / "aws")
EC2_REGION = "us-east-1"


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    """Polls `predicate` until it is truthy (returned) or `timeout` passes (an assertion)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value {last!r})")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Key:
    """An access key pair, and the account it belongs to when known."""

    key_id: str
    secret: str
    account: str = ""

    def env(self, region=EC2_REGION, **extra):
        """The environment the aws CLI and the `tapwire` CLI find this key in."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({
            "AWS_ACCESS_KEY_ID": self.key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_DEFAULT_REGION": region,
            "AWS_PAGER": "",
            "AWS_EC2_METADATA_DISABLED": "true",
        })
        env.update(extra)
        return env


def read_profile(path, profile="tapwire"):
    parser = configparser.ConfigParser()
    parser.read(path)
    section = parser[profile]
    return Key(section["aws_access_key_id"], section["aws_secret_access_key"]), section.get("region")


# Set by tests/conftest.py when TAPWIRE_TEST_REPLICAS=1: the run's PostgreSQL, on which
# every plain-HTTP Server becomes two replicas behind a round-robin balancer.
REPLICA_CLUSTER = None


class Server:
    """One `tapwire server` over one data directory; with REPLICA_CLUSTER, two replicas
    on a database of their own, sharing a master key, behind a balancer on the same URL."""

    def __init__(self, data_dir, extra_args=(), preexec_fn=None, host="127.0.0.1", port=None, launch=None, tls=False):
        self.data_dir = Path(data_dir)
        self.tls = tls
        # With TLS (`--tls auto`), the CA the server made is what every client trusts.
        self.ca = self.data_dir / "tls" / "ca.pem" if tls else None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        self.preexec_fn = preexec_fn
        self.host = host
        self.port = port or free_port()
        self.endpoint = f"{host}:{self.port}"
        self.url = f"{'https' if tls else 'http'}://{self.endpoint}"
        self.extra_args = list(extra_args)
        self.launch = launch
        self.proc = None
        self.root = None
        self.replicas = REPLICA_CLUSTER is not None and not tls and launch is None
        self.procs = []
        self.balancer = None
        self.store_url = None

    # -- process ---------------------------------------------------------------------

    def replica_argvs(self):
        """Each replica's command line: the test's, on a port and data directory of its
        own, on the shared store and master key."""
        if self.store_url is None:
            self.store_url = REPLICA_CLUSTER.database(tls=True)
            self.replica_ports = [free_port(), free_port()]
        argvs = []
        for i, port in enumerate(self.replica_ports):
            argv = self.argv()
            argv[argv.index("--listen") + 1] = f"{self.host}:{port}"
            if i > 0:
                argv[argv.index("--data-dir") + 1] = f"{self.data_dir}-replica{i}"
            argvs.append([*argv, "--store", self.store_url, "--master-key", f"{self.data_dir}.master.key"])
        return argvs

    def start(self, timeout=20.0):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        running = [p.pid for p in self.procs if p.poll() is None]
        assert not running, f"start() while processes {running} still run: stop() them first"
        argvs = self.replica_argvs() if self.replicas else [self.argv()]
        self.procs = []
        for argv in argvs:
            log = open(self.log_path, "a")
            if self.launch:
                proc = self.launch(argv, log)
            else:
                proc = subprocess.Popen(argv, stderr=log, stdout=subprocess.DEVNULL, preexec_fn=self.preexec_fn)
            log.close()
            self.procs.append(proc)
            # One at a time: the first makes the root key, the others find it.
            deadline = time.monotonic() + timeout
            while self.log()[offset:].count("listening on") < len(self.procs):
                assert proc.poll() is None, f"server exited {proc.returncode}: {self.log()[offset:]}"
                assert time.monotonic() < deadline, f"server did not start: {self.log()[offset:]}"
                time.sleep(0.02)
        self.proc = self.procs[0]
        if self.replicas and self.balancer is None:
            from balancer import Balancer
            self.balancer = Balancer((self.host, self.port), [(self.host, p) for p in self.replica_ports])
        credentials = self.data_dir / "credentials"
        if credentials.exists():
            self.root, _ = read_profile(credentials)
        return self

    def argv(self):
        # TLS from the server's own CA, unless the test hands it a certificate.
        tls = ["--tls", "auto"] if self.tls and "--tls-cert" not in self.extra_args else []
        return [BIN, "server", "--listen", self.endpoint, "--data-dir", str(self.data_dir), *tls, *self.extra_args]

    def ssl_context(self):
        return ssl.create_default_context(cafile=str(self.ca)) if self.tls else None

    def stop(self, sig=signal.SIGTERM):
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(sig)
                proc.wait(timeout=10)
        self.proc = None
        self.procs = []

    def restart(self, sig=signal.SIGTERM):
        self.stop(sig)
        return self.start()

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    # -- clients ---------------------------------------------------------------------

    def key(self, key=None):
        return key or self.root

    def ec2(self, key=None, region=EC2_REGION, config=None):
        key = self.key(key)
        return boto3.client("ec2", endpoint_url=self.url, region_name=region, config=config,
                            verify=str(self.ca) if self.tls else None,
                            aws_access_key_id=key.key_id, aws_secret_access_key=key.secret)

    def aws(self, *args, check=True, key=None, region=EC2_REGION):
        """Runs `aws ec2 ARGS`; returns parsed JSON, or (exit code, stderr) with check=False."""
        tls = ["--ca-bundle", str(self.ca)] if self.tls else []
        proc = subprocess.run([AWS, "ec2", "--endpoint-url", self.url, *tls, "--output", "json", *args],
                              capture_output=True, text=True, env=self.key(key).env(region), timeout=60)
        if check:
            assert proc.returncode == 0, f"aws {' '.join(args)} failed: {proc.stderr}"
            return json.loads(proc.stdout) if proc.stdout.strip() else {}
        return proc.returncode, proc.stderr

    def cli(self, *args, key=None, check=True, output="json"):
        """Runs `tapwire ARGS --server URL` with the key in the environment; returns the
        parsed JSON output, or the CompletedProcess with check=False."""
        argv = [BIN, *args, "--server", self.url, *(["--ca-cert", str(self.ca)] if self.tls else [])]
        if output:
            argv += ["--output", output]
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.key(key).env(), timeout=60)
        if not check:
            return proc
        assert proc.returncode == 0, f"tapwire {' '.join(args)} failed: {proc.stderr}"
        return json.loads(proc.stdout) if output == "json" else proc.stdout

    def v1(self, method, path, body=None, key=None, sign=True):
        """A request to tapwire's own endpoints, signed by botocore's SigV4 for the service
        `tapwire`; returns (status, parsed JSON or None)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"content-type": "application/json"} if data is not None else {}
        request = AWSRequest(method=method, url=f"{self.url}{path}", data=data, headers=headers)
        if sign:
            key = self.key(key)
            SigV4Auth(Credentials(key.key_id, key.secret), "tapwire", EC2_REGION).add_auth(request)
        prepared = request.prepare()
        req = urllib.request.Request(prepared.url, data=prepared.body, method=method, headers=dict(prepared.headers))
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.ssl_context()) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, json.loads(raw) if raw else None

    def query(self, params, method="POST", key=None, region=EC2_REGION, service="ec2", sign=True, headers=None):
        """A Query-protocol request to `/` made by hand and signed by botocore's SigV4 (as a
        script or curl with --aws-sigv4 would); returns (status, body text, headers)."""
        body = urllib.parse.urlencode(params)
        if method == "GET":
            request = AWSRequest(method="GET", url=f"{self.url}/?{body}", headers=dict(headers or {}))
        else:
            h = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", **(headers or {})}
            request = AWSRequest(method=method, url=f"{self.url}/", data=body.encode(), headers=h)
        if sign:
            key = self.key(key)
            SigV4Auth(Credentials(key.key_id, key.secret), service, region).add_auth(request)
        prepared = request.prepare()
        req = urllib.request.Request(prepared.url, data=prepared.body, method=method, headers=dict(prepared.headers))
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.ssl_context()) as resp:
                return resp.status, resp.read().decode(), resp.headers
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), e.headers

    def alibaba_v1(self, params, key=None, in_body=True, nonce=None, timestamp=None, method="POST"):
        """A hand-made RPC request with a V1 signature computed by the legacy SDK's own
        composer, all parameters in a form body (as Terraform's generic RPC client sends them)
        or in the query; returns (HTTP status, parsed JSON, headers)."""
        key = self.key(key)
        signed = {
            **params,
            "Format": "JSON",
            "AccessKeyId": key.key_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "SignatureNonce": nonce or str(uuid.uuid4()),
            "Timestamp": timestamp or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        compose = getattr(rpc_signature_composer, "__compose_string_to_sign")
        signed["Signature"] = sha_hmac1.get_sign_string(compose(method, signed), key.secret + "&")
        encoded = urllib.parse.urlencode(signed)
        if in_body:
            req = urllib.request.Request(self.url + "/", data=encoded.encode(), method=method,
                                         headers={"content-type": "application/x-www-form-urlencoded"})
        else:
            req = urllib.request.Request(f"{self.url}/?{encoded}", data=b"", method=method)
        try:
            with urllib.request.urlopen(req, timeout=10, context=self.ssl_context()) as resp:
                return resp.status, json.loads(resp.read()), resp.headers
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read()), e.headers

    def register(self, ip, instance_id=None, ifname="eth0", host=None, extra_ips=(), key=None):
        """Registers an interface with the `tapwire` CLI; returns its eni- ID."""
        args = ["interface", "register", "--ip", ip, "--ifname", ifname]
        for extra in extra_ips:
            args += ["--ip", extra]
        if instance_id:
            args += ["--instance-id", instance_id]
        if host:
            args += ["--host", host]
        return self.cli(*args, key=key)["NetworkInterfaceId"]

    def create_account(self, name):
        """Makes an account with `tapwire account create`; returns its first key."""
        made = self.cli("account", "create", "--name", name)
        return Key(made["AccessKeyId"], made["SecretAccessKey"], made["AccountId"])

    def create_key(self, account=None, policy_file=None):
        """Makes a key with `tapwire access-key create`."""
        args = ["access-key", "create"]
        if account:
            args += ["--account", account]
        if policy_file:
            args += ["--policy", str(policy_file)]
        made = self.cli(*args)
        return Key(made["AccessKeyId"], made["SecretAccessKey"], made["AccountId"])

    def audit(self, *args, key=None):
        """`tapwire audit --output json ARGS`."""
        return self.cli("audit", *args, key=key)
