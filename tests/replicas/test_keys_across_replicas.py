"""Access keys across two replicas. A write does not wait to catch up with the store
before it is answered (its commit checks the revision instead), yet: a key made on one
replica writes on the other at once; a key deleted on one is refused on the other at
once and changes nothing; and a tag a policy condition reads counts as the other replica
last set it. Each time the other replica is first made deaf to word of commits
(`Replicas.deafen`), so that only the request itself can catch it up."""
import json
import re

import botocore.exceptions
import pytest
from botocore.config import Config

from alibaba_clients import AlibabaError, Tea
from tapwire_support import wait_for

ONCE = Config(retries={"total_max_attempts": 1})
CREATE = {"Action": "CreateTrafficMirrorFilter", "Version": "2016-11-15"}


def error_code(body):
    found = re.search(r"<Code>([^<]+)</Code>", body)
    return found.group(1) if found else None


def filter_ids(server):
    return {f["TrafficMirrorFilterId"] for f in server.ec2().describe_traffic_mirror_filters()["TrafficMirrorFilters"]}


def test_a_key_made_on_one_replica_writes_on_the_other_at_once(replicas):
    a, b = replicas.a, replicas.b
    for _ in range(3):
        replicas.deafen("b")
        key = a.create_key()
        status, body, _ = b.query(CREATE, key=key)
        assert status == 200, body
    replicas.deafen("b")
    key = a.create_key()
    tea = Tea(b.endpoint, key, ca=str(b.ca) if b.tls else None)
    tea("OpenTrafficMirrorService")
    assert tea("CreateTrafficMirrorFilter", TrafficMirrorFilterName="fresh")["TrafficMirrorFilterId"]


def test_a_key_deleted_on_one_replica_is_refused_on_the_other_at_once(replicas):
    a, b = replicas.a, replicas.b
    refusals = []
    for _ in range(3):
        key = a.create_key()
        ec2 = b.ec2(key, config=ONCE)
        fid = ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
        replicas.deafen("b")
        a.cli("access-key", "delete", key.key_id)
        # b's door still knows the key; the write must not land.
        status, body, headers = b.query({**CREATE, "Description": "after delete"}, key=key)
        assert (status, error_code(body)) == (401, "AuthFailure"), body
        refusals.append(headers["x-amzn-requestid"])
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            ec2.delete_traffic_mirror_filter(TrafficMirrorFilterId=fid)
        assert refused.value.response["Error"]["Code"] == "AuthFailure"
        assert fid in filter_ids(a) and fid in filter_ids(b)
    descriptions = {f.get("Description") for f in a.ec2().describe_traffic_mirror_filters()["TrafficMirrorFilters"]}
    assert "after delete" not in descriptions
    # Proof that b was behind: its door passed the deleted key and the writer refused it
    # (a refusal at the door finds no key, so its record names no account).
    wait_for(lambda: len([r for r in a.audit("--limit", "1000") if r["RequestId"] in refusals]) == 3,
             what="b's refusals in the audit trail")
    by_writer = [r for r in a.audit("--limit", "1000") if r["RequestId"] in refusals and r.get("AccountId")]
    assert by_writer, "every refusal came from the door: b was never behind"


def test_a_tag_a_policy_reads_counts_as_the_other_replica_set_it(replicas, tmp_path):
    a, b = replicas.a, replicas.b
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ec2:Describe*"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["ec2:DeleteTrafficMirrorFilter"],
         "Resource": "arn:aws:ec2:*:*:traffic-mirror-filter/*",
         "Condition": {"StringEquals": {"aws:ResourceTag/team": "netsec"}}}]}
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    key = a.create_key(policy_file=path)
    for _ in range(3):
        tagged = [{"ResourceType": "traffic-mirror-filter", "Tags": [{"Key": "team", "Value": "netsec"}]}]
        fid = a.ec2().create_traffic_mirror_filter(TagSpecifications=tagged)["TrafficMirrorFilter"][
            "TrafficMirrorFilterId"]
        assert fid in filter_ids(b)  # b has the filter, tagged netsec
        replicas.deafen("b")
        # The tag changes on a; b is asked to delete with a key the new tag does not allow.
        a.ec2().create_tags(Resources=[fid], Tags=[{"Key": "team", "Value": "web"}])
        status, body, _ = b.query({"Action": "DeleteTrafficMirrorFilter", "Version": "2016-11-15",
                                   "TrafficMirrorFilterId": fid}, key=key)
        assert (status, error_code(body)) == (403, "UnauthorizedOperation"), body
        assert fid in filter_ids(a)


def test_a_key_deleted_on_one_replica_is_refused_in_alibaba_on_the_other(replicas):
    a, b = replicas.a, replicas.b
    key = a.create_key()
    tea = Tea(b.endpoint, key, ca=str(b.ca) if b.tls else None)
    tea("OpenTrafficMirrorService")
    replicas.deafen("b")
    a.cli("access-key", "delete", key.key_id)
    with pytest.raises(AlibabaError) as refused:
        tea("CreateTrafficMirrorFilter", TrafficMirrorFilterName="after delete")
    assert refused.value.code == "InvalidAccessKeyId.NotFound"
