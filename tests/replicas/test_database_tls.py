"""The replicas' connections to PostgreSQL: verified TLS when the URL asks for it (the
database's own view says so), a certificate from an unknown CA refused at start, and no
mode that falls back to plain text without a word."""
import subprocess

from tapwire_support import BIN, free_port


def test_replicas_reach_the_database_over_verified_tls_only(replicas, postgres):
    a, b = replicas.a, replicas.b
    fid = a.ec2().create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    assert fid in {f["TrafficMirrorFilterId"] for f in b.ec2().describe_traffic_mirror_filters()["TrafficMirrorFilters"]}
    encrypted, plain = postgres.connections(replicas.url)
    # Each replica: its listener and at least one pooled connection.
    assert encrypted >= 4 and plain == 0, (encrypted, plain)


def server_refusing(url, tmp_path):
    """Starts a server on `url`; it must stop at once. Its error output."""
    run = subprocess.run([BIN, "server", "--store", url, "--data-dir", str(tmp_path / "data"),
                          "--listen", f"127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=60)
    assert run.returncode != 0, run.stderr
    return run.stderr


def test_a_database_certificate_from_an_unknown_ca_is_refused(postgres, tmp_path):
    other = tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tmp_path / "other.key"), "-out", str(other), "-days", "1", "-subj", "/CN=other"],
                   check=True, capture_output=True, timeout=60)
    url = postgres.database(tls=True).replace(str(postgres.ca), str(other))
    err = server_refusing(url, tmp_path)
    assert "UnknownIssuer" in err or "certificate" in err, err
    # The password-free URL is named; the database holds nothing of tapwire's.
    assert "opening the store at postgres://" in err, err
    assert postgres.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'tapwire_documents'",
                        database=url.split("?")[0].rsplit("/", 1)[1]).strip() == "0"


def test_modes_that_fall_back_to_plain_text_are_refused(postgres, tmp_path):
    url = postgres.database().replace("127.0.0.1", "localhost") + "?sslmode=prefer"
    err = server_refusing(url, tmp_path)
    assert "sslmode=prefer falls back to plain text" in err and "sslmode=verify-full" in err, err
