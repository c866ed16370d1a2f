//! Golden tests: the exact JSON of every Alibaba operation and of errors.
//!
//! A scripted session runs against the real router in-process with a seeded RNG and a
//! fixed clock, so IDs and times are stable; `RequestId` is replaced by `REQUEST-ID`. Each
//! response is compared with `tests/golden/alibaba/NN-name.json`. Background tasks are
//! finished explicitly ([`lifecycle::complete_all`]) where the script needs idle
//! resources. `UPDATE_GOLDEN=1` rewrites the files (review the diff before committing).

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use rand::SeedableRng;
use tapwire_api::alibaba::lifecycle;
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

const REGION: &str = "cn-hangzhou";

fn api(dir: &std::path::Path) -> Arc<Api> {
    let store = tapwire_store::SqliteStore::open_dir(dir).unwrap();
    let control = Control::open(
        Box::new(store),
        Box::new(FixedClock),
        Box::new(rand::rngs::StdRng::seed_from_u64(11)),
        ControlConfig::default(),
    )
    .unwrap();
    Arc::new(Api { control, config: ApiConfig::default() })
}

fn register(api: &Api, ip: &str, instance: Option<&str>) -> String {
    let ctx = RequestContext { account: AccountId::DEFAULT, region: REGION.into(), dry_run: false, idempotency: None };
    let reg = InterfaceRegistration {
        host: instance.map(|i| i.replace("i-", "host-")),
        ifname: Some("eth0".into()),
        instance_id: instance.map(str::to_owned),
        mac: None,
        addresses: vec![ip.parse().unwrap()],
    };
    match api.control.execute(&ctx, Dialect::Tapwire, Operation::RegisterInterface(reg)).unwrap() {
        Output::Interface(i) => i.id.to_string(),
        other => panic!("{other:?}"),
    }
}

/// How a request travels.
#[derive(Clone, Copy)]
enum Style {
    /// Tea SDK: action and version in headers, parameters in the query string.
    Tea,
    /// Legacy SDK: everything in the query string, HMAC-SHA1 signature parameters.
    Legacy,
}

