//! Golden tests: the exact JSON of every Alibaba operation and of errors.
//!
//! A scripted session runs against the real router in-process with a seeded RNG and a
//! fixed clock, so IDs and times are stable; `RequestId` is replaced by `REQUEST-ID`. Each
//! response is compared with `tests/golden/alibaba/{step}.json`. Background tasks are
//! finished explicitly ([`lifecycle::complete_all`]) where the script needs idle
//! resources. `UPDATE_GOLDEN=1` rewrites the files (review the diff before committing).

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use common::{Golden, api, register};
use tapwire_api::Api;
use tapwire_api::alibaba::lifecycle;

const REGION: &str = "cn-hangzhou";

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
    let (status, bytes) = common::send(api, req.body(Body::empty()).unwrap()).await;
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// Checks the next response with its `RequestId` (which must be there) replaced by
/// `REQUEST-ID`.
fn check(g: &mut Golden, name: &str, status: u16, body: &serde_json::Value) {
    let mut body = body.clone();
    assert!(body["RequestId"].as_str().is_some_and(|r| !r.is_empty()), "{name}: no RequestId");
    body["RequestId"] = "REQUEST-ID".into();
    g.check(name, status, &serde_json::to_string_pretty(&body).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_and_error_matches_its_golden_json() {
    let api = api(11);
    let src1 = register(&api, REGION, "198.18.0.2", Some("i-web1"));
    let src2 = register(&api, REGION, "198.18.0.3", Some("i-web2"));
    let sensor = register(&api, REGION, "198.18.1.2", Some("i-sensor1"));
    let free = register(&api, REGION, "198.18.2.2", None);
    let mut g = Golden::new("alibaba", "json");
    let idle = || lifecycle::complete_all(&api.control).unwrap();
    use Style::{Legacy, Tea};
    let r = [("RegionId", REGION)];

    // The service.
    let (s, b) = call(&api, Tea, "GetTrafficMirrorServiceStatus", &r).await;
    check(&mut g, "service-status-closed", s, &b);
    let (s, b) = call(&api, Tea, "ListTrafficMirrorFilters", &r).await;
    check(&mut g, "error-opt-in-required", s, &b);
    let (s, b) = call(&api, Legacy, "OpenTrafficMirrorService", &r).await;
    check(&mut g, "open-service", s, &b);
    let (s, b) = call(&api, Tea, "OpenTrafficMirrorService", &r).await;
    check(&mut g, "error-already-opened", s, &b);

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
    check(&mut g, "create-filter", s, &b);
    let fid = b["TrafficMirrorFilterId"].as_str().unwrap().to_owned();
    let (s, b) = call(&api, Tea, "ListTrafficMirrorFilters", &r).await;
    check(&mut g, "list-filters-creating", s, &b);
    let (s, b) =
        call(&api, Tea, "UpdateTrafficMirrorFilterAttribute", &[("RegionId", REGION), ("TrafficMirrorFilterId", &fid)])
            .await;
    check(&mut g, "error-filter-busy", s, &b);
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
    check(&mut g, "create-filter-rules", s, &b);
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
    check(&mut g, "update-filter-rule", s, &b);
    let (s, b) = call(
        &api,
        Tea,
        "UpdateTrafficMirrorFilterAttribute",
        &[("RegionId", REGION), ("TrafficMirrorFilterId", &fid), ("TrafficMirrorFilterName", "web2")],
    )
    .await;
    check(&mut g, "update-filter", s, &b);
    let (s, b) =
        call(&api, Tea, "ListTrafficMirrorFilters", &[("RegionId", REGION), ("TrafficMirrorFilterIds.1", &fid)]).await;
    check(&mut g, "list-filters-modifying", s, &b);
    idle();
    let (s, b) = call(
        &api,
        Tea,
        "DeleteTrafficMirrorFilterRules",
        &[("RegionId", REGION), ("TrafficMirrorFilterId", &fid), ("TrafficMirrorFilterRuleIds.1", &all_rule)],
    )
    .await;
    check(&mut g, "delete-filter-rules", s, &b);
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
    check(&mut g, "error-rule-priority", s, &b);

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
    check(&mut g, "create-session", s, &b);
    let sid = b["TrafficMirrorSessionId"].as_str().unwrap().to_owned();
    let (s, b) = call(&api, Tea, "ListTrafficMirrorSessions", &r).await;
    check(&mut g, "list-sessions-creating", s, &b);
    idle();
    let add = [("RegionId", REGION), ("TrafficMirrorSessionId", sid.as_str()), ("TrafficMirrorSourceIds.1", &src2)];
    let (s, b) = call(&api, Tea, "AddSourcesToTrafficMirrorSession", &add).await;
    check(&mut g, "add-sources", s, &b);
    let (s, b) = call(&api, Tea, "AddSourcesToTrafficMirrorSession", &add).await;
    check(&mut g, "error-session-busy", s, &b);
    idle();
    let (s, b) = call(&api, Tea, "AddSourcesToTrafficMirrorSession", &add).await;
    check(&mut g, "error-source-already-associated", s, &b);
    let (s, b) = call(
        &api,
        Tea,
        "RemoveSourcesFromTrafficMirrorSession",
        &[("RegionId", REGION), ("TrafficMirrorSessionId", &sid), ("TrafficMirrorSourceIds.1", &src1)],
    )
    .await;
    check(&mut g, "remove-sources", s, &b);
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
    check(&mut g, "update-session", s, &b);
    idle();
    let (s, b) = call(&api, Tea, "ListTrafficMirrorSessions", &[("RegionId", REGION), ("MaxResults", "1")]).await;
    check(&mut g, "list-sessions", s, &b);
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
        check(&mut g, name, s, &b);
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
    check(&mut g, "tag-resources", s, &b);
    let (s, b) = call(
        &api,
        Tea,
        "ListTagResources",
        &[("RegionId", REGION), ("ResourceType", "TRAFFICMIRRORFILTER"), ("ResourceId.1", &fid)],
    )
    .await;
    check(&mut g, "list-tag-resources", s, &b);
    let (s, b) = call(
        &api,
        Tea,
        "UnTagResources",
        &[("RegionId", REGION), ("ResourceType", "TRAFFICMIRRORFILTER"), ("ResourceId.1", &fid), ("TagKey.1", "team")],
    )
    .await;
    check(&mut g, "untag-resources", s, &b);
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
    check(&mut g, "move-resource-group", s, &b);
    let (s, b) =
        call(&api, Tea, "ListTrafficMirrorFilters", &[("RegionId", REGION), ("TrafficMirrorFilterIds.1", &fid)]).await;
    check(&mut g, "list-filters", s, &b);

    // Generic errors.
    let (s, b) = call(&api, Tea, "ListTrafficMirrorSessions", &[]).await;
    check(&mut g, "error-missing-region", s, &b);
    let (s, b) = call(&api, Tea, "CreateTrafficMirrorFilter", &[("RegionId", REGION), ("DryRun", "true")]).await;
    check(&mut g, "error-dry-run", s, &b);
    let (s, b) =
        call(&api, Tea, "CreateTrafficMirrorFilter", &[("RegionId", REGION), ("ClientToken", "token-1")]).await;
    check(&mut g, "error-idempotent-mismatch", s, &b);
    let (s, b) =
        call(&api, Tea, "DeleteTrafficMirrorFilter", &[("RegionId", REGION), ("TrafficMirrorFilterId", &fid)]).await;
    check(&mut g, "error-filter-in-use", s, &b);
    let (s, b) = call(&api, Tea, "DescribeVpcs", &r).await;
    check(&mut g, "error-unknown-action", s, &b);
    let (s, b) = call(&api, Tea, "ListTrafficMirrorFilters", &[("RegionId", REGION), ("MaxResults", "101")]).await;
    check(&mut g, "error-max-results", s, &b);
    let (s, b) = call(
        &api,
        Tea,
        "ListTrafficMirrorFilters",
        &[("RegionId", REGION), ("TrafficMirrorFilterIds.1", "tmf-00000000000000000")],
    )
    .await;
    check(&mut g, "list-filters-unknown-id", s, &b);

    // Deletes: Deleting, then gone.
    let (s, b) =
        call(&api, Tea, "DeleteTrafficMirrorSession", &[("RegionId", REGION), ("TrafficMirrorSessionId", &sid)]).await;
    check(&mut g, "delete-session", s, &b);
    let (s, b) = call(&api, Tea, "ListTrafficMirrorSessions", &r).await;
    check(&mut g, "list-sessions-deleting", s, &b);
    idle();
    let (s, b) =
        call(&api, Tea, "DeleteTrafficMirrorSession", &[("RegionId", REGION), ("TrafficMirrorSessionId", &sid)]).await;
    check(&mut g, "error-session-not-found", s, &b);
    let (s, b) =
        call(&api, Legacy, "DeleteTrafficMirrorFilter", &[("RegionId", REGION), ("TrafficMirrorFilterId", &fid)]).await;
    check(&mut g, "delete-filter", s, &b);
    idle();
    let (s, b) = call(&api, Tea, "ListTrafficMirrorFilters", &r).await;
    check(&mut g, "list-filters-empty", s, &b);

    g.finish(42);
}
