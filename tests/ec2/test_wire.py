"""The EC2 Query wire contract, with raw HTTP: what SDKs would never send but other
clients (curl, scripts, Terraform-style tools) might."""
import re
import xml.etree.ElementTree as ET

NS = "{http://ec2.amazonaws.com/doc/2016-11-15/}"


def call(server, params, method="POST"):
    return server.query(params, method=method)[:2]


def error_of(text):
    root = ET.fromstring(text)
    assert root.tag == "Response"
    assert root.find("RequestID") is not None and root.find("RequestID").text
    return root.find("Errors/Error/Code").text, root.find("Errors/Error/Message").text


def test_success_envelope_has_namespace_request_id_and_item_lists(server):
    status, text = call(server, {"Action": "CreateTrafficMirrorFilter", "Version": "2016-11-15",
                                 "Description": "a <b> & c"})
    assert status == 200
    root = ET.fromstring(text)
    assert root.tag == f"{NS}CreateTrafficMirrorFilterResponse"
    assert re.fullmatch(r"[0-9a-f-]{36}", root.find(f"{NS}requestId").text)
    f = root.find(f"{NS}trafficMirrorFilter")
    assert f.find(f"{NS}description").text == "a <b> & c"
    assert f.find(f"{NS}ingressFilterRuleSet") is not None and len(f.find(f"{NS}ingressFilterRuleSet")) == 0
    status, text = call(server, {"Action": "DescribeTrafficMirrorFilters", "Version": "2016-11-15"}, method="GET")
    assert status == 200
    items = ET.fromstring(text).findall(f"{NS}trafficMirrorFilterSet/{NS}item")
    assert len(items) == 1


def test_unknown_parameter_action_and_missing_parameters(server):
    before = call(server, {"Action": "DescribeTrafficMirrorFilters", "Version": "2016-11-15"})[1]
    status, text = call(server, {"Action": "CreateTrafficMirrorFilter", "Version": "2016-11-15", "Descripton": "x"})
    assert status == 400 and error_of(text)[0] == "UnknownParameter"
    status, text = call(server, {"Action": "CreateTrafficMirrorFooBar", "Version": "2016-11-15"})
    assert status == 400 and error_of(text)[0] == "InvalidAction"
    status, text = call(server, {"Action": "CreateTrafficMirrorFilterRule", "Version": "2016-11-15"})
    assert status == 400 and error_of(text) == ("MissingParameter",
                                                "The request must contain the parameter TrafficMirrorFilterId")
    status, text = call(server, {"Version": "2016-11-15"})
    assert status == 400 and error_of(text)[0] == "MissingParameter"
    status, text = call(server, {"Action": "DescribeTrafficMirrorFilters", "Version": "2016-11-15",
                                 "MaxResults": "4"})
    assert status == 400 and error_of(text)[0] == "InvalidParameterValue"
    status, text = call(server, {"Action": "DescribeTrafficMirrorFilters", "Version": "2016-11-15",
                                 "DryRun": "true"})
    assert status == 412 and error_of(text)[0] == "DryRunOperation"
    status, text = call(server, {"Action": "DescribeTrafficMirrorFilters", "Version": "2016-11-15", "DryRun": "maybe"})
    assert status == 400 and error_of(text)[0] == "InvalidParameterValue"
    after = call(server, {"Action": "DescribeTrafficMirrorFilters", "Version": "2016-11-15"})[1]
    strip = lambda t: re.sub(r"<requestId>[^<]*</requestId>", "", t)
    assert strip(before) == strip(after)


def test_region_comes_from_the_signature_scope(server):
    east = server.ec2()
    west = server.ec2(region="eu-west-1")
    fid = east.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    assert west.describe_traffic_mirror_filters()["TrafficMirrorFilters"] == []
    assert [f["TrafficMirrorFilterId"] for f in east.describe_traffic_mirror_filters()["TrafficMirrorFilters"]] == [fid]