async fn call(api: &Arc<Api>, style: Style, action: &str, params: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if matches!(style, Style::Legacy) {
        for (k, v) in [
            ("Action", action),
            ("Version", "2016-04-28"),
            ("Format", "JSON"),
            ("AccessKeyId", "LTAIgolden"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", "nonce"),
            ("Timestamp", "2026-11-22T00:00:00Z"),
            ("Signature", "c2lnbmF0dXJl"),
        ] {
            query.append_pair(k, v);
        }
    }
    for (k, v) in params {
        query.append_pair(k, v);
    }
    let mut req = Request::post(format!("/?{}", query.finish()));
    if matches!(style, Style::Tea) {
        req = req
            .header("x-acs-action", action)
            .header("x-acs-version", "2016-04-28")
            .header("authorization", "ACS3-HMAC-SHA256 Credential=LTAIgolden,SignedHeaders=host,Signature=00");
    }
    let resp = router(api.clone()).oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

struct Golden {
    dir: PathBuf,
    n: usize,
    update: bool,
    failures: Vec<String>,
}

impl Golden {
    fn check(&mut self, name: &str, status: u16, body: &serde_json::Value) {
        self.n += 1;
        let path = self.dir.join(format!("{:02}-{name}.json", self.n));
        let mut body = body.clone();
        assert!(body["RequestId"].as_str().is_some_and(|r| !r.is_empty()), "{name}: no RequestId");
        body["RequestId"] = "REQUEST-ID".into();
        let actual = format!("HTTP {status}\n{}\n", serde_json::to_string_pretty(&body).unwrap());
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
async fn every_operation_and_error_matches_its_golden_json() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(dir.path());
    let src1 = register(&api, "198.18.0.2", Some("i-web1"));
    let src2 = register(&api, "198.18.0.3", Some("i-web2"));
    let sensor = register(&api, "198.18.1.2", Some("i-sensor1"));
    let free = register(&api, "198.18.2.2", None);
    let mut g = Golden {
        dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/alibaba"),
        n: 0,
        update: std::env::var_os("UPDATE_GOLDEN").is_some(),
        failures: Vec::new(),
    };
    let idle = || lifecycle::complete_all(&api.control).unwrap();
    use Style::{Legacy, Tea};
    let r = [("RegionId", REGION)];

    // The service.
    let (s, b) = call(&api, Tea, "GetTrafficMirrorServiceStatus", &r).await;
    g.check("service-status-closed", s, &b);
    let (s, b) = call(&api, Tea, "ListTrafficMirrorFilters", &r).await;
    g.check("error-opt-in-required", s, &b);
    let (s, b) = call(&api, Legacy, "OpenTrafficMirrorService", &r).await;
    g.check("open-service", s, &b);
    let (s, b) = call(&api, Tea, "OpenTrafficMirrorService", &r).await;
    g.check("error-already-opened", s, &b);

    // Filters and rules.
    let (s, b) = call(
        &api,
        Tea,
        "CreateTrafficMirrorFilter",
        &[
            ("RegionId", REGION),
            ("ClientToken", "token-1"),
            ("TrafficMirrorFilterName", "web"),
            ("TrafficMirrorFilterDescription", "web \"tier\""),
            ("ResourceGroupId", "rg-golden"),
            ("Tag.1.Key", "team"),
            ("Tag.1.Value", "sec"),
            ("IngressRules.1.Action", "accept"),
            ("IngressRules.1.Priority", "1"),
            ("IngressRules.1.Protocol", "TCP"),
            ("IngressRules.1.SourceCidrBlock", "0.0.0.0/0"),
            ("IngressRules.1.DestinationCidrBlock", "198.18.0.0/24"),
            ("IngressRules.1.DestinationPortRange", "443/443"),
            ("EgressRules.1.Action", "drop"),
            ("EgressRules.1.Priority", "1"),
            ("EgressRules.1.Protocol", "ICMP"),
            ("EgressRules.1.IpVersion", "IPv6"),
            ("EgressRules.1.SourceCidrBlock", "2001:db8::/32"),
            ("EgressRules.1.DestinationCidrBlock", "::/0"),
        ],
    )
    .await;
    g.check("create-filter", s, &b);
    let fid = b["TrafficMirrorFilterId"].as_str().unwrap().to_owned();
    let (s, b) = call(&api, Tea, "ListTrafficMirrorFilters", &r).await;
    g.check("list-filters-creating", s, &b);
    let (s, b) =
        call(&api, Tea, "UpdateTrafficMirrorFilterAttribute", &[("RegionId", REGION), ("TrafficMirrorFilterId", &fid)])
            .await;
    g.check("error-filter-busy", s, &b);
    idle();
    let (s, b) = call(
        &api,
        Tea,
        "CreateTrafficMirrorFilterRules",
        &[
            ("RegionId", REGION),
            ("TrafficMirrorFilterId", &fid),
            ("IngressRules.1.Action", "accept"),
            ("IngressRules.1.Priority", "3"),
            ("IngressRules.1.Protocol", "UDP"),
            ("IngressRules.1.SourceCidrBlock", "10.0.0.0/8"),
            ("IngressRules.1.DestinationCidrBlock", "0.0.0.0/0"),
            ("IngressRules.2.Action", "drop"),
            ("IngressRules.2.Priority", "2"),
            ("IngressRules.2.Protocol", "ALL"),
            ("IngressRules.2.SourceCidrBlock", "10.0.0.0/8"),
            ("IngressRules.2.DestinationCidrBlock", "0.0.0.0/0"),
        ],
    )
    .await;
    g.check("create-filter-rules", s, &b);
    let udp_rule = b["IngressRules"][0]["InstanceId"].as_str().unwrap().to_owned();
    let all_rule = b["IngressRules"][1]["InstanceId"].as_str().unwrap().to_owned();
    idle();
    let (s, b) = call(
        &api,
        Legacy,
        "UpdateTrafficMirrorFilterRuleAttribute",
        &[
            ("RegionId", REGION),
            ("TrafficMirrorFilterRuleId", &udp_rule),
            ("RuleAction", "drop"),
            ("SourcePortRange", "1000/2000"),
        ],
    )
    .await;
    g.check("update-filter-rule", s, &b);
    let (s, b) = call(
        &api,
        Tea,
        "UpdateTrafficMirrorFilterAttribute",
        &[("RegionId", REGION), ("TrafficMirrorFilterId", &fid), ("TrafficMirrorFilterName", "web2")],
    )
    .await;
    g.check("update-filter", s, &b);
    let (s, b) =
        call(&api, Tea, "ListTrafficMirrorFilters", &[("RegionId", REGION), ("TrafficMirrorFilterIds.1", &fid)]).await;
    g.check("list-filters-modifying", s, &b);
    idle();
    let (s, b) = call(
        &api,
        Tea,
        "DeleteTrafficMirrorFilterRules",
        &[("RegionId", REGION), ("TrafficMirrorFilterId", &fid), ("TrafficMirrorFilterRuleIds.1", &all_rule)],
    )
    .await;
    g.check("delete-filter-rules", s, &b);
    idle();
    let (s, b) = call(
        &api,
        Tea,
        "CreateTrafficMirrorFilter",
        &[
            ("RegionId", REGION),
            ("IngressRules.1.Action", "accept"),
            ("IngressRules.1.Priority", "11"),
            ("IngressRules.1.Protocol", "TCP"),
            ("IngressRules.1.SourceCidrBlock", "0.0.0.0/0"),
            ("IngressRules.1.DestinationCidrBlock", "0.0.0.0/0"),
        ],
    )
    .await;
    g.check("error-rule-priority", s, &b);

    // Sessions.
    let (s, b) = call(
        &api,
        Tea,
        "CreateTrafficMirrorSession",
        &[
            ("RegionId", REGION),
            ("TrafficMirrorSourceIds.1", &src1),
            ("TrafficMirrorTargetId", &sensor),
            ("TrafficMirrorTargetType", "NetworkInterface"),
            ("TrafficMirrorFilterId", &fid),
            ("Priority", "1"),
            ("TrafficMirrorSessionName", "to-ids"),
            ("Tag.1.Key", "env"),
            ("Tag.1.Value", "prod"),
        ],
    )
    .await;
    g.check("create-session", s, &b);
    let sid = b["TrafficMirrorSessionId"].as_str().unwrap().to_owned();
    let (s, b) = call(&api, Tea, "ListTrafficMirrorSessions", &r).await;
    g.check("list-sessions-creating", s, &b);
    idle();
    let add = [("RegionId", REGION), ("TrafficMirrorSessionId", sid.as_str()), ("TrafficMirrorSourceIds.1", &src2)];
    let (s, b) = call(&api, Tea, "AddSourcesToTrafficMirrorSession", &add).await;
    g.check("add-sources", s, &b);
    let (s, b) = call(&api, Tea, "AddSourcesToTrafficMirrorSession", &add).await;
    g.check("error-session-busy", s, &b);
    idle();
    let (s, b) = call(&api, Tea, "AddSourcesToTrafficMirrorSession", &add).await;
    g.check("error-source-already-associated", s, &b);
    let (s, b) = call(
        &api,
        Tea,
        "RemoveSourcesFromTrafficMirrorSession",
        &[("RegionId", REGION), ("TrafficMirrorSessionId", &sid), ("TrafficMirrorSourceIds.1", &src1)],
    )
    .await;
    g.check("remove-sources", s, &b);
    idle();
    let (s, b) = call(
        &api,
        Legacy,
        "UpdateTrafficMirrorSessionAttribute",
        &[
            ("RegionId", REGION),
            ("TrafficMirrorSessionId", &sid),
            ("Enabled", "True"),
            ("PacketLength", "128"),
            ("VirtualNetworkId", "7"),
            ("TrafficMirrorTargetId", "lb-golden"),
            ("TrafficMirrorTargetType", "SLB"),
        ],
    )
    .await;
    g.check("update-session", s, &b);
    idle();
    let (s, b) = call(&api, Tea, "ListTrafficMirrorSessions", &[("RegionId", REGION), ("MaxResults", "1")]).await;
    g.check("list-sessions", s, &b);
    let bad_sessions: [(&str, Vec<(&str, &str)>); 4] = [
        ("error-duplicate-role", vec![("TrafficMirrorSourceIds.1", &src1), ("TrafficMirrorTargetId", &src1)]),
        ("error-free-interface", vec![("TrafficMirrorSourceIds.1", &free), ("TrafficMirrorTargetId", &sensor)]),
        (
            "error-duplicated-source",
            vec![
                ("TrafficMirrorSourceIds.1", &src1),
                ("TrafficMirrorSourceIds.2", &src1),
                ("TrafficMirrorTargetId", &sensor),
            ],
        ),
        (
            "error-interface-not-found",
            vec![("TrafficMirrorSourceIds.1", "eni-00000000000000000"), ("TrafficMirrorTargetId", &sensor)],
        ),
    ];
    for (name, mut params) in bad_sessions {
        params.extend([
            ("RegionId", REGION),
            ("TrafficMirrorTargetType", "NetworkInterface"),
            ("TrafficMirrorFilterId", &fid),
            ("Priority", "2"),
        ]);
        let (s, b) = call(&api, Tea, "CreateTrafficMirrorSession", &params).await;
        g.check(name, s, &b);
    }

    // Tags and resource groups.
    let (s, b) = call(
        &api,
        Tea,
        "TagResources",
        &[
            ("RegionId", REGION),
            ("ResourceType", "TRAFFICMIRRORFILTER"),
            ("ResourceId.1", &fid),
            ("Tag.1.Key", "owner"),
            ("Tag.1.Value", "ops"),
        ],
    )
    .await;
    g.check("tag-resources", s, &b);
    let (s, b) = call(
        &api,
        Tea,
        "ListTagResources",
        &[("RegionId", REGION), ("ResourceType", "TRAFFICMIRRORFILTER"), ("ResourceId.1", &fid)],
    )
    .await;
    g.check("list-tag-resources", s, &b);
    let (s, b) = call(
        &api,
        Tea,
        "UnTagResources",
        &[("RegionId", REGION), ("ResourceType", "TRAFFICMIRRORFILTER"), ("ResourceId.1", &fid), ("TagKey.1", "team")],
    )
    .await;
    g.check("untag-resources", s, &b);
    let (s, b) = call(
        &api,
        Tea,
        "MoveResourceGroup",
        &[
            ("RegionId", REGION),
            ("ResourceType", "TrafficMirrorSession"),
            ("ResourceId", &sid),
            ("NewResourceGroupId", "rg-moved"),
        ],
    )
    .await;
    g.check("move-resource-group", s, &b);
    let (s, b) =
        call(&api, Tea, "ListTrafficMirrorFilters", &[("RegionId", REGION), ("TrafficMirrorFilterIds.1", &fid)]).await;
    g.check("list-filters", s, &b);

    // Generic errors.
    let (s, b) = call(&api, Tea, "ListTrafficMirrorSessions", &[]).await;
    g.check("error-missing-region", s, &b);
    let (s, b) = call(&api, Tea, "CreateTrafficMirrorFilter", &[("RegionId", REGION), ("DryRun", "true")]).await;
    g.check("error-dry-run", s, &b);
    let (s, b) =
        call(&api, Tea, "CreateTrafficMirrorFilter", &[("RegionId", REGION), ("ClientToken", "token-1")]).await;
    g.check("error-idempotent-mismatch", s, &b);
    let (s, b) =
        call(&api, Tea, "DeleteTrafficMirrorFilter", &[("RegionId", REGION), ("TrafficMirrorFilterId", &fid)]).await;
    g.check("error-filter-in-use", s, &b);
    let (s, b) = call(&api, Tea, "DescribeVpcs", &r).await;
    g.check("error-unknown-action", s, &b);
    let (s, b) = call(&api, Tea, "ListTrafficMirrorFilters", &[("RegionId", REGION), ("MaxResults", "101")]).await;
    g.check("error-max-results", s, &b);
    let (s, b) = call(
        &api,
        Tea,
        "ListTrafficMirrorFilters",
        &[("RegionId", REGION), ("TrafficMirrorFilterIds.1", "tmf-00000000000000000")],
    )
    .await;
    g.check("list-filters-unknown-id", s, &b);

    // Deletes: Deleting, then gone.
    let (s, b) =
        call(&api, Tea, "DeleteTrafficMirrorSession", &[("RegionId", REGION), ("TrafficMirrorSessionId", &sid)]).await;
    g.check("delete-session", s, &b);
    let (s, b) = call(&api, Tea, "ListTrafficMirrorSessions", &r).await;
    g.check("list-sessions-deleting", s, &b);
    idle();
    let (s, b) =
        call(&api, Tea, "DeleteTrafficMirrorSession", &[("RegionId", REGION), ("TrafficMirrorSessionId", &sid)]).await;
    g.check("error-session-not-found", s, &b);
    let (s, b) =
        call(&api, Legacy, "DeleteTrafficMirrorFilter", &[("RegionId", REGION), ("TrafficMirrorFilterId", &fid)]).await;
    g.check("delete-filter", s, &b);
    idle();
    let (s, b) = call(&api, Tea, "ListTrafficMirrorFilters", &r).await;
    g.check("list-filters-empty", s, &b);

    assert!(g.failures.is_empty(), "{} golden mismatches:\n{}", g.failures.len(), g.failures.join("\n"));
}
