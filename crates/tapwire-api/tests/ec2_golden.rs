//! Golden tests: the exact XML of every EC2 operation and of errors.
//!
//! A scripted session runs against the real router in-process with a seeded RNG and a
//! fixed clock, so IDs are stable; request IDs are replaced by `REQUEST-ID`. Each response
//! is compared with `tests/golden/ec2/NN-name.xml`. `UPDATE_GOLDEN=1` rewrites the files
//! (review the diff before committing).

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use rand::SeedableRng;
use tapwire_api::{Api, ApiConfig, router};
use tapwire_control::ops::{InterfaceRegistration, Operation, Output, RequestContext};
use tapwire_control::{Clock, Control, ControlConfig, Dialect};
use tapwire_model::AccountId;
use tower::ServiceExt;

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        1_795_000_000
    }
}

fn api(dir: &std::path::Path) -> Arc<Api> {
    let store = tapwire_store::SqliteStore::open_dir(dir).unwrap();
    let control = Control::open(
        Box::new(store),
        Box::new(FixedClock),
        Box::new(rand::rngs::StdRng::seed_from_u64(7)),
        ControlConfig::default(),
    )
    .unwrap();
    Arc::new(Api { control, config: ApiConfig::default() })
}

fn register(api: &Api, ip: &str, instance: &str) -> String {
    let ctx =
        RequestContext { account: AccountId::DEFAULT, region: "us-east-1".into(), dry_run: false, idempotency: None };
    let reg = InterfaceRegistration {
        host: Some(instance.replace("i-", "host-")),
        ifname: Some("eth0".into()),
        instance_id: Some(instance.into()),
        mac: Some("02:00:00:00:00:01".into()),
        addresses: vec![ip.parse().unwrap()],
    };
    match api.control.execute(&ctx, Dialect::Tapwire, Operation::RegisterInterface(reg)).unwrap() {
        Output::Interface(i) => i.id.to_string(),
        other => panic!("{other:?}"),
    }
}

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
    let resp = router(api.clone()).oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
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

struct Golden {
    dir: PathBuf,
    n: usize,
    update: bool,
    failures: Vec<String>,
}

