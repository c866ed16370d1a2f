//! Golden tests: the exact XML of every EC2 operation and of errors.
//!
//! A scripted session runs against the real router in-process with a seeded RNG and a
//! fixed clock, so IDs are stable; request IDs are replaced by `REQUEST-ID`. Each response
//! is compared with `tests/golden/ec2/{step}.xml`. `UPDATE_GOLDEN=1` rewrites the files
//! (review the diff before committing).

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use common::{Golden, api, register};
use tapwire_api::Api;

async fn call(api: &Arc<Api>, params: &[(&str, &str)]) -> (u16, String) {
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair("Version", "2016-11-15");
    for (k, v) in params {
        body.append_pair(k, v);
    }
    let req = Request::post("/")
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(Body::from(body.finish()))
        .unwrap();
    let (status, bytes) = common::send(api, req).await;
    (status, String::from_utf8(bytes).unwrap())
}

fn normalise(xml: &str) -> String {
    let mut out = String::new();
    let mut rest = xml;
    for tag in ["requestId", "RequestID"] {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        if let (Some(a), Some(b)) = (rest.find(&open), rest.find(&close)) {
            out.push_str(&rest[..a + open.len()]);
            out.push_str("REQUEST-ID");
            rest = &rest[b..];
        }
    }
    out.push_str(rest);
    out
}

fn extract<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let a = xml.find(&open).unwrap_or_else(|| panic!("no <{tag}> in {xml}")) + open.len();
    let b = a + xml[a..].find('<').unwrap();
    &xml[a..b]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_and_error_matches_its_golden_xml() {
    let api = api(7);
    let src = register(&api, "us-east-1", "198.18.0.2", Some("i-web1"));
    let dst = register(&api, "us-east-1", "198.18.1.2", Some("i-sensor1"));
    let mut g = Golden::new("ec2", "xml");

    let (s, b) = call(&api, &[("Action", "DescribeTrafficMirrorSessions")]).await;
    g.check("describe-sessions-empty", s, &normalise(&b));
    let (s, b) = call(
        &api,
        &[
            ("Action", "CreateTrafficMirrorFilter"),
            ("Description", "web & <api>"),
            ("ClientToken", "token-1"),
            ("TagSpecification.1.ResourceType", "traffic-mirror-filter"),
            ("TagSpecification.1.Tag.1.Key", "team"),
            ("TagSpecification.1.Tag.1.Value", "sec"),
        ],
    )
    .await;
    g.check("create-filter", s, &normalise(&b));
    let fid = extract(&b, "trafficMirrorFilterId").to_owned();
    let (s, b) = call(
        &api,
        &[
            ("Action", "CreateTrafficMirrorFilterRule"),
            ("TrafficMirrorFilterId", &fid),
            ("TrafficDirection", "ingress"),
            ("RuleNumber", "100"),
            ("RuleAction", "accept"),
            ("Protocol", "6"),
            ("DestinationPortRange.FromPort", "443"),
            ("DestinationPortRange.ToPort", "443"),
            ("SourceCidrBlock", "0.0.0.0/0"),
            ("DestinationCidrBlock", "198.18.0.0/24"),
            ("Description", "https"),
        ],
    )
    .await;
    g.check("create-filter-rule", s, &normalise(&b));
    let rid = extract(&b, "trafficMirrorFilterRuleId").to_owned();
    let (s, b) = call(
        &api,
        &[
            ("Action", "CreateTrafficMirrorFilterRule"),
            ("TrafficMirrorFilterId", &fid),
            ("TrafficDirection", "egress"),
            ("RuleNumber", "1"),
            ("RuleAction", "reject"),
            ("SourceCidrBlock", "2001:db8::/32"),
            ("DestinationCidrBlock", "::/0"),
        ],
    )
    .await;
    g.check("create-filter-rule-v6", s, &normalise(&b));
    let (s, b) = call(
        &api,
        &[
            ("Action", "ModifyTrafficMirrorFilterRule"),
            ("TrafficMirrorFilterRuleId", &rid),
            ("RuleNumber", "110"),
            ("RemoveField.1", "description"),
        ],
    )
    .await;
    g.check("modify-filter-rule", s, &normalise(&b));
    let (s, b) = call(
        &api,
        &[
            ("Action", "ModifyTrafficMirrorFilterNetworkServices"),
            ("TrafficMirrorFilterId", &fid),
            ("AddNetworkService.1", "amazon-dns"),
        ],
    )
    .await;
    g.check("modify-network-services", s, &normalise(&b));
    let (s, b) = call(&api, &[("Action", "DescribeTrafficMirrorFilterRules"), ("TrafficMirrorFilterId", &fid)]).await;
    g.check("describe-filter-rules", s, &normalise(&b));
    let (s, b) =
        call(&api, &[("Action", "CreateTrafficMirrorTarget"), ("NetworkInterfaceId", &dst), ("Description", "ids")])
            .await;
    g.check("create-target", s, &normalise(&b));
    let tid = extract(&b, "trafficMirrorTargetId").to_owned();
    let (s, b) = call(
        &api,
        &[
            ("Action", "CreateTrafficMirrorTarget"),
            ("NetworkLoadBalancerArn", "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/ids/50dc"),
        ],
    )
    .await;
    g.check("create-target-nlb", s, &normalise(&b));
    let (s, b) = call(
        &api,
        &[
            ("Action", "CreateTrafficMirrorSession"),
            ("NetworkInterfaceId", &src),
            ("TrafficMirrorTargetId", &tid),
            ("TrafficMirrorFilterId", &fid),
            ("SessionNumber", "1"),
            ("PacketLength", "128"),
            ("Description", "web to ids"),
        ],
    )
    .await;
    g.check("create-session", s, &normalise(&b));
    let sid = extract(&b, "trafficMirrorSessionId").to_owned();
    let (s, b) = call(
        &api,
        &[
            ("Action", "ModifyTrafficMirrorSession"),
            ("TrafficMirrorSessionId", &sid),
            ("VirtualNetworkId", "42"),
            ("RemoveField.1", "packet-length"),
        ],
    )
    .await;
    g.check("modify-session", s, &normalise(&b));
    let (s, b) =
        call(&api, &[("Action", "CreateTags"), ("ResourceId.1", &sid), ("Tag.1.Key", "env"), ("Tag.1.Value", "prod")])
            .await;
    g.check("create-tags", s, &normalise(&b));
    let (s, b) = call(&api, &[("Action", "DescribeTrafficMirrorSessions"), ("MaxResults", "5")]).await;
    g.check("describe-sessions", s, &normalise(&b));
    let (s, b) = call(&api, &[("Action", "DescribeTrafficMirrorFilters"), ("TrafficMirrorFilterId.1", &fid)]).await;
    g.check("describe-filters", s, &normalise(&b));
    let (s, b) = call(&api, &[("Action", "DescribeTrafficMirrorTargets")]).await;
    g.check("describe-targets", s, &normalise(&b));
    let (s, b) = call(&api, &[("Action", "DescribeNetworkInterfaces"), ("NetworkInterfaceId.1", &src)]).await;
    g.check("describe-network-interfaces", s, &normalise(&b));
    let tags = [("Action", "CreateTags"), ("ResourceId.1", &*src), ("Tag.1.Key", "role"), ("Tag.1.Value", "web")];
    let (s, b) = call(&api, &tags).await;
    g.check("create-tags-interface", s, &normalise(&b));
    let (s, b) = call(
        &api,
        &[("Action", "DescribeNetworkInterfaces"), ("Filter.1.Name", "tag:role"), ("Filter.1.Value.1", "w*")],
    )
    .await;
    g.check("describe-network-interfaces-by-tag", s, &normalise(&b));
    let (s, b) = call(&api, &[("Action", "DescribeTags")]).await;
    g.check("describe-tags", s, &normalise(&b));
    let (s, b) = call(
        &api,
        &[
            ("Action", "DescribeTags"),
            ("Filter.1.Name", "resource-type"),
            ("Filter.1.Value.1", "traffic-mirror-session"),
            ("Filter.2.Name", "key"),
            ("Filter.2.Value.1", "e?v"),
        ],
    )
    .await;
    g.check("describe-tags-filtered", s, &normalise(&b));
    let (s, b) = call(&api, &[("Action", "DescribeTags"), ("MaxResults", "4")]).await;
    g.check("error-describe-tags-max-results", s, &normalise(&b));
    let (s, b) = call(&api, &[("Action", "DeleteTags"), ("ResourceId.1", &sid), ("Tag.1.Key", "env")]).await;
    g.check("delete-tags", s, &normalise(&b));

    // Errors.
    let (s, b) = call(&api, &[("Action", "DeleteTrafficMirrorFilter"), ("TrafficMirrorFilterId", &fid)]).await;
    g.check("error-filter-in-use", s, &normalise(&b));
    let (s, b) =
        call(&api, &[("Action", "DeleteTrafficMirrorSession"), ("TrafficMirrorSessionId", "tms-0123456789abcdef0")])
            .await;
    g.check("error-session-not-found", s, &normalise(&b));
    let (s, b) = call(&api, &[("Action", "CreateTrafficMirrorFilter"), ("DryRun", "true")]).await;
    g.check("error-dry-run", s, &normalise(&b));
    let (s, b) = call(&api, &[("Action", "CreateTrafficMirrorFilter"), ("ClientToken", "token-1")]).await;
    g.check("error-idempotent-mismatch", s, &normalise(&b));
    let (s, b) = call(&api, &[("Action", "CreateTrafficMirrorFilter"), ("Bogus", "1")]).await;
    g.check("error-unknown-parameter", s, &normalise(&b));
    let (s, b) = call(&api, &[("Action", "RebootInstances")]).await;
    g.check("error-invalid-action", s, &normalise(&b));
    let (s, b) = call(&api, &[("Action", "CreateTrafficMirrorTarget")]).await;
    g.check("error-invalid-input", s, &normalise(&b));

    // Deletes.
    let (s, b) = call(&api, &[("Action", "DeleteTrafficMirrorSession"), ("TrafficMirrorSessionId", &sid)]).await;
    g.check("delete-session", s, &normalise(&b));
    let (s, b) = call(&api, &[("Action", "DeleteTrafficMirrorTarget"), ("TrafficMirrorTargetId", &tid)]).await;
    g.check("delete-target", s, &normalise(&b));
    let (s, b) = call(&api, &[("Action", "DeleteTrafficMirrorFilterRule"), ("TrafficMirrorFilterRuleId", &rid)]).await;
    g.check("delete-filter-rule", s, &normalise(&b));
    let (s, b) = call(&api, &[("Action", "DeleteTrafficMirrorFilter"), ("TrafficMirrorFilterId", &fid)]).await;
    g.check("delete-filter", s, &normalise(&b));

    g.finish(33);
}