impl Golden {
    fn check(&mut self, name: &str, status: u16, body: &str) {
        self.n += 1;
        let path = self.dir.join(format!("{:02}-{name}.xml", self.n));
        let actual = format!("HTTP {status}\n{}\n", normalise(body));
        if self.update {
            std::fs::write(&path, &actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| format!("<missing {}>", path.display()));
        if expected != actual {
            self.failures.push(format!("{}:\n--- expected\n{expected}\n--- actual\n{actual}", path.display()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_and_error_matches_its_golden_xml() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(dir.path());
    let src = register(&api, "198.18.0.2", "i-web1");
    let dst = register(&api, "198.18.1.2", "i-sensor1");
    let mut g = Golden {
        dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/ec2"),
        n: 0,
        update: std::env::var_os("UPDATE_GOLDEN").is_some(),
        failures: Vec::new(),
    };

    let (s, b) = call(&api, &[("Action", "DescribeTrafficMirrorSessions")]).await;
    g.check("describe-sessions-empty", s, &b);
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
    g.check("create-filter", s, &b);
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
    g.check("create-filter-rule", s, &b);
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
    g.check("create-filter-rule-v6", s, &b);
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
    g.check("modify-filter-rule", s, &b);
    let (s, b) = call(
        &api,
        &[
            ("Action", "ModifyTrafficMirrorFilterNetworkServices"),
            ("TrafficMirrorFilterId", &fid),
            ("AddNetworkService.1", "amazon-dns"),
        ],
    )
    .await;
    g.check("modify-network-services", s, &b);
    let (s, b) = call(&api, &[("Action", "DescribeTrafficMirrorFilterRules"), ("TrafficMirrorFilterId", &fid)]).await;
    g.check("describe-filter-rules", s, &b);
    let (s, b) =
        call(&api, &[("Action", "CreateTrafficMirrorTarget"), ("NetworkInterfaceId", &dst), ("Description", "ids")])
            .await;
    g.check("create-target", s, &b);
    let tid = extract(&b, "trafficMirrorTargetId").to_owned();
    let (s, b) = call(
        &api,
        &[
            ("Action", "CreateTrafficMirrorTarget"),
            ("NetworkLoadBalancerArn", "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/ids/50dc"),
        ],
    )
    .await;
    g.check("create-target-nlb", s, &b);
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
    g.check("create-session", s, &b);
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
    g.check("modify-session", s, &b);
    let (s, b) =
        call(&api, &[("Action", "CreateTags"), ("ResourceId.1", &sid), ("Tag.1.Key", "env"), ("Tag.1.Value", "prod")])
            .await;
    g.check("create-tags", s, &b);
    let (s, b) = call(&api, &[("Action", "DescribeTrafficMirrorSessions"), ("MaxResults", "5")]).await;
    g.check("describe-sessions", s, &b);
    let (s, b) = call(&api, &[("Action", "DescribeTrafficMirrorFilters"), ("TrafficMirrorFilterId.1", &fid)]).await;
    g.check("describe-filters", s, &b);
    let (s, b) = call(&api, &[("Action", "DescribeTrafficMirrorTargets")]).await;
    g.check("describe-targets", s, &b);
    let (s, b) = call(&api, &[("Action", "DescribeNetworkInterfaces"), ("NetworkInterfaceId.1", &src)]).await;
    g.check("describe-network-interfaces", s, &b);
    let (s, b) = call(&api, &[("Action", "DeleteTags"), ("ResourceId.1", &sid), ("Tag.1.Key", "env")]).await;
    g.check("delete-tags", s, &b);

    // Errors.
    let (s, b) = call(&api, &[("Action", "DeleteTrafficMirrorFilter"), ("TrafficMirrorFilterId", &fid)]).await;
    g.check("error-filter-in-use", s, &b);
    let (s, b) =
        call(&api, &[("Action", "DeleteTrafficMirrorSession"), ("TrafficMirrorSessionId", "tms-0123456789abcdef0")])
            .await;
    g.check("error-session-not-found", s, &b);
    let (s, b) = call(&api, &[("Action", "CreateTrafficMirrorFilter"), ("DryRun", "true")]).await;
    g.check("error-dry-run", s, &b);
    let (s, b) = call(&api, &[("Action", "CreateTrafficMirrorFilter"), ("ClientToken", "token-1")]).await;
    g.check("error-idempotent-mismatch", s, &b);
    let (s, b) = call(&api, &[("Action", "CreateTrafficMirrorFilter"), ("Bogus", "1")]).await;
    g.check("error-unknown-parameter", s, &b);
    let (s, b) = call(&api, &[("Action", "RebootInstances")]).await;
    g.check("error-invalid-action", s, &b);
    let (s, b) = call(&api, &[("Action", "CreateTrafficMirrorTarget")]).await;
    g.check("error-invalid-input", s, &b);

    // Deletes.
    let (s, b) = call(&api, &[("Action", "DeleteTrafficMirrorSession"), ("TrafficMirrorSessionId", &sid)]).await;
    g.check("delete-session", s, &b);
    let (s, b) = call(&api, &[("Action", "DeleteTrafficMirrorTarget"), ("TrafficMirrorTargetId", &tid)]).await;
    g.check("delete-target", s, &b);
    let (s, b) = call(&api, &[("Action", "DeleteTrafficMirrorFilterRule"), ("TrafficMirrorFilterRuleId", &rid)]).await;
    g.check("delete-filter-rule", s, &b);
    let (s, b) = call(&api, &[("Action", "DeleteTrafficMirrorFilter"), ("TrafficMirrorFilterId", &fid)]).await;
    g.check("delete-filter", s, &b);

    assert!(g.failures.is_empty(), "{} golden mismatches:\n{}", g.failures.len(), g.failures.join("\n"));
    assert!(g.n >= 28, "every scripted call was checked");
}
